"""Conformance of the federation half of the store, on every backend."""

from __future__ import annotations

import pytest
from test_conformance import enrol, item

from hotline.store import OutboundItem, Store
from hotline.wire.errors import ReplayedRequest, UnknownDevice


async def test_peers_pin_and_rotate_with_overlap(store: Store) -> None:
    assert await store.get_peer("ottawa.test") is None
    await store.put_peer("ottawa.test", "http://o", b"k1", 1.0)
    await store.put_peer("ottawa.test", "http://o2", b"k2", 2.0, overlap_until=100.0)
    peer = await store.get_peer("ottawa.test")
    assert peer is not None
    assert (peer.url, peer.key, peer.previous_key, peer.previous_until) == (
        "http://o2",
        b"k2",
        b"k1",
        100.0,
    )
    assert [p.domain for p in await store.list_peers()] == ["ottawa.test"]
    assert await store.remove_peer("ottawa.test") and not await store.remove_peer("ottawa.test")


async def test_nonce_single_use_and_expiry(store: Store) -> None:
    await store.use_nonce("o.test", "n" * 16, expires_at=10.0, now=1.0)
    with pytest.raises(ReplayedRequest):
        await store.use_nonce("o.test", "n" * 16, expires_at=10.0, now=2.0)
    await store.use_nonce("other.test", "n" * 16, expires_at=10.0, now=2.0)  # per origin
    await store.use_nonce("o.test", "n" * 16, expires_at=30.0, now=20.0)  # forgotten after expiry


async def test_outbound_queued_with_acceptance_in_order(store: Store) -> None:
    await enrol(store, "pm", "d1", "d2")
    for n in range(3):
        await store.enqueue(
            message_id=f"m{n}",
            sender_handle="pm",
            sender_device="d1",
            items=[item("d2")],
            now=float(n),
            outbound=[OutboundItem("ottawa.test", f"m{n}", "d1", b"p%d" % n)],
        )
    # A retried send queues nothing more; a refused one queues nothing at all.
    await store.enqueue(
        message_id="m0",
        sender_handle="pm",
        sender_device="d1",
        items=[item("d2")],
        now=5.0,
        outbound=[OutboundItem("ottawa.test", "m0", "d1", b"again")],
    )
    with pytest.raises(UnknownDevice):
        await store.enqueue(
            message_id="bad",
            sender_handle="pm",
            sender_device="d1",
            items=[item("ghost")],
            now=6.0,
            outbound=[OutboundItem("ottawa.test", "bad", "d1", b"x")],
        )
    assert await store.outbound_destinations() == ["ottawa.test"]
    batch = await store.outbound_batch("ottawa.test")
    assert [(r.message_id, r.payload) for r in batch] == [
        ("m0", b"p0"),
        ("m1", b"p1"),
        ("m2", b"p2"),
    ]
    await store.retry_outbound([batch[0].id], 50.0)
    assert (await store.outbound_batch("ottawa.test", 1))[0].attempts == 1
    await store.finish_outbound([r.id for r in batch[:2]])
    assert [r.message_id for r in await store.outbound_batch("ottawa.test")] == ["m2"]
