"""Two sovereign home servers on loopback: cards, messages, receipts and records cross between
them; each side archives its own copy; a peer that is down gets everything when it returns."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from harness import FAST_SCRYPT, PASSPHRASE, LiveServer, archive_settings, connect, start_server

from hotline.client.device import HotlineClient
from hotline.server.admin import issue_enrolment
from hotline.server.federation_auth import sign_request
from hotline.wire.api import DeviceCiphertext
from hotline.wire.codec import encode
from hotline.wire.federation import SIGNATURE_HEADER, DeliverBatch, RemoteMessage


def public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass
class Government:
    domain: str
    db: Path
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    server: LiveServer | None = None
    stop: object = None
    archive: object = None

    async def start(self) -> LiveServer:
        self.archive = self.archive or archive_settings()
        self.server, self.stop = await start_server(
            self.db,
            self.domain,
            server_key=self.key,
            archive_settings=self.archive,
            retry_base=0.05,
            retry_max=0.5,
        )
        return self.server

    async def halt(self) -> None:
        await self.stop()  # type: ignore[operator]
        self.server = None


async def pin(a: Government, b: Government) -> None:
    """Each operator pins the other (no open federation)."""
    assert a.server and b.server
    await a.server.store.put_peer(b.domain, b.server.url, public(b.key), time.time())
    await b.server.store.put_peer(a.domain, a.server.url, public(a.key), time.time())


@pytest.fixture
async def governments(tmp_path: Path) -> AsyncIterator[tuple[Government, Government]]:
    washington = Government("washington.test", tmp_path / "washington.db")
    ottawa = Government("ottawa.test", tmp_path / "ottawa.db")
    await washington.start()
    await ottawa.start()
    await pin(washington, ottawa)
    try:
        yield washington, ottawa
    finally:
        for g in (washington, ottawa):
            if g.server is not None:
                await g.halt()


async def principal(gov: Government, name: str, home: Path) -> HotlineClient:
    assert gov.server
    handle = f"{name}@{gov.domain}"
    token = await issue_enrolment(gov.server.store, handle, time.time())
    return await HotlineClient.register(
        home,
        PASSPHRASE,
        server_url=gov.server.url,
        enrolment_token=token,
        handle=handle,
        display_name=name.title(),
        scrypt=FAST_SCRYPT,
    )


@pytest.fixture
async def leaders(governments, tmp_path: Path) -> AsyncIterator[tuple[HotlineClient, ...]]:
    washington, ottawa = governments
    potus = await principal(washington, "potus", tmp_path / "potus")
    pm = await principal(ottawa, "pm", tmp_path / "pm")
    try:
        yield potus, pm
    finally:
        await potus.close()
        await pm.close()


async def wait_for_messages(client: HotlineClient, count: int, timeout: float = 10) -> list[str]:
    texts: list[str] = []
    deadline = time.monotonic() + timeout
    while len(texts) < count and time.monotonic() < deadline:
        texts += [e.text for e in await client.sync() if e.kind == "message"]
        if len(texts) < count:
            import asyncio

            await asyncio.sleep(0.05)
    return texts


async def test_messages_cross_servers_and_each_side_archives(governments, leaders) -> None:
    washington, ottawa = governments
    potus, pm = leaders
    await connect(potus, pm)  # card from ottawa.test used by a washington.test user
    import asyncio

    for _ in range(50):
        await pm.sync()
        await potus.sync()
        if potus.contact(pm.handle).status == "active" and pm.contacts():
            break
        await asyncio.sleep(0.05)
    assert potus.contact(pm.handle).status == "active"
    assert pm.contact(potus.handle).status == "active"
    await potus.send_text(pm.handle, "Across the border, on the record.")
    assert await wait_for_messages(pm, 1) == ["Across the border, on the record."]
    await pm.send_text(potus.handle, "Received in Ottawa.")
    assert await wait_for_messages(potus, 1) == ["Received in Ottawa."]
    assert potus.transcript_digest(pm.handle) == pm.transcript_digest(potus.handle)
    # Each government holds its own records of the conversation, in its own log.
    from harness import CUSTODIAN

    from hotline.records.sealing import open_record

    for gov, who in ((washington, potus.handle), (ottawa, pm.handle)):
        assert gov.server
        entries = await gov.server.store.log_entries(0, await gov.server.store.log_size())
        records = [open_record(CUSTODIAN, e.leaf) for e in entries]
        messages = {(r.side, r.body) for r in records if r.kind == "message"}
        assert messages == {
            ("sent" if who == potus.handle else "received", "Across the border, on the record."),
            ("received" if who == potus.handle else "sent", "Received in Ottawa."),
        }
        assert {r.principal for r in records} == {who}


async def test_peer_down_gets_everything_in_order_once(governments, leaders) -> None:
    washington, ottawa = governments
    potus, pm = leaders
    await connect(potus, pm)
    await potus.sync()
    await pm.send_text(potus.handle, "open")
    assert await wait_for_messages(potus, 1) == ["open"]
    await ottawa.halt()
    for i in range(10):
        await potus.send_text(pm.handle, f"while you were down {i}")
    assert washington.server
    assert await washington.server.store.outbound_destinations() == ["ottawa.test"]
    await ottawa.start()
    await pin(washington, ottawa)  # the new port
    pm.server.base_url = ottawa.server.url  # type: ignore[union-attr]
    await pm.server.close()
    from hotline.client.transport import ServerApi

    pm.server = ServerApi(ottawa.server.url)  # type: ignore[union-attr]
    texts = await wait_for_messages(pm, 10, timeout=15)
    assert texts == [f"while you were down {i}" for i in range(10)]
    assert await washington.server.store.outbound_destinations() == []
    assert await pm.sync() == [] or all(e.kind != "message" for e in await pm.sync())


def _deliver_body(
    origin: str,
    sender: str,
    to: str,
    key: Ed25519PrivateKey,
    destination: str = "ottawa.test",
    now: float | None = None,
) -> tuple[bytes, str]:
    message = RemoteMessage(
        message_id="m1",
        sender=sender,
        sender_device="dev",
        to=to,
        ciphertexts=[DeviceCiphertext(device_id="x", type=0, body="AAAA")],
    )
    return sign_request(
        key,
        origin,
        destination,
        "deliver",
        encode(DeliverBatch(messages=[message])),
        now or time.time(),
    )


@pytest.mark.parametrize(
    "case", ["forged", "unpinned", "replayed", "skew", "wrong_origin", "wrong_destination"]
)
async def test_refused_server_requests(governments, leaders, case: str) -> None:
    washington, ottawa = governments
    _, pm = leaders
    assert ottawa.server
    key = washington.key
    origin, sender, destination, now = (
        "washington.test",
        "potus@washington.test",
        "ottawa.test",
        time.time(),
    )
    if case == "forged":
        key = Ed25519PrivateKey.generate()
    elif case == "unpinned":
        origin, sender = "paris.test", "president@paris.test"
    elif case == "skew":
        now -= 3600
    elif case == "wrong_origin":
        sender = "president@paris.test"
    elif case == "wrong_destination":
        destination = "london.test"
    body, signature = _deliver_body(origin, sender, pm.handle, key, destination, now)
    before = await ottawa.server.store.pending(pm.device_id)
    async with httpx.AsyncClient(base_url=ottawa.server.url) as http:

        def send():
            return http.post(
                "/v1/federation",
                content=body,
                headers={SIGNATURE_HEADER: signature},
            )

        reply = await send()
        if case == "replayed":
            assert reply.status_code == 200
            reply = await send()
    expected = {
        "forged": (400, "bad_signature"),
        "unpinned": (403, "unknown_peer"),
        "replayed": (409, "replayed_request"),
        "skew": (401, "clock_skew"),
        "wrong_origin": (403, "wrong_origin"),
        "wrong_destination": (400, "wrong_destination"),
    }[case]
    assert (reply.status_code, reply.json()["code"]) == expected
    assert await ottawa.server.store.pending(pm.device_id) == before


async def test_key_rotation_with_overlap(governments, leaders) -> None:
    washington, ottawa = governments
    assert ottawa.server and washington.server
    old = washington.key
    new = Ed25519PrivateKey.generate()
    await ottawa.server.store.put_peer(
        "washington.test",
        washington.server.url,
        public(new),
        time.time(),
        overlap_until=time.time() + 3600,
    )
    for key, code in ((old, 200), (new, 200)):
        body, sig = _deliver_body("washington.test", "potus@washington.test", "pm@ottawa.test", key)
        async with httpx.AsyncClient(base_url=ottawa.server.url) as http:
            reply = await http.post("/v1/federation", content=body, headers={SIGNATURE_HEADER: sig})
        assert reply.status_code == code
        assert reply.json()["results"][0]["code"] == "not_a_contact"
    await ottawa.server.store.put_peer(
        "washington.test",
        washington.server.url,
        public(Ed25519PrivateKey.generate()),
        time.time(),
        overlap_until=time.time() - 1,
    )
    body, sig = _deliver_body("washington.test", "potus@washington.test", "pm@ottawa.test", old)
    async with httpx.AsyncClient(base_url=ottawa.server.url) as http:
        reply = await http.post("/v1/federation", content=body, headers={SIGNATURE_HEADER: sig})
    assert reply.json()["code"] == "bad_signature"


async def test_three_servers_only_pinned_pairs_talk(governments, leaders, tmp_path: Path) -> None:
    washington, _ottawa = governments
    potus, pm = leaders
    london = Government("london.test", tmp_path / "london.db")
    await london.start()
    try:
        await pin(washington, london)  # Ottawa and London do not pin each other
        pmuk = await principal(london, "pmuk", tmp_path / "pmuk")
        try:
            await connect(potus, pm)
            await connect(potus, pmuk)
            import asyncio

            for _ in range(100):
                for client in (pm, pmuk, potus):
                    await client.sync()
                if all(potus.contact(h).status == "active" for h in (pm.handle, pmuk.handle)):
                    break
                await asyncio.sleep(0.05)
            await potus.send_text(pm.handle, "to Ottawa")
            await potus.send_text(pmuk.handle, "to London")
            assert await wait_for_messages(pm, 1) == ["to Ottawa"]
            assert await wait_for_messages(pmuk, 1) == ["to London"]
            # London's user cannot even start with Ottawa's: the servers are not peers.
            from hotline.wire.errors import UnknownPeer

            with pytest.raises(UnknownPeer):
                await pmuk.add_contact(await pm.my_card())
        finally:
            await pmuk.close()
    finally:
        await london.halt()
