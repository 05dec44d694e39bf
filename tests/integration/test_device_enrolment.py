"""Remote device enrolment (issue 8 item 3): a new device joins with a one-time code that an
existing device approves. Real server on loopback, real clients, real crypto."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from harness import FAST_SCRYPT, PASSPHRASE, LiveServer, start_server
from test_policy import enrol as enrol_with_policy
from test_policy import run_server as run_policy_server

from hotline.client import policy_pin
from hotline.client.device import HotlineClient
from hotline.client.enrolment import (
    LinkCode,
    approve_link,
    collect,
    finish_join,
    open_link,
    start_join,
)
from hotline.client.linked_devices import list_devices
from hotline.crypto.device_link import derive_link_key, link_seal
from hotline.server.admin import issue_enrolment
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import (
    BadSignature,
    DecryptionFailed,
    ForbiddenByPolicy,
    LinkExpired,
    LinkInvalid,
    LinkUsed,
)


def link_rows(db: Path) -> list[tuple[str, str | None, bytes | None]]:
    with sqlite3.connect(db) as conn:
        return [
            (r[0], r[1], None if r[2] is None else bytes(r[2]))
            for r in conn.execute("SELECT state, handle, bundle FROM device_links")
        ]


async def join(
    existing: HotlineClient, server_url: str, home: Path
) -> tuple[HotlineClient, LinkCode]:
    """The whole exchange; the new device already waits when the approval happens."""
    pending = await start_join(server_url)
    waiting = asyncio.create_task(
        finish_join(pending, home, PASSPHRASE, scrypt=FAST_SCRYPT, poll_interval=0.05)
    )
    await asyncio.sleep(0.2)
    assert not waiting.done()  # polling: nothing to collect yet
    request = await open_link(existing, str(pending.code))
    assert request.fingerprint == pending.fingerprint  # what the user compares on both screens
    assert request.device == pending.device
    await approve_link(existing, request)
    return await asyncio.wait_for(waiting, 10), pending.code


async def test_join_and_approve_then_messages_flow_both_ways(
    connected_pair, live_server: LiveServer, tmp_path: Path
) -> None:
    washington, ottawa = connected_pair
    number_before = ottawa.safety_number(washington.handle)
    phone, _ = await join(washington, live_server.url, tmp_path / "potus-phone")
    try:
        assert phone.handle == washington.handle and phone.device_id != washington.device_id
        desk, mine = washington.keystore.load(), phone.keystore.load()
        assert mine.identity_key == desk.identity_key  # same identity key: same safety numbers
        assert set(mine.contacts) == {ottawa.handle} and mine.messages == []
        assert mine.archive == desk.archive and mine.transcripts == desk.transcripts
        assert [d.device_id for d in await list_devices(phone)] == [
            washington.device_id,
            phone.device_id,
        ]
        # Messages sent afterwards reach the new device...
        await ottawa.send_text(washington.handle, "to all your devices")
        for device in (washington, phone):
            texts = [e.text for e in await device.sync() if e.kind == "message"]
            assert texts == ["to all your devices"]
        # ...and what it sends reaches the contact (and, as a sent copy, the old device).
        await phone.send_text(ottawa.handle, "from my new phone")
        assert [e.text for e in await ottawa.sync() if e.kind == "message"] == ["from my new phone"]
        copies = [e for e in await washington.sync() if e.kind == "message"]
        assert [(e.text, e.outgoing) for e in copies] == [("from my new phone", True)]
        assert ottawa.safety_number(washington.handle) == number_before
        assert phone.safety_number(ottawa.handle) == washington.safety_number(ottawa.handle)
        # The server kept nothing of the bundle once it was collected.
        assert link_rows(live_server.db_path) == [("collected", washington.handle, None)]
    finally:
        await phone.close()


async def test_server_database_never_holds_the_identity_key_or_the_secret(
    connected_pair, live_server: LiveServer, tmp_path: Path
) -> None:
    washington, _ = connected_pair
    phone, code = await join(washington, live_server.url, tmp_path / "phone")
    await phone.close()
    identity = b64d(washington.keystore.load().identity_key)
    auth = derive_link_key(code.secret, "auth")
    secrets = [identity, b64e(identity).encode(), code.secret, b64e(code.secret).encode(), auth]
    secrets.append(b64e(auth).encode())
    files = sorted(live_server.db_path.parent.glob(live_server.db_path.name + "*"))
    assert files
    for path in files:
        data = path.read_bytes()
        for secret in secrets:
            assert secret not in data, f"{path.name} holds a secret"


async def test_wrong_code_is_refused_and_nothing_stored(
    connected_pair, live_server: LiveServer
) -> None:
    washington, _ = connected_pair
    pending = await start_join(live_server.url)
    code = pending.code
    wrong_secret = LinkCode(code.link_id, code.server_url, bytes(16))
    unknown_link = LinkCode("no-such-link", code.server_url, code.secret)
    other_server = LinkCode(code.link_id, "http://127.0.0.1:1", code.secret)
    for bad in (wrong_secret, unknown_link, other_server):
        with pytest.raises(LinkInvalid) as caught:
            await open_link(washington, str(bad))
        assert caught.value.code == "link_invalid"
    for garbled in ("hotline:abc", "hotline-link:abc?s=xx&server=http://x", "hotline-link:abc"):
        with pytest.raises(LinkInvalid):
            await open_link(washington, garbled)
    with pytest.raises(LinkInvalid):  # the new device's poll needs the secret too
        await collect(
            type(pending)(wrong_secret, pending.account, pending.device, pending.link_key, 0)
        )
    assert [d.device_id for d in await list_devices(washington)] == [washington.device_id]
    assert link_rows(live_server.db_path) == [("pending", None, None)]


async def test_substituted_keys_are_detected(connected_pair, live_server: LiveServer) -> None:
    """A server that swaps in its own link key cannot forge the code's binding tag."""
    washington, _ = connected_pair
    pending = await start_join(live_server.url)
    with sqlite3.connect(live_server.db_path) as conn:
        conn.execute("UPDATE device_links SET link_key = ?", (bytes(32),))
    with pytest.raises(BadSignature):
        await open_link(washington, str(pending.code))


async def test_a_bundle_forged_by_the_server_does_not_open(
    connected_pair, live_server: LiveServer, tmp_path: Path
) -> None:
    """The server knows the link key but not the code's secret, which the sealing binds."""
    washington, _ = connected_pair
    pending = await start_join(live_server.url)
    await approve_link(washington, await open_link(washington, str(pending.code)))
    forged = link_seal(pending.link_key.public_bytes, b"{}", b"hotline/v1/device-link/bundle")
    with sqlite3.connect(live_server.db_path) as conn:
        conn.execute("UPDATE device_links SET bundle = ?", (forged,))
    with pytest.raises(DecryptionFailed):
        await finish_join(pending, tmp_path / "phone", PASSPHRASE, scrypt=FAST_SCRYPT)
    assert not (tmp_path / "phone").exists()


async def test_replayed_link_is_refused_and_nothing_stored(
    connected_pair, live_server: LiveServer, tmp_path: Path
) -> None:
    washington, ottawa = connected_pair
    pending = await start_join(live_server.url)
    request = await open_link(washington, str(pending.code))
    await approve_link(washington, request)
    # The same code again, even by another principal of the server: used once.
    for device in (washington, ottawa):
        with pytest.raises(LinkUsed) as caught:
            await open_link(device, str(pending.code))
        assert caught.value.code == "link_used"
    with pytest.raises(LinkUsed):  # replaying the approval itself
        await approve_link(ottawa, request)
    assert [d.device_id for d in await list_devices(ottawa)] == [ottawa.device_id]
    phone = await finish_join(pending, tmp_path / "phone", PASSPHRASE, scrypt=FAST_SCRYPT)
    await phone.close()
    with pytest.raises(LinkUsed):  # the bundle is handed out once
        await collect(pending)
    assert link_rows(live_server.db_path) == [("collected", washington.handle, None)]


async def test_expired_link_is_refused_and_nothing_stored(tmp_path: Path) -> None:
    skew = [0.0]
    server, stop = await start_server(tmp_path / "s.db", clock=lambda: time.time() + skew[0])
    try:
        handle = f"potus@{server.config.domain}"
        token = await issue_enrolment(server.store, handle, time.time())
        desk = await HotlineClient.register(
            tmp_path / "desk",
            PASSPHRASE,
            server_url=server.url,
            enrolment_token=token,
            handle=handle,
            display_name="POTUS",
            scrypt=FAST_SCRYPT,
        )
        try:
            pending = await start_join(server.url)
            await desk.login()
            skew[0] = 601.0
            with pytest.raises(LinkExpired) as caught:
                await open_link(desk, str(pending.code))
            assert caught.value.code == "link_expired"
            with pytest.raises(LinkExpired):
                await finish_join(pending, tmp_path / "phone", PASSPHRASE, scrypt=FAST_SCRYPT)
            assert not (tmp_path / "phone").exists()
            assert [d.device_id for d in await list_devices(desk)] == [desk.device_id]
            assert link_rows(server.db_path) == [("pending", None, None)]
        finally:
            await desk.close()
    finally:
        await stop()


async def test_max_devices_policy_is_respected_at_both_ends(tmp_path: Path) -> None:
    server, stop = await run_policy_server(tmp_path)  # max_devices = 1
    try:
        desk = await enrol_with_policy(server, tmp_path, "alice")
        try:
            pending = await start_join(server.url)
            request = await open_link(desk, str(pending.code))
            with pytest.raises(ForbiddenByPolicy):
                await approve_link(desk, request)
            # A modified client that skips its own check is refused by the server too.
            async with desk._tx() as (state, _):
                state.policy = None
            assert policy_pin.current(desk.keystore.load()) is None
            with pytest.raises(ForbiddenByPolicy):
                await approve_link(desk, request)
            assert [d.device_id for d in await list_devices(desk)] == [desk.device_id]
            assert link_rows(server.db_path) == [("pending", None, None)]
        finally:
            await desk.close()
    finally:
        await stop()
