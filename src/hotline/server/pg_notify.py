"""Cross-worker push over PostgreSQL ``LISTEN``/``NOTIFY``.

Every worker process holds one dedicated asyncpg connection (not from the SQLAlchemy pool,
whose connections come and go) that ``LISTEN``s on :data:`CHANNEL`. When a worker stores mail
it wakes its own websockets at once and queues the device ids here; a pump sends them as
``pg_notify(CHANNEL, 'id id id')`` on the same connection, coalescing everything published
while the previous notification was in flight (payloads stay under PostgreSQL's 8000-byte
limit). Each worker wakes the connections it holds for the ids it hears, ignoring its own
notifications (same backend pid).

The store stays the truth: a websocket re-reads its mailbox after every wake-up. If the
connection drops, it is reopened with backoff; ids not yet sent are kept and sent then, and
every local websocket is woken once, because notifications sent meanwhile were lost.
An idle connection is probed every :data:`KEEPALIVE` seconds so a dead link is noticed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Final

import asyncpg
from sqlalchemy.engine import URL

from hotline.server.hub import PushHub

__all__ = ["CHANNEL", "PgNotifier", "asyncpg_dsn"]

log = logging.getLogger("hotline.server.pg_notify")

CHANNEL: Final = "hotline_mailbox"
#: PostgreSQL refuses payloads of 8000 bytes or more
MAX_PAYLOAD: Final = 7900
KEEPALIVE: Final = 15.0
CONNECT_TIMEOUT: Final = 10.0
_DB_ERRORS: Final = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def asyncpg_dsn(url: URL) -> str:
    """A libpq-style DSN for asyncpg from an SQLAlchemy URL (``postgresql+asyncpg://...``)."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def payloads(device_ids: list[str]) -> list[str]:
    """Space-separated ids (ids never hold spaces), each payload under :data:`MAX_PAYLOAD`."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for device_id in device_ids:
        if current and size + 1 + len(device_id) > MAX_PAYLOAD:
            out.append(" ".join(current))
            current, size = [], 0
        current.append(device_id)
        size += len(device_id) + (1 if size else 0)
    if current:
        out.append(" ".join(current))
    return out


class PgNotifier:
    """The :class:`~hotline.server.hub.Broadcaster` of one worker over PostgreSQL."""

    def __init__(
        self, dsn: str, hub: PushHub, *, retry_base: float = 0.2, retry_max: float = 5.0
    ) -> None:
        self._dsn = dsn
        self._hub = hub
        self._retry_base, self._retry_max = retry_base, retry_max
        self._pending: dict[str, None] = {}  # an ordered set
        self._wakeup = asyncio.Event()
        self._lost = False
        self._pid: int | None = None
        self._task: asyncio.Task[None] | None = None
        self._conn: Any = None
        #: set while listening (start() waits for it)
        self.listening = asyncio.Event()
        #: times the connection was (re)opened
        self.connections = 0

    def publish(self, device_ids: list[str]) -> None:
        for device_id in device_ids:
            self._pending[device_id] = None
        self._wakeup.set()

    async def start(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Start listening; wait (up to ``timeout``) until the first LISTEN is in place."""
        self._hub.broadcaster = self
        self._task = asyncio.create_task(self._run(), name="hotline-pg-notify")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), timeout)
        if not self.listening.is_set():
            log.warning("LISTEN %s not in place after %.0f s; retrying behind", CHANNEL, timeout)

    async def stop(self) -> None:
        if self._hub.broadcaster is self:
            self._hub.broadcaster = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._close()

    def drop_connection(self) -> None:
        """Abort the current connection (tests: a dropped link must be recovered)."""
        if self._conn is not None:
            self._conn.terminate()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            try:
                await asyncio.wait_for(conn.close(), 2.0)
            except (*_DB_ERRORS, asyncio.CancelledError):
                conn.terminate()

    async def _run(self) -> None:
        delay = self._retry_base
        while True:
            try:
                await self._connect()
                delay = self._retry_base
                await self._pump()
            except _DB_ERRORS as exc:
                log.warning("LISTEN connection: %s; reconnecting", type(exc).__name__)
            finally:
                self.listening.clear()
                await self._close()
            await asyncio.sleep(delay)
            delay = min(self._retry_max, delay * 2)

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=CONNECT_TIMEOUT)
        self._conn = conn
        self._lost = False
        conn.add_termination_listener(self._on_terminated)
        await conn.add_listener(CHANNEL, self._on_notify)
        self._pid = conn.get_server_pid()
        self.connections += 1
        if self.connections > 1:
            # Notifications sent while we were away are gone: every local socket re-reads.
            self._hub.wake_all()
        self.listening.set()

    def _on_terminated(self, _conn: object) -> None:
        self._lost = True
        self._wakeup.set()

    def _on_notify(self, _conn: object, pid: int, _channel: str, payload: object) -> None:
        if pid != self._pid:
            self._hub.wake(str(payload).split())

    async def _pump(self) -> None:
        """Send queued ids; probe the connection when idle; return when it is lost."""
        while not self._lost:
            if not self._pending:
                self._wakeup.clear()
                try:
                    await asyncio.wait_for(self._wakeup.wait(), KEEPALIVE)
                except TimeoutError:
                    await asyncio.wait_for(self._conn.fetchval("SELECT 1"), CONNECT_TIMEOUT)
                continue
            batch = list(self._pending)
            self._pending.clear()
            try:
                for payload in payloads(batch):
                    await self._conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except BaseException:
                for device_id in batch:  # sent again after reconnecting (extra wakes are fine)
                    self._pending[device_id] = None
                raise
        raise ConnectionResetError("the LISTEN connection was closed")
