"""Conformance of the one-transaction send path (send_context, enqueue_message and
append_records_tail), on every backend."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from sqlalchemy import text
from test_conformance import HOUR, T0, blob, enrol, item
from test_delegation_conformance import grant
from test_log_conformance import leaf

from hotline.records.hasher import hash_leaf
from hotline.store import (
    DeliveryItem,
    Enqueued,
    HeadSigner,
    LogLeaf,
    LogTail,
    OutboundItem,
    SqlStore,
    Store,
    TreeHeadRow,
)
from hotline.wire.errors import AlreadyExists, UnknownDevice


async def relay(
    store: Store,
    message_id: str,
    record: LogLeaf | None,
    items: list[DeliveryItem],
    *,
    now: float = T0,
    tail_from: int = 0,
    sign_head: HeadSigner | None = None,
) -> Enqueued:
    """potus-1 sends ``message_id`` with its record."""
    return await store.enqueue_message(
        message_id=message_id,
        sender_handle="potus",
        sender_device="potus-1",
        items=items,
        now=now,
        record=record,
        tail_from=tail_from,
        sign_head=sign_head,
    )


def signer(seen: list[LogTail], label: bytes = b"head") -> HeadSigner:
    """Signs (in name only) a head for the size the tail reaches; notes each tail."""

    def sign(tail: LogTail) -> TreeHeadRow:
        seen.append(tail)
        size = tail.start + len(tail.hashes)
        return TreeHeadRow(size, label + b" %d" % size, b"signature", 1.0)

    return sign


async def test_send_context_reads_every_check_at_once(store: Store) -> None:
    await enrol(store, "pm", "pm-2", "pm-1")
    await enrol(store, "potus", "potus-1", "potus-2")
    context = await store.send_context("potus-1", "potus", "pm", T0)
    assert context.undelivered == 0
    assert not context.allowed  # pm has no allowlist yet
    assert context.recipient_devices == ["pm-1", "pm-2"]  # ordered by device id
    assert context.sender_devices == ["potus-1", "potus-2"]
    await store.set_allowlist("pm", blob(1, b"allow"), ["potus"])
    await store.enqueue(
        message_id="m1",
        sender_handle="potus",
        sender_device="potus-1",
        items=[item("pm-1"), item("pm-2")],
        now=T0,
        outbound=[OutboundItem("berlin", "m1", "potus-1", b"payload")],
    )
    context = await store.send_context("potus-1", "potus", "pm", T0)
    assert context.allowed
    assert context.undelivered == 3  # two mailbox items and one queued peer message
    assert context.undelivered == await store.count_undelivered("potus-1")


async def test_send_context_for_an_aide_reads_the_principal_in_the_same_read(
    store: Store,
) -> None:
    """An aide writing for a principal: the allowlist is asked for the principal, and the
    principal's devices and grants come with the rest."""
    await enrol(store, "pm", "pm-1")
    await enrol(store, "potus", "potus-2", "potus-1")
    await enrol(store, "chief", "chief-1")
    await store.put_grant(grant("g-chief"), max_active=8, now=T0)  # potus -> chief
    await store.set_allowlist("pm", blob(1, b"allow"), ["potus"])
    context = await store.send_context("chief-1", "chief", "pm", T0 + 10, on_behalf_of="potus")
    assert context.allowed  # pm allows potus, for whom chief writes
    assert context.principal_devices == ["potus-1", "potus-2"]
    assert (context.recipient_devices, context.sender_devices) == (["pm-1"], ["chief-1"])
    assert [(g.principal, g.aide, g.aide_devices) for g in context.grants] == [
        ("potus", "chief", ("chief-1",))
    ]
    plain = await store.send_context("chief-1", "chief", "pm", T0 + 10)
    assert not plain.allowed  # chief is not on pm's allowlist
    assert plain.principal_devices == [] and plain.grants == []


async def test_send_context_to_oneself_and_to_unknown(store: Store) -> None:
    await enrol(store, "potus", "potus-1", "potus-2")
    own = await store.send_context("potus-1", "potus", "potus", T0)
    assert own.allowed  # one's own other devices are always reachable
    assert own.recipient_devices == own.sender_devices == ["potus-1", "potus-2"]
    unknown = await store.send_context("potus-1", "potus", "nobody", T0)
    assert not unknown.allowed and unknown.recipient_devices == []


async def test_send_context_reads_active_grants_with_aide_devices(store: Store) -> None:
    """The grants of both principals come with the rest (no per-send grant queries): active
    ones only, each with its aide's current devices (none for an aide without a device)."""
    await enrol(store, "pm", "pm-1")
    await enrol(store, "potus", "potus-1")
    await enrol(store, "chief", "chief-2", "chief-1")
    await store.put_grant(grant("g-chief"), max_active=8, now=T0)  # potus -> chief
    await store.put_grant(grant("g-nodevice", aide="deputy"), max_active=8, now=T0)
    await store.put_grant(grant("g-expired", aide="old", expires_at=T0 + 5), max_active=8, now=T0)
    await store.put_grant(grant("g-revoked", aide="gone"), max_active=8, now=T0)
    await store.revoke_grant("g-revoked", "potus", b"revocation", b"r" * 64, T0 + 1)
    context = await store.send_context("pm-1", "pm", "potus", T0 + 10)
    assert [g.aide for g in context.grants] == [
        "chief",
        "deputy",
    ]
    chief, deputy = context.grants
    assert (chief.principal, chief.payload, chief.aide_devices) == (
        "potus",
        b"grant g-chief",
        ("chief-1", "chief-2"),
    )
    assert deputy.aide_devices == ()
    # The sender's grants too (potus writing to pm), oldest first then by grant id; none of
    # an unrelated principal's.
    assert [g.aide for g in (await store.send_context("potus-1", "potus", "pm", T0)).grants] == [
        "chief",
        "old",
        "deputy",
    ]
    assert (await store.send_context("pm-1", "pm", "pm", T0 + HOUR + 1)).grants == []


async def test_enqueue_message_returns_index_and_tail(store: Store) -> None:
    await enrol(store, "pm")
    await store.append_records([leaf("a"), leaf("b")], 1.0)
    done = await relay(store, "m1", leaf("rec-m1"), [item("pm-1")], tail_from=1)
    assert done.stored and done.record_index == 2
    assert done.tail == LogTail(1, [hash_leaf(b"sealed b"), hash_leaf(b"sealed rec-m1")])
    assert await store.record_index("rec-m1") == 2
    assert len(await store.pending("pm-1")) == 1
    # A retry stores nothing and answers with the first index, without a tail.
    again = await relay(store, "m1", leaf("rec-m1"), [item("pm-1")], now=T0 + 1, tail_from=0)
    assert (again.stored, again.record_index, again.tail) == (False, 2, None)
    assert await store.log_size() == 3 and len(await store.pending("pm-1")) == 1
    # A tail asked from past the record is empty.
    later = await relay(store, "m2", leaf("rec-m2"), [], now=T0 + 2, tail_from=10)
    assert later.record_index == 3 and later.tail is not None and later.tail.hashes == []


async def test_enqueue_message_bad_input_damages_nothing(store: Store) -> None:
    await enrol(store, "pm")
    await store.append_records([leaf("taken")], 1.0)
    with pytest.raises(UnknownDevice):
        await relay(store, "m1", leaf("rec-m1"), [item("ghost")])
    with pytest.raises(AlreadyExists):
        await relay(store, "m1", leaf("taken", b"other bytes"), [item("pm-1")])
    assert await store.log_size() == 1 and await store.pending("pm-1") == []
    # Neither attempt remembered the message id: the corrected retry goes through.
    done = await relay(store, "m1", leaf("rec-m1"), [item("pm-1")])
    assert done.stored and done.record_index == 1


async def test_append_records_tail(store: Store) -> None:
    first = await store.append_records_tail([leaf("a"), leaf("b")], 1.0, 0)
    assert first.indices == [0, 1]
    assert first.tail == LogTail(0, [hash_leaf(b"sealed a"), hash_leaf(b"sealed b")])
    # Idempotent per record id, and the tail starts where asked.
    second = await store.append_records_tail([leaf("b"), leaf("c")], 2.0, 2)
    assert second.indices == [1, 2] and second.tail == LogTail(2, [hash_leaf(b"sealed c")])
    assert (await store.append_records_tail([], 3.0, 1)).indices == []
    with pytest.raises(AlreadyExists):
        await store.append_records_tail([leaf("d"), leaf("a", b"other")], 4.0, 0)
    assert await store.log_size() == 3


async def test_concurrent_tails_are_gap_free(store: Store) -> None:
    """Every tail read by an appender is exactly the committed prefix's hashes."""
    results = await asyncio.gather(
        *(store.append_records_tail([leaf(f"r{i}")], 1.0, 0) for i in range(12))
    )
    hashes = await store.leaf_hashes(0, 12)
    for result in results:
        (index,) = result.indices
        assert result.tail == LogTail(0, hashes[: index + 1])


async def test_enqueue_message_without_a_record(store: Store) -> None:
    await enrol(store, "pm")
    assert await relay(store, "m1", None, [item("pm-1")]) == Enqueued(True, None, None)
    assert await relay(store, "m1", None, [item("pm-1")]) == Enqueued(False, None, None)
    assert await store.log_size() == 0 and len(await store.pending("pm-1")) == 1


async def test_many_concurrent_writers_all_commit(store: Store) -> None:
    """No writer of one process starves past the database's lock timeout (SQLite's busy
    handler is not fair; the store queues its own writers first)."""
    await enrol(store, "pm")
    results = await asyncio.gather(
        *(relay(store, f"m{i}", leaf(f"r{i}"), [item("pm-1")]) for i in range(60))
    )
    assert sorted(r.record_index for r in results if r.record_index is not None) == list(range(60))
    assert len(await store.pending("pm-1", limit=100)) == 60


async def test_head_signed_and_stored_in_the_appending_transaction(store: Store) -> None:
    seen: list[LogTail] = []
    first = await store.append_records_tail([leaf("a"), leaf("b")], 1.0, 0, signer(seen))
    assert seen == [first.tail]
    assert first.head == TreeHeadRow(2, b"head 2", b"signature", 1.0)
    assert await store.latest_tree_head() == first.head
    # A head of that size is already stored: it stays, and is the one answered.
    again = await store.append_records_tail([leaf("b")], 2.0, 0, signer([], b"other"))
    assert again.indices == [1] and again.head == first.head
    assert [h.head for h in await store.tree_heads()] == [b"head 2"]
    # A signer that declines: the leaves are appended, no head is stored.
    declined = await store.append_records_tail([leaf("c")], 3.0, 2, lambda tail: None)
    assert declined.indices == [2] and declined.head is None
    assert [h.size for h in await store.tree_heads()] == [2]


async def test_enqueue_message_stores_the_head_with_the_message(store: Store) -> None:
    await enrol(store, "pm")
    seen: list[LogTail] = []
    done = await relay(store, "m1", leaf("rec-m1"), [item("pm-1")], sign_head=signer(seen))
    assert seen == [done.tail] and done.head is not None and done.head.size == 1
    assert await store.latest_tree_head() == done.head
    # A retried message stores nothing and signs nothing.
    retry = await relay(store, "m1", leaf("rec-m1"), [item("pm-1")], sign_head=signer(seen))
    assert not retry.stored and retry.head is None and len(seen) == 1

    def broken(tail: LogTail) -> TreeHeadRow:
        raise RuntimeError("the signer fails")

    # The head is part of the send: a signer that fails leaves nothing of the message.
    with pytest.raises(RuntimeError):
        await relay(store, "m2", leaf("rec-m2"), [item("pm-1")], sign_head=broken)
    assert await store.log_size() == 1 and len(await store.pending("pm-1")) == 1
    assert [h.size for h in await store.tree_heads()] == [1]


async def test_one_devices_mailbox_items_commit_in_seq_order(store: Store) -> None:
    """The push loop reads a mailbox past the last seq it pushed: an item whose seq is lower
    than one already visible would wait until the next connection. A second send to the same
    device waits for the first to commit, so seqs become visible in order."""
    await enrol(store, "pm")
    sql = cast(SqlStore, store)
    first_committed = asyncio.Event()
    async with sql._tx() as conn:  # the first send, held open after writing its item
        await sql._enqueue_in(conn, ("m1", "potus", "potus-1"), [item("pm-1")], T0, None, None)
        second = asyncio.create_task(relay(store, "m2", None, [item("pm-1")]))
        await asyncio.sleep(0.3)
        # Not visible before the first commits (had it committed, its seq would be higher
        # than the first's, visible while the lower one was not).
        assert [r.message_id for r in await store.pending("pm-1")] == []
        first_committed.set()
    done = await second
    assert done.stored and first_committed.is_set()
    rows = await store.pending("pm-1")
    assert [r.message_id for r in rows] == ["m1", "m2"] and rows[0].seq < rows[1].seq


async def test_backlog_count_reads_an_index_not_the_table(store: Store) -> None:
    """Every send counts the sender's undelivered items: with a scan, each send would cost in
    proportion to every message waiting on the server."""
    from hotline.store import prepared

    sql = cast(SqlStore, store)
    async with sql.engine.connect() as conn:
        for statement, index in (
            (prepared.UNDELIVERED_LOCAL, "ix_deliveries_sender_device"),
            (prepared.UNDELIVERED_REMOTE, "ix_outbound_sender_device"),
        ):
            bound = statement.params(sender_device="potus-1")
            sql_text = str(bound.compile(conn, compile_kwargs={"literal_binds": True}))
            explain = "EXPLAIN QUERY PLAN " if conn.dialect.name == "sqlite" else "EXPLAIN "
            if conn.dialect.name == "postgresql":
                await conn.execute(text("SET LOCAL enable_seqscan = off"))
            plan = " ".join(str(r) for r in await conn.execute(text(explain + sql_text)))
            assert index in plan, plan
