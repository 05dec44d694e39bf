"""The SQLite driver that runs statements inline (``hotline.store.sqlite_inline``).

Its promises: reads and writes behave as before (the conformance suites run on it); a write
lock held by another *process* (here: another connection, as an admin command would hold it)
is waited for off the event loop instead of failing at once; a lock that is never released
fails with a typed StorageError after the busy timeout and leaves nothing half-written; a
write transaction's commit runs on the store's thread, not on the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from hotline.store import SqlStore, open_store, sqlite_inline
from hotline.wire.errors import StorageError


async def _store(tmp_path: Path) -> tuple[SqlStore, Path]:
    path = tmp_path / "s.db"
    store = await open_store(f"sqlite:///{path}")
    async with store.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE scratch (k INTEGER PRIMARY KEY, v TEXT)"))
    return store, path


def _hold_write_lock(path: Path, seconds: float, taken: threading.Event) -> None:
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        taken.set()
        time.sleep(seconds)
        other.execute("COMMIT")
    finally:
        other.close()


async def test_write_waits_for_another_processs_lock_without_blocking_the_loop(
    tmp_path: Path,
) -> None:
    store, path = await _store(tmp_path)
    taken = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 0.5, taken))
    holder.start()
    try:
        assert await asyncio.to_thread(taken.wait, 5)
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        async with store.engine.begin() as conn:  # BEGIN IMMEDIATE: busy, retried on a thread
            await conn.execute(text("INSERT INTO scratch (k, v) VALUES (1, 'kept')"))
        ticker.cancel()
        # the loop kept running while the write waited for the other connection's lock
        assert ticks >= 5
        async with store.engine.connect() as conn:
            assert await conn.scalar(text("SELECT v FROM scratch WHERE k = 1")) == "kept"
    finally:
        await asyncio.to_thread(holder.join)
        await store.close()


async def test_lock_never_released_is_a_storage_error_and_keeps_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, path = await _store(tmp_path)
    async with store.engine.begin() as conn:
        await conn.execute(text("INSERT INTO scratch (k, v) VALUES (1, 'before')"))
    monkeypatch.setattr(sqlite_inline, "BUSY_TIMEOUT_MS", 200)
    taken = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(path, 1.5, taken))
    holder.start()
    try:
        assert await asyncio.to_thread(taken.wait, 5)
        with pytest.raises(StorageError):
            # through the store's own transaction helper, which types the failure
            async with store._tx() as conn:
                await conn.execute(text("UPDATE scratch SET v = 'lost' WHERE k = 1"))
    finally:
        await asyncio.to_thread(holder.join)
    try:
        async with store.engine.connect() as conn:
            assert await conn.scalar(text("SELECT v FROM scratch WHERE k = 1")) == "before"
        # and the connection that failed is usable again afterwards
        async with store._tx() as conn:
            await conn.execute(text("UPDATE scratch SET v = 'after' WHERE k = 1"))
        async with store.engine.connect() as conn:
            assert await conn.scalar(text("SELECT v FROM scratch WHERE k = 1")) == "after"
    finally:
        await store.close()


class _SpyExecutor(ThreadPoolExecutor):
    """The store's disk thread, noting on which thread each job ran."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.jobs: list[tuple[str, int]] = []

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        def noted() -> object:
            self.jobs.append((getattr(fn, "__name__", "?"), threading.get_ident()))
            return fn(*args, **kwargs)

        return super().submit(noted)


async def test_commit_of_a_write_runs_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, _ = await _store(tmp_path)
    spy = _SpyExecutor()
    monkeypatch.setattr(sqlite_inline, "_disk", spy)
    try:
        async with store._tx() as conn:
            await conn.execute(text("INSERT INTO scratch (k, v) VALUES (2, 'w')"))
        assert [name for name, _ in spy.jobs] == ["commit"]
        assert spy.jobs[0][1] != threading.get_ident()  # not the event loop's thread
        async with store._tx(read_only=True) as conn:
            assert await conn.scalar(text("SELECT v FROM scratch WHERE k = 2")) == "w"
        assert len(spy.jobs) == 1  # a read-only transaction's commit stays inline
    finally:
        await store.close()
        spy.shutdown()
