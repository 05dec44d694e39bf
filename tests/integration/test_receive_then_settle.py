"""A received message is handed over before what it obliges is sent (``HotlineClient.receive``
then ``settle``): the delivery receipt to its sender and this device's own record of it. Both
are saved with the message, so a crash between the two steps loses neither."""

from __future__ import annotations

import secrets
from pathlib import Path

from harness import PASSPHRASE
from test_capture import log_records

from hotline.client.device import HotlineClient
from hotline.client.mailbox import MAX_RECEIPT_IDS
from hotline.wire import api


async def _fetch(client: HotlineClient) -> list[api.InboxItem]:
    reply = await client.server.call(
        "GET", "/v1/inbox", response=api.InboxResponse, params={"limit": "100"}
    )
    assert reply is not None
    return reply.items


async def _status(client: HotlineClient, peer: HotlineClient) -> list[str]:
    await client.sync()
    return [m.status for m in client.history(peer.handle) if m.outgoing]


def _received_records(live_server: object, handle: str) -> list[str]:
    return [
        r.body
        for r in log_records(live_server.db_path)  # type: ignore[attr-defined]
        if r.kind == "message" and r.side == "received" and r.principal == handle
    ]


async def test_message_handed_over_before_its_receipt_and_record(
    connected_pair: tuple[HotlineClient, HotlineClient], live_server: object
) -> None:
    washington, ottawa = connected_pair
    sent = await washington.send_text(ottawa.handle, "Handed over first.")
    events = await ottawa.receive(await _fetch(ottawa))
    assert [e.text for e in events if e.kind == "message"] == ["Handed over first."]
    (received,) = ottawa.history(washington.handle)
    assert received.record_index == -1  # sealed and saved, not yet on the log
    state = ottawa.keystore.load()
    assert state.owed_receipts == {washington.handle: [sent.message_id]}
    assert state.pending_records
    assert await _status(washington, ottawa) == ["sent"]
    assert _received_records(live_server, ottawa.handle) == []

    assert await ottawa.settle() == []
    state = ottawa.keystore.load()
    assert state.owed_receipts == {} and state.pending_records == []
    assert ottawa.history(washington.handle)[0].record_index >= 0
    assert await _status(washington, ottawa) == ["delivered"]
    assert _received_records(live_server, ottawa.handle) == ["Handed over first."]


async def test_receipt_and_record_owed_survive_a_crash(
    connected_pair: tuple[HotlineClient, HotlineClient], live_server: object, tmp_path: Path
) -> None:
    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "Before the crash.")
    await ottawa.receive(await _fetch(ottawa))
    # The process dies here: no settle. A new one opens the same keystore.
    restarted = await HotlineClient.open(tmp_path / "home-pm", PASSPHRASE)
    try:
        assert await restarted.settle() == []
        assert await _status(washington, ottawa) == ["delivered"]
        assert _received_records(live_server, ottawa.handle) == ["Before the crash."]
        assert restarted.keystore.load().owed_receipts == {}
    finally:
        await restarted.close()


async def test_long_list_of_owed_receipts_goes_in_envelopes_the_wire_allows(
    connected_pair: tuple[HotlineClient, HotlineClient],
) -> None:
    washington, ottawa = connected_pair
    sent = await washington.send_text(ottawa.handle, "Acknowledged in the second envelope.")
    await ottawa.receive(await _fetch(ottawa))
    async with ottawa.keystore.transaction() as state:
        # ids that are not washington's messages, ahead of the real one: one envelope of all
        # of them would exceed Receipt.message_ids' limit and be refused by washington
        unknown = [secrets.token_urlsafe(16) for _ in range(MAX_RECEIPT_IDS + 20)]
        state.owed_receipts[washington.handle] = [*unknown, sent.message_id]
    assert await ottawa.settle() == []
    await washington.sync()
    assert [m.status for m in washington.history(ottawa.handle) if m.outgoing] == ["delivered"]
