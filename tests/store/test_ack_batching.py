"""Websocket acks of every connection are written together (``server.ack_batcher``), on every
store backend."""

from __future__ import annotations

import asyncio

from test_conformance import T0, enrol, item

from hotline.server.ack_batcher import AckBatcher
from hotline.store import SqlStore
from hotline.wire.errors import StorageError


class CountingStore:
    """The real store, counting ``ack_many`` transactions (and failing them on request)."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.flushes: list[list[tuple[str, list[int]]]] = []
        self.fail = False

    async def ack_many(self, acks: list[tuple[str, list[int]]]) -> int:
        self.flushes.append(acks)
        if self.fail:
            raise StorageError("the database refused a write")
        return await self.store.ack_many(acks)


async def _mailboxes(store: SqlStore, count: int) -> dict[str, list[int]]:
    seqs = {}
    for n in range(count):
        await enrol(store, f"p{n}")
        await store.enqueue(
            message_id=f"m{n}",
            sender_handle="potus",
            sender_device="potus-1",
            items=[item(f"p{n}-1"), item(f"p{n}-1")],
            now=T0,
        )
        seqs[f"p{n}-1"] = [r.seq for r in await store.pending(f"p{n}-1")]
    return seqs


async def test_acks_arriving_together_are_one_transaction(store: SqlStore) -> None:
    seqs = await _mailboxes(store, 6)
    counting = CountingStore(store)
    batcher = AckBatcher(counting)  # type: ignore[arg-type]
    await asyncio.gather(*(batcher.ack(device, mine) for device, mine in seqs.items()))
    assert len(counting.flushes) == 1
    for device in seqs:
        assert await store.pending(device) == []


async def test_acks_during_a_flush_go_in_the_next(store: SqlStore) -> None:
    seqs = await _mailboxes(store, 4)
    counting = CountingStore(store)
    batcher = AckBatcher(counting)  # type: ignore[arg-type]
    devices = list(seqs)
    first = asyncio.create_task(batcher.ack(devices[0], seqs[devices[0]]))
    await asyncio.sleep(0)  # the first flush starts
    await asyncio.sleep(0)
    rest = [asyncio.create_task(batcher.ack(d, seqs[d])) for d in devices[1:]]
    await asyncio.gather(first, *rest)
    assert [len(f) for f in counting.flushes] == [1, 3]
    assert all([await store.pending(d) == [] for d in devices])
    await batcher.close()


async def test_a_failed_flush_fails_its_acks_and_keeps_the_rows(store: SqlStore) -> None:
    seqs = await _mailboxes(store, 2)
    counting = CountingStore(store)
    batcher = AckBatcher(counting)  # type: ignore[arg-type]
    counting.fail = True
    results = await asyncio.gather(
        *(batcher.ack(d, s) for d, s in seqs.items()), return_exceptions=True
    )
    assert all(isinstance(r, StorageError) for r in results)
    for device, mine in seqs.items():
        assert [r.seq for r in await store.pending(device)] == mine
    counting.fail = False
    await batcher.ack(*next(iter(seqs.items())))  # the next flush works
    assert await store.pending(next(iter(seqs))) == []
