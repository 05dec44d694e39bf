"""End-to-end messaging between real clients through a real server on loopback."""

from __future__ import annotations


async def test_contacts_are_mutual_after_card_exchange(connected_pair) -> None:
    washington, ottawa = connected_pair
    assert [c.handle for c in washington.contacts()] == [ottawa.handle]
    assert [c.handle for c in ottawa.contacts()] == [washington.handle]
    assert washington.contact(ottawa.handle).status == "active"
    assert ottawa.contact(washington.handle).status == "active"


async def test_text_both_ways_with_receipts(connected_pair) -> None:
    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "Good morning, Ottawa.")
    events = await ottawa.sync()
    assert [(e.kind, e.text) for e in events] == [("message", "Good morning, Ottawa.")]
    await ottawa.send_text(washington.handle, "Good morning, Washington.")
    events = await washington.sync()
    kinds = [(e.kind, e.text) for e in events]
    assert ("message", "Good morning, Washington.") in kinds
    assert ("receipt", "delivered") in kinds
    assert [m.status for m in washington.history(ottawa.handle) if m.outgoing] == ["delivered"]
    await ottawa.send_read_receipts(washington.handle)
    await washington.sync()
    assert [m.status for m in washington.history(ottawa.handle) if m.outgoing] == ["read"]
    assert washington.transcript_digest(ottawa.handle) == ottawa.transcript_digest(
        washington.handle
    )


async def test_offline_recipient_gets_queue_in_order_once(connected_pair) -> None:
    washington, ottawa = connected_pair
    for i in range(5):
        await washington.send_text(ottawa.handle, f"message {i}")
    events = await ottawa.sync()
    assert [e.text for e in events if e.kind == "message"] == [f"message {i}" for i in range(5)]
    assert await ottawa.sync() == [] or all(e.kind != "message" for e in await ottawa.sync())
    assert [m.seq for m in ottawa.history(washington.handle)] == [1, 2, 3, 4, 5]


async def test_one_time_keys_are_replenished(connected_pair, live_server) -> None:
    from hotline.wire.api import ClaimRequest, ClaimResponse

    washington, ottawa = connected_pair
    for _ in range(40):  # drain Ottawa's published one-time keys
        await washington.server.call(
            "POST", "/v1/keys/claim", ClaimRequest(handle=ottawa.handle), ClaimResponse
        )
    assert await live_server.store.count_one_time_keys(ottawa.device_id) < 20
    async with washington.keystore.transaction() as state:
        state.sessions.clear()  # force a new session: a pre-key message
    await washington.send_text(ottawa.handle, "new session")
    assert [e.text for e in await ottawa.sync() if e.kind == "message"] == ["new session"]
    assert await live_server.store.count_one_time_keys(ottawa.device_id) >= 50 - 1
