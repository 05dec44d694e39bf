"""Conformance of the federation half of the store, on every backend."""

from __future__ import annotations

import asyncio
import time

import pytest
from test_conformance import enrol, item

from hotline.store import OutboundItem, SqlStore, Store, open_store
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


# -- leases: several workers drain the queue ----------------------------------------------
async def _queue(store: Store, destinations: list[str], per_destination: int) -> None:
    await enrol(store, "pm", "d1", "d2")
    for n in range(per_destination):
        for destination in destinations:
            await store.enqueue(
                message_id=f"{destination}-{n:03d}",
                sender_handle="pm",
                sender_device="d1",
                items=[item("d2")],
                now=float(n),
                outbound=[OutboundItem(destination, f"{destination}-{n:03d}", "d1", b"p")],
            )


async def test_outbound_lease_one_owner_expiry_and_back_off(store: Store) -> None:
    await _queue(store, ["ottawa.test"], 3)
    first = await store.lease_outbound("ottawa.test", "w1", now=10.0, until=70.0, limit=2)
    assert [r.message_id for r in first] == ["ottawa.test-000", "ottawa.test-001"]
    assert await store.lease_outbound("ottawa.test", "w2", now=11.0, until=71.0) == []
    renewed = await store.lease_outbound("ottawa.test", "w1", now=12.0, until=72.0)
    assert len(renewed) == 3  # the holder renews
    # w1 dies holding the lease: nobody else until it expires, then w2 takes the same rows.
    assert await store.lease_outbound("ottawa.test", "w2", now=71.9, until=131.0) == []
    taken = await store.lease_outbound("ottawa.test", "w2", now=72.0, until=132.0)
    assert [r.id for r in taken] == [r.id for r in renewed]
    # Only the holder can release; a back-off (not_before) holds everyone, the holder too.
    await store.release_outbound("ottawa.test", "w1", not_before=500.0)
    assert await store.lease_outbound("ottawa.test", "w3", now=73.0, until=133.0) == []
    await store.release_outbound("ottawa.test", "w2", not_before=200.0)
    assert await store.lease_outbound("ottawa.test", "w2", now=199.0, until=259.0) == []
    assert await store.lease_outbound("ottawa.test", "w3", now=200.0, until=260.0) != []
    await store.release_outbound("ottawa.test", "w3")
    assert await store.lease_outbound("ottawa.test", "w1", now=201.0, until=261.0) != []
    # Another peer's lease is independent.
    await _queue_more(store)
    assert await store.lease_outbound("rome.test", "w2", now=201.0, until=261.0) != []


async def _queue_more(store: Store) -> None:
    await store.enqueue(
        message_id="rome-1",
        sender_handle="pm",
        sender_device="d1",
        items=[item("d2")],
        now=1.0,
        outbound=[OutboundItem("rome.test", "rome-1", "d1", b"p")],
    )


async def test_concurrent_drainers_send_each_row_once_in_order(store: SqlStore) -> None:
    """Four workers (each its own store, so its own connections) drain three peers at once;
    one more dies holding a lease. Every message is sent once, each peer's in order, and no
    peer is ever drained by two workers at the same time."""
    destinations = ["a.test", "b.test", "c.test"]
    await _queue(store, destinations, 40)
    url = store.engine.url.render_as_string(hide_password=False)
    workers = [await open_store(url) for _ in range(4)]
    lease_s = 0.5
    # Live workers hold a lease far longer than they need (a loaded CI machine can stall a
    # worker for a good part of a second); only the dead worker's lease is short.
    live_lease_s = 10.0
    # The dead worker: leases a.test's first batch and is never heard from again.
    now = time.time()
    orphaned = await workers[0].lease_outbound("a.test", "dead", now, now + lease_s, limit=5)
    assert len(orphaned) == 5
    sent: dict[str, list[str]] = {d: [] for d in destinations}
    holding: dict[str, str] = {}

    async def drain(name: str, worker: SqlStore) -> None:
        idle_since = time.monotonic()
        while time.monotonic() - idle_since < 3 * lease_s:
            for destination in await worker.outbound_destinations():
                now = time.time()
                rows = await worker.lease_outbound(
                    destination, name, now, now + live_lease_s, limit=7
                )
                if not rows:
                    continue
                assert destination not in holding, f"{name} and {holding[destination]} both hold"
                holding[destination] = name
                await asyncio.sleep(0.002)  # the peer call
                sent[destination] += [r.message_id for r in rows]
                await worker.finish_outbound([r.id for r in rows])
                del holding[destination]
                await worker.release_outbound(destination, name)
                idle_since = time.monotonic()
            await asyncio.sleep(0.005)

    try:
        await asyncio.wait_for(
            asyncio.gather(*(drain(f"w{n}", w) for n, w in enumerate(workers))), 60
        )
    finally:
        for worker in workers:
            await worker.close()
    for destination in destinations:
        assert sent[destination] == [f"{destination}-{n:03d}" for n in range(40)]
    assert await store.outbound_destinations() == []
