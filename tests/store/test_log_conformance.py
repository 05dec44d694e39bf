"""Conformance of the records log half of the store, on every backend."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from test_conformance import enrol, item

from hotline.records.hasher import hash_leaf
from hotline.store import LogLeaf, SqlStore, Store, TreeHeadRow, open_store
from hotline.wire.errors import AlreadyExists, UnknownDevice


def leaf(record_id: str, body: bytes | None = None) -> LogLeaf:
    data = body if body is not None else f"sealed {record_id}".encode()
    return LogLeaf(record_id=record_id, leaf=data, leaf_hash=hash_leaf(data), device_id="d1")


async def test_append_assigns_gap_free_indices_in_order(store: Store) -> None:
    assert await store.log_size() == 0
    assert await store.append_records([leaf("a"), leaf("b")], 1.0) == [0, 1]
    assert await store.append_records([leaf("c")], 2.0) == [2]
    assert await store.log_size() == 3
    entries = await store.log_entries(0, 10)
    assert [(e.index, e.record_id) for e in entries] == [(0, "a"), (1, "b"), (2, "c")]
    assert await store.leaf_hashes(1, 3) == [hash_leaf(b"sealed b"), hash_leaf(b"sealed c")]
    assert await store.record_index("b") == 1
    assert await store.record_index("zzz") is None


async def test_append_is_idempotent_per_record_id(store: Store) -> None:
    await store.append_records([leaf("a"), leaf("b")], 1.0)
    assert await store.append_records([leaf("b"), leaf("c")], 2.0) == [1, 2]
    assert await store.log_size() == 3


async def test_append_conflicting_record_refused_nothing_stored(store: Store) -> None:
    await store.append_records([leaf("a")], 1.0)
    with pytest.raises(AlreadyExists):
        await store.append_records([leaf("b"), leaf("a", b"different bytes")], 2.0)
    assert await store.log_size() == 1
    assert [e.record_id for e in await store.log_entries(0, 10)] == ["a"]


async def test_concurrent_appends_never_share_an_index(store: Store) -> None:
    results = await asyncio.gather(
        *(store.append_records([leaf(f"r{i}-0"), leaf(f"r{i}-1")], 1.0) for i in range(10))
    )
    indices = sorted(i for pair in results for i in pair)
    assert indices == list(range(20))
    for pair in results:
        assert pair[1] == pair[0] + 1  # a batch is contiguous
    assert await store.log_size() == 20


async def test_enqueue_with_record_is_one_transaction(store: Store) -> None:
    await enrol(store, "pm", "d1")
    ok = await store.enqueue(
        message_id="m1",
        sender_handle="pm",
        sender_device="d1",
        items=[item("d1")],
        now=1.0,
        record=leaf("rec-m1"),
    )
    assert ok and await store.record_index("rec-m1") == 0
    # A retry of the same message appends nothing more.
    again = await store.enqueue(
        message_id="m1",
        sender_handle="pm",
        sender_device="d1",
        items=[item("d1")],
        now=2.0,
        record=leaf("rec-m1"),
    )
    assert not again and await store.log_size() == 1
    # A message that fails (unknown device) leaves no record behind.
    with pytest.raises(UnknownDevice):
        await store.enqueue(
            message_id="m2",
            sender_handle="pm",
            sender_device="d1",
            items=[item("ghost")],
            now=3.0,
            record=leaf("rec-m2"),
        )
    assert await store.record_index("rec-m2") is None and await store.log_size() == 1


async def test_tree_heads(store: Store) -> None:
    assert await store.latest_tree_head() is None
    for size in (1, 3, 2):
        await store.put_tree_head(TreeHeadRow(size, b"head%d" % size, bytes(64), float(size)))
    kept = await store.put_tree_head(TreeHeadRow(3, b"other", bytes(64), 9.0))  # first one kept
    assert (kept.head, kept.created_at) == (b"head3", 3.0)  # and returned: it is authoritative
    heads = await store.tree_heads()
    assert [(h.size, h.head) for h in heads] == [(1, b"head1"), (2, b"head2"), (3, b"head3")]
    assert [h.size for h in await store.tree_heads(after_size=1, limit=1)] == [2]
    latest = await store.latest_tree_head()
    assert latest is not None and latest.size == 3
    assert hashlib.sha256(latest.head).digest()


async def test_racing_heads_for_one_size_all_get_the_first(store: SqlStore) -> None:
    """Two workers (their own connections) sign the same size at once, with different
    timestamps: both get back the one head that was stored."""
    url = store.engine.url.render_as_string(hide_password=False)
    workers = [await open_store(url) for _ in range(4)]
    try:
        for size in range(1, 11):
            got = await asyncio.gather(
                *(
                    w.put_tree_head(TreeHeadRow(size, b"w%d-%d" % (n, size), bytes(64), float(n)))
                    for n, w in enumerate(workers)
                )
            )
            assert len({g.head for g in got}) == 1
            (stored,) = await store.tree_heads(after_size=size - 1, limit=1)
            assert stored.head == got[0].head
    finally:
        for worker in workers:
            await worker.close()
