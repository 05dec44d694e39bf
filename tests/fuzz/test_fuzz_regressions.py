"""Every crash the fuzzers found, replayed from ``tests/fuzz/regressions/<decoder>/*.bin``.

Each test states the contract the input broke. While the source is not fixed the test is
``xfail(strict=True)``: the suite stays green, and the day the fix lands the test passes,
strict xfail turns that into a failure, and whoever fixed it removes the mark (and the
matching entry of ``KNOWN_CRASHES`` in ``test_fuzz_decoders.py``).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any, cast

import websockets
from harness import FAST_SCRYPT, PASSPHRASE, start_server

from hotline.client.device import HotlineClient
from hotline.client.inbox import handle_item
from hotline.server.admin import issue_enrolment
from hotline.wire import api
from hotline.wire.codec import decode

REGRESSIONS = Path(__file__).resolve().parent / "regressions"


def inbox_item(name: str) -> api.InboxItem:
    """A saved hostile mailbox item (exact JSON as the server would send it)."""
    return decode((REGRESSIONS / "inbox_item" / name).read_bytes(), api.InboxItem)


async def handle_alone(item: api.InboxItem) -> list[Any]:
    """``handle_item`` for an item whose body is refused before any client state is used."""
    none = cast(Any, None)
    return await handle_item(none, none, none, item, {})


async def test_contact_request_with_non_json_body_is_a_warning() -> None:
    events = await handle_alone(inbox_item("contact_request_body_not_json.bin"))
    assert [e.kind for e in events] == ["warning"]


async def test_bounce_with_non_json_body_is_a_warning() -> None:
    events = await handle_alone(inbox_item("bounce_body_not_json.bin"))
    assert [e.kind for e in events] == ["warning"]


async def test_bounce_with_wrong_shape_is_a_warning() -> None:
    events = await handle_alone(inbox_item("bounce_body_wrong_type.bin"))
    assert [e.kind for e in events] == ["warning"]


async def test_olm_item_with_non_canonical_base64_does_not_escape_process(
    tmp_path: Path,
) -> None:
    live, stop = await start_server(tmp_path / "server.db")
    try:
        handle = f"bob@{live.config.domain}"
        bob = await HotlineClient.register(
            tmp_path / "bob",
            PASSPHRASE,
            server_url=live.url,
            enrolment_token=await issue_enrolment(live.store, handle, time.time()),
            handle=handle,
            display_name="Bob",
            scrypt=FAST_SCRYPT,
        )
        try:
            await bob._ensure_login()
            events = await bob.process([inbox_item("olm_body_not_canonical_base64.bin")])
            assert any(e.kind == "warning" for e in events)
        finally:
            await bob.close()
    finally:
        await stop()


async def test_ack_frame_beyond_int64_is_refused_and_socket_survives(tmp_path: Path) -> None:
    live, stop = await start_server(tmp_path / "server.db")
    try:
        handle = f"bob@{live.config.domain}"
        bob = await HotlineClient.register(
            tmp_path / "bob",
            PASSPHRASE,
            server_url=live.url,
            enrolment_token=await issue_enrolment(live.store, handle, time.time()),
            handle=handle,
            display_name="Bob",
            scrypt=FAST_SCRYPT,
        )
        try:
            await bob._ensure_login()
            url = "ws" + live.url[len("http") :] + "/v1/ws"
            headers = {"authorization": f"Bearer {bob.server.token}"}
            async with websockets.connect(url, additional_headers=headers) as ws:
                await ws.send((REGRESSIONS / "ws_frame" / "ack_seq_beyond_int64.bin").read_bytes())
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert reply["error"]["code"] == "malformed"
                await ws.send(b"not json")  # still served afterwards
                reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
                assert reply["error"]["code"] == "malformed"
        finally:
            await bob.close()
    finally:
        await stop()
