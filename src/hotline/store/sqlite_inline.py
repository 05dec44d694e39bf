"""SQLite for the async engine without a thread hop per statement.

SQLAlchemy's ``aiosqlite`` driver runs every DBAPI call (cursor, execute, fetch, close,
commit) on a worker thread and wakes the event loop for each result: about 20 thread hops for
a three-query transaction, which on a 2-core machine cost ~100 times the queries themselves
(``bench/``: 11 ms of wall time for a read transaction whose SQL takes 0.04 ms). This module
gives the same ``sqlite+aiosqlite`` dialect a DBAPI whose statements run *inline* on the event
loop — an indexed query on a local file takes microseconds — and sends to a thread only what
can wait on the disk or on another process:

- ``COMMIT`` of a transaction that wrote (began ``IMMEDIATE`` or changed rows): the WAL fsync;
- any statement SQLite refused with ``SQLITE_BUSY`` (another *process* holds the write lock,
  e.g. an admin command): retried once on the thread under the normal busy timeout. Inline
  statements run with a zero busy timeout, so the event loop never sleeps in SQLite's busy
  handler. Writers of this process already queue in FIFO order in front of ``BEGIN
  IMMEDIATE`` (``SqlStore._tx``), so the retry path is for other processes only.

One connection is only ever used by one task at a time (SQLAlchemy's pool), and a thread
works on a connection only while that task awaits it — even when the task is cancelled
meanwhile, it waits for the thread's job to end before it lets go of the connection — so no
connection is used by two threads at once (``check_same_thread=False`` only lifts Python's
ownership check). Commits and busy waits have separate threads, so a commit that would
release a lock never queues behind a statement waiting for that lock.

Use: ``create_async_engine(url, module=inline_dbapi())`` for a ``sqlite+aiosqlite`` URL.
"""

from __future__ import annotations

import asyncio
import sqlite3
import types
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final, TypeVar

from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util.concurrency import await_

__all__ = ["BUSY_TIMEOUT_MS", "begin_with_first_statement", "inline_dbapi"]

#: How long a statement retried on the thread waits for another process's lock (ms).
BUSY_TIMEOUT_MS: Final = 5_000
_BUSY_CODES: Final = frozenset({sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED})
_T = TypeVar("_T")

# Commits of writers (each store's writers are already serialised by its writer queue).
_disk = ThreadPoolExecutor(max_workers=4, thread_name_prefix="hotline-sqlite-commit")
# Statements refused as busy, waiting for another process's (or another store's) lock.
_patience = ThreadPoolExecutor(max_workers=16, thread_name_prefix="hotline-sqlite-busy")


def _busy(exc: sqlite3.OperationalError) -> bool:
    return getattr(exc, "sqlite_errorcode", None) in _BUSY_CODES


async def _off_loop(pool: ThreadPoolExecutor, call: Callable[..., _T], *args: Any) -> _T:
    """``call(*args)`` on ``pool``; returns only once it has ended, even if cancelled."""
    job = asyncio.get_running_loop().run_in_executor(pool, call, *args)
    cancelled = False
    while not job.done():
        try:
            await asyncio.wait([job])
        except asyncio.CancelledError:
            cancelled = True  # the thread still works on the connection: wait it out
    if cancelled:
        raise asyncio.CancelledError
    return job.result()


class _Cursor:
    """The subset of aiosqlite's cursor that SQLAlchemy's async adapter awaits."""

    __slots__ = ("_connection", "_cursor")

    def __init__(self, connection: _Connection, cursor: sqlite3.Cursor) -> None:
        self._connection = connection
        self._cursor = cursor

    async def __aenter__(self) -> _Cursor:
        return self

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Cursor:
        await self._connection.begin_if_pending()
        await self._connection.run(self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Sequence[Any]) -> _Cursor:
        await self._connection.begin_if_pending()
        await self._connection.run(self._cursor.executemany, sql, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    async def nextset(self) -> None:
        return None

    async def setinputsizes(self, *_sizes: Any) -> None:
        return None


class _Connection:
    """The subset of aiosqlite's connection that SQLAlchemy's async adapter awaits."""

    __slots__ = ("_changes", "_conn", "immediate", "pending_begin")

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self.immediate = False  # this transaction began with BEGIN IMMEDIATE
        #: the BEGIN of a transaction SQLAlchemy began, issued with its first statement
        self.pending_begin: str | None = None
        self._changes = conn.total_changes  # rows changed up to the last commit/rollback

    async def begin_if_pending(self) -> None:
        begin, self.pending_begin = self.pending_begin, None
        if begin is not None:
            await self.run(self._conn.execute, begin)

    @property
    def _connection(self) -> sqlite3.Connection:  # SQLAlchemy checks it before commit
        return self._conn

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    async def run(self, call: Callable[..., _T], *args: Any) -> _T:
        """``call(*args)`` inline; on SQLITE_BUSY once more on the thread, waiting for the lock."""
        try:
            return call(*args)
        except sqlite3.OperationalError as exc:
            if not _busy(exc):
                raise
        return await _off_loop(_patience, self._patiently, call, *args)

    def _patiently(self, call: Callable[..., _T], *args: Any) -> _T:
        self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS:d}")
        try:
            return call(*args)
        finally:
            self._conn.execute("PRAGMA busy_timeout=0")

    def cursor(self) -> _Cursor:  # the adapter enters it with ``async with``
        return _Cursor(self, self._conn.cursor())

    async def commit(self) -> None:
        began = self.pending_begin is None  # else no statement ran: nothing to commit
        self.pending_begin = None
        wrote = began and (self.immediate or self._conn.total_changes != self._changes)
        self.immediate = False
        try:
            if wrote:  # the WAL fsync happens here: off the event loop
                await _off_loop(_disk, self._conn.commit)
            else:
                self._conn.commit()
        finally:
            self._changes = self._conn.total_changes

    async def rollback(self) -> None:
        self.pending_begin = None
        self.immediate = False
        try:
            self._conn.rollback()
        finally:
            self._changes = self._conn.total_changes

    async def close(self) -> None:
        self._conn.close()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    def stop(self) -> None:
        self._conn.close()


class _Adapted(AsyncAdapt_aiosqlite_connection):
    """SQLAlchemy's adapter over :class:`_Connection`; the isolation level is set directly
    (aiosqlite's version posts it to its worker thread's queue)."""

    __slots__ = ()

    @property
    def isolation_level(self) -> str | None:
        return self._connection.isolation_level  # type: ignore[no-any-return]

    @isolation_level.setter
    def isolation_level(self, value: str | None) -> None:
        self._connection._conn.isolation_level = value

    def cursor(self, server_side: bool = False) -> Any:
        if server_side:  # SQLAlchemy's server-side cursor is not needed for SQLite here
            raise NotImplementedError("server-side cursors are not supported")
        return super().cursor()


async def _connect(database: str, **kwargs: Any) -> _Connection:
    kwargs.pop("check_same_thread", None)
    conn = sqlite3.connect(database, check_same_thread=False, timeout=0, **kwargs)
    return _Connection(conn)


class _InlineDbapi(AsyncAdapt_aiosqlite_dbapi):
    def connect(self, *arg: Any, **kw: Any) -> _Adapted:
        kw.pop("async_creator_fn", None)
        inline: Any = await_(_connect(*arg, **kw))  # duck-typed as aiosqlite's connection
        return _Adapted(self, inline)


def _module() -> types.SimpleNamespace:
    """What the adapter reads off the ``aiosqlite`` module: errors, versions, ``Connection``."""
    names = [
        "DatabaseError",
        "Error",
        "IntegrityError",
        "NotSupportedError",
        "OperationalError",
        "ProgrammingError",
        "sqlite_version",
        "sqlite_version_info",
    ]
    module = types.SimpleNamespace(**{name: getattr(sqlite3, name) for name in names})
    module.Connection = _Connection
    module.__version__ = "0.0"  # read as "the driver's version" by the dialect
    return module


def begin_with_first_statement(dbapi_connection: object, *, immediate: bool) -> None:
    """Begin a transaction on an inline connection (SQLAlchemy's ``begin`` event): ``BEGIN
    IMMEDIATE`` (a writer: takes the write lock) or ``BEGIN`` (a reader), issued together with
    the transaction's first statement — through the same error handling as any statement, and
    not at all for a transaction that runs none."""
    if not isinstance(dbapi_connection, _Adapted):
        raise TypeError("not a connection of hotline.store.sqlite_inline")
    inline = dbapi_connection._connection
    assert isinstance(inline, _Connection)
    inline.pending_begin = "BEGIN IMMEDIATE" if immediate else "BEGIN"
    inline.immediate = immediate


def inline_dbapi() -> AsyncAdapt_aiosqlite_dbapi:
    """The DBAPI to pass as ``module=`` to ``create_async_engine`` for an SQLite URL."""
    return _InlineDbapi(_module(), sqlite3)  # type: ignore[arg-type]
