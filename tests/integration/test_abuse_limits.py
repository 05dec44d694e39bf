"""Abuse limits: a cap on undelivered messages per sender, and a push window so a client that
does not read cannot grow the server's memory; plus a lost device that stays locked out."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import pytest
import websockets
from harness import FAST_SCRYPT, PASSPHRASE, connect, start_server

from hotline.client.device import HotlineClient
from hotline.client.linked_devices import provision_device, remove_device
from hotline.crypto.olm import OlmMessage
from hotline.server.admin import issue_enrolment
from hotline.server.routes_messages import PUSH_WINDOW
from hotline.store import DeliveryItem
from hotline.wire.errors import DecryptionFailed, QueueFull


async def test_undelivered_queue_cap_per_sender(tmp_path: Path) -> None:
    import time

    server, stop = await start_server(tmp_path / "s.db", max_pending_per_device=6)
    clients = []
    try:
        for name in ("alice", "bob"):
            token = await issue_enrolment(
                server.store, f"{name}@{server.config.domain}", time.time()
            )
            clients.append(
                await HotlineClient.register(
                    tmp_path / name,
                    PASSPHRASE,
                    server_url=server.url,
                    enrolment_token=token,
                    handle=f"{name}@{server.config.domain}",
                    display_name=name,
                    scrypt=FAST_SCRYPT,
                )
            )
        alice, bob = clients
        await connect(alice, bob)
        sent = 0
        with pytest.raises(QueueFull):
            for n in range(20):  # bob stays offline
                await alice.send_text(bob.handle, f"m{n}")
                sent += 1
        assert sent == 6  # one mailbox item each: the cap is exact
        before = await server.store.pending(bob.device_id, 0, 100)
        with pytest.raises(QueueFull):
            await alice.send_text(bob.handle, "still full")
        assert await server.store.pending(bob.device_id, 0, 100) == before
        await bob.sync()  # bob catches up: alice may send again
        await alice.send_text(bob.handle, "after catching up")
    finally:
        for client in clients:
            await client.close()
        await stop()


async def test_push_window_bounds_a_client_that_does_not_ack(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    await ottawa.sync()
    for n in range(PUSH_WINDOW + 150):
        await live_server.store.enqueue(
            message_id=f"flood{n}",
            sender_handle=washington.handle,
            sender_device=washington.device_id,
            items=[DeliveryItem(ottawa.device_id, "olm", b"\x01junk")],
            now=float(n),
        )
    await ottawa._ensure_login()
    url = live_server.url.replace("http", "ws") + "/v1/ws"
    seqs: list[int] = []
    async with websockets.connect(
        url, additional_headers={"authorization": f"Bearer {ottawa.server.token}"}
    ) as ws:

        async def read_until_quiet() -> None:
            while True:
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    return
                seqs.extend(item["seq"] for item in json.loads(frame)["items"])

        await read_until_quiet()
        assert len(seqs) == PUSH_WINDOW  # the rest waits in the mailbox, not in memory
        await ws.send(json.dumps({"ack": seqs[:100]}))
        await read_until_quiet()
        assert len(seqs) == PUSH_WINDOW + 100
        assert len(set(seqs)) == len(seqs)


async def test_removed_device_cannot_decrypt_anything_sent_afterwards(
    connected_pair, live_server, tmp_path: Path
) -> None:
    washington, ottawa = connected_pair
    phone = await provision_device(washington, tmp_path / "phone", PASSPHRASE, scrypt=FAST_SCRYPT)
    try:
        await ottawa.send_text(washington.handle, "before the loss")
        assert [e.text for e in await phone.sync() if e.kind == "message"] == ["before the loss"]
        await remove_device(washington, phone.device_id)
        with sqlite3.connect(live_server.db_path) as conn:
            (high_water,) = conn.execute("SELECT coalesce(max(seq), 0) FROM deliveries").fetchone()
        await ottawa.send_text(washington.handle, "after the loss")
        with sqlite3.connect(live_server.db_path) as conn:
            after = list(
                conn.execute("SELECT device_id, body FROM deliveries WHERE seq > ?", (high_water,))
            )
        assert after and all(device != phone.device_id for device, _ in after)
        # Even handed every ciphertext stored since (a thief with the device and the database),
        # the removed device decrypts none of them.
        from hotline.client import channel
        from hotline.crypto.olm import DeviceAccount

        state = phone.keystore.load()
        account = DeviceAccount.from_pickle(state.account_pickle, phone.keystore.pickle_key)
        for _, body in after:
            raw = bytes(body)
            with pytest.raises(DecryptionFailed):
                channel.decrypt_from(
                    state,
                    account,
                    phone.sessions,
                    ottawa.handle,
                    ottawa.device_id,
                    None,
                    OlmMessage(raw[0], raw[1:]),
                )
    finally:
        await phone.close()


async def test_per_device_rate_limit(tmp_path: Path) -> None:
    import time

    import httpx

    server, stop = await start_server(tmp_path / "s.db", rate_per_second=0.001, rate_burst=5)
    try:
        token = await issue_enrolment(server.store, f"alice@{server.config.domain}", time.time())
        alice = await HotlineClient.register(
            tmp_path / "alice",
            PASSPHRASE,
            server_url=server.url,
            enrolment_token=token,
            handle=f"alice@{server.config.domain}",
            display_name="A",
            scrypt=FAST_SCRYPT,
        )
        try:
            await alice.login()
            async with httpx.AsyncClient(base_url=server.url) as http:
                headers = {"authorization": f"Bearer {alice.server.token}"}
                codes = [
                    (await http.get("/v1/inbox", headers=headers)).status_code for _ in range(8)
                ]
            assert codes[-1] == 429 and 200 in codes
            assert codes.index(429) <= 5  # the burst, less what registration already used
        finally:
            await alice.close()
    finally:
        await stop()


async def test_what_arrives_while_a_frame_is_unacknowledged_goes_in_one_frame(
    connected_pair, live_server
) -> None:
    """A busy client gets fewer, larger batches: the next frame waits for the last one's ack."""
    washington, ottawa = connected_pair
    await ottawa.sync()
    await ottawa._ensure_login()

    async def mail(n: int) -> str:
        return (await washington.send_text(ottawa.handle, f"burst {n}")).message_id

    url = live_server.url.replace("http", "ws") + "/v1/ws"
    async with websockets.connect(
        url, additional_headers={"authorization": f"Bearer {ottawa.server.token}"}
    ) as ws:
        await mail(0)
        first = json.loads(await asyncio.wait_for(ws.recv(), 5))["items"]
        assert len(first) == 1
        later = [await mail(n) for n in range(1, 4)]
        with pytest.raises(TimeoutError):  # nothing more until the frame is acknowledged
            await asyncio.wait_for(ws.recv(), 0.5)
        await ws.send(json.dumps({"ack": [first[0]["seq"]]}))
        second = json.loads(await asyncio.wait_for(ws.recv(), 5))["items"]
        assert [i["message_id"] for i in second] == later
