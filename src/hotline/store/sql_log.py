"""The records log half of :class:`hotline.store.sql.SqlStore` (a mixin).

The sequencer is the single ``log_state`` row: ``UPDATE log_state SET size = size + n
RETURNING size`` hands out gap-free indices and serialises appenders (a row lock on
PostgreSQL, the write lock on SQLite), so concurrent workers never interleave a batch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from hotline.store import prepared
from hotline.store.base import (
    MAX_TAIL,
    Appended,
    HeadSigner,
    LogEntryRow,
    LogLeaf,
    LogTail,
    TreeHeadRow,
)
from hotline.store.queries import insert_if_new
from hotline.store.schema import log_entries, log_state, tree_heads
from hotline.wire.errors import AlreadyExists, HotlineError


class _HasTx(Protocol):
    def _tx(
        self, *, read_only: bool = False, conflict: HotlineError | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection]: ...


async def append_in(conn: AsyncConnection, leaves: list[LogLeaf], now: float) -> list[int]:
    """Append inside the caller's transaction (used by ``enqueue`` for capture at creation)."""
    indices: list[int | None] = []
    fresh: list[LogLeaf] = []
    for leaf in leaves:
        row = (await conn.execute(prepared.LOG_ENTRY_OF, {"record_id": leaf.record_id})).first()
        if row is None:
            indices.append(None)
            fresh.append(leaf)
        elif bytes(row.leaf) != leaf.leaf:
            raise AlreadyExists(f"record {leaf.record_id} is already in the log, different")
        else:
            indices.append(int(row.idx))
    if fresh:
        size = (await conn.execute(prepared.ADVANCE_LOG, {"count": len(fresh)})).scalar_one()
        first = int(size) - len(fresh)
        await conn.execute(
            prepared.INSERT_LOG_ENTRIES,
            [
                {
                    "idx": first + n,
                    "record_id": leaf.record_id,
                    "leaf": leaf.leaf,
                    "leaf_hash": leaf.leaf_hash,
                    "device_id": leaf.device_id,
                    "created_at": now,
                }
                for n, leaf in enumerate(fresh)
            ],
        )
        numbers = iter(range(first, first + len(fresh)))
        indices = [i if i is not None else next(numbers) for i in indices]
    return [int(i) for i in indices if i is not None]


async def tail_in(
    conn: AsyncConnection, start: int, end: int, ours: tuple[list[int], list[LogLeaf]] = ([], [])
) -> LogTail:
    """Leaf hashes ``[start, end)`` (at most MAX_TAIL) inside the appending transaction.

    The appender holds the sequencer row, and entries commit in index order behind it, so
    every index below ``end`` is committed or ours: the answer has no gaps. ``ours``: the
    indices and leaves just appended; when they are the whole range (the caller's tree was
    up to date) the hashes are theirs, with no query.
    """
    end = min(end, start + MAX_TAIL)
    if start < 0 or end <= start:
        return LogTail(max(start, 0), [])
    indices, leaves = ours
    if indices == list(range(start, end)):
        return LogTail(start, [leaf.leaf_hash for leaf in leaves])
    rows = await conn.execute(prepared.LEAF_HASHES, {"start": start, "end": end})
    return LogTail(start, [bytes(r.leaf_hash) for r in rows])


async def put_head_in(conn: AsyncConnection, head: TreeHeadRow) -> TreeHeadRow:
    """Store a signed head unless one of that size exists; returns the stored one."""
    inserted = await insert_if_new(
        conn,
        tree_heads,
        {
            "size": head.size,
            "head": head.head,
            "signature": head.signature,
            "created_at": head.created_at,
        },
    )
    if inserted:
        return head
    row = (await conn.execute(select(tree_heads).where(tree_heads.c.size == head.size))).one()
    return _head(row)


async def sign_head_in(
    conn: AsyncConnection, tail: LogTail, sign_head: HeadSigner | None
) -> TreeHeadRow | None:
    """The head ``sign_head`` signs over ``tail``, stored in the appending transaction."""
    if sign_head is None:
        return None
    head = sign_head(tail)
    return None if head is None else await put_head_in(conn, head)


class SqlLogMixin:
    """Records-log methods of the SQL store (see :class:`hotline.store.base.LogStore`)."""

    async def append_records(self: _HasTx, leaves: list[LogLeaf], now: float) -> list[int]:
        if not leaves:
            return []
        conflict = AlreadyExists("a record id is already in the log")
        async with self._tx(conflict=conflict) as conn:
            return await append_in(conn, leaves, now)

    async def append_records_tail(
        self: _HasTx,
        leaves: list[LogLeaf],
        now: float,
        tail_from: int,
        sign_head: HeadSigner | None = None,
    ) -> Appended:
        if not leaves:
            return Appended([], LogTail(max(tail_from, 0), []))
        conflict = AlreadyExists("a record id is already in the log")
        async with self._tx(conflict=conflict) as conn:
            indices = await append_in(conn, leaves, now)
            tail = await tail_in(conn, tail_from, max(indices) + 1, (indices, leaves))
            return Appended(indices, tail, await sign_head_in(conn, tail, sign_head))

    async def record_index(self: _HasTx, record_id: str) -> int | None:
        async with self._tx(read_only=True) as conn:
            value = (
                await conn.execute(
                    select(log_entries.c.idx).where(log_entries.c.record_id == record_id)
                )
            ).scalar_one_or_none()
        return None if value is None else int(value)

    async def log_size(self: _HasTx) -> int:
        async with self._tx(read_only=True) as conn:
            size = (await conn.execute(select(log_state.c.size))).scalar_one()
        return int(size)

    async def leaf_hashes(self: _HasTx, start: int, end: int) -> list[bytes]:
        async with self._tx(read_only=True) as conn:
            rows = await conn.execute(
                select(log_entries.c.leaf_hash)
                .where(log_entries.c.idx >= start, log_entries.c.idx < end)
                .order_by(log_entries.c.idx)
            )
            return [bytes(r.leaf_hash) for r in rows]

    async def log_entries(self: _HasTx, start: int, end: int) -> list[LogEntryRow]:
        async with self._tx(read_only=True) as conn:
            rows = await conn.execute(
                select(log_entries)
                .where(log_entries.c.idx >= start, log_entries.c.idx < end)
                .order_by(log_entries.c.idx)
            )
            return [
                LogEntryRow(
                    index=int(r.idx),
                    record_id=r.record_id,
                    leaf=bytes(r.leaf),
                    leaf_hash=bytes(r.leaf_hash),
                    device_id=r.device_id,
                    created_at=float(r.created_at),
                )
                for r in rows
            ]

    async def put_tree_head(self: _HasTx, head: TreeHeadRow) -> TreeHeadRow:
        async with self._tx() as conn:
            return await put_head_in(conn, head)

    async def tree_heads(
        self: _HasTx, after_size: int = -1, limit: int = 1000
    ) -> list[TreeHeadRow]:
        async with self._tx(read_only=True) as conn:
            rows = await conn.execute(
                select(tree_heads)
                .where(tree_heads.c.size > after_size)
                .order_by(tree_heads.c.size)
                .limit(limit)
            )
            return [_head(r) for r in rows]

    async def latest_tree_head(self: _HasTx) -> TreeHeadRow | None:
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(select(tree_heads).order_by(tree_heads.c.size.desc()).limit(1))
            ).first()
        return None if row is None else _head(row)


def _head(row: object) -> TreeHeadRow:
    return TreeHeadRow(
        size=int(row.size),  # type: ignore[attr-defined]
        head=bytes(row.head),  # type: ignore[attr-defined]
        signature=bytes(row.signature),  # type: ignore[attr-defined]
        created_at=float(row.created_at),  # type: ignore[attr-defined]
    )


__all__ = ["AsyncIterator", "SqlLogMixin", "append_in", "put_head_in", "sign_head_in", "tail_in"]
