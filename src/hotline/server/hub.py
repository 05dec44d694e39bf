"""Wakes the websockets of devices that have new mail (the store is the truth).

In one process the hub sets an ``asyncio.Event`` per connection. With several workers sharing
PostgreSQL, a :class:`Broadcaster` (``hotline.server.pg_notify``) is attached: ``notify`` also
tells the other workers, and their broadcasters call :meth:`PushHub.wake` for the devices they
hold. A missed wake-up only delays a push; :meth:`PushHub.wake_all` recovers from a lost link.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Iterable
from typing import Protocol


class Broadcaster(Protocol):
    """Carries wake-ups to the other worker processes."""

    def publish(self, device_ids: list[str]) -> None:
        """Queue ``device_ids`` for the other workers (must not block)."""


class PushHub:
    """One ``asyncio.Event`` per connected device connection."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.broadcaster: Broadcaster | None = None

    def subscribe(self, device_id: str) -> asyncio.Event:
        event = asyncio.Event()
        self._waiters[device_id].add(event)
        return event

    def unsubscribe(self, device_id: str, event: asyncio.Event) -> None:
        waiters = self._waiters.get(device_id)
        if waiters is not None:
            waiters.discard(event)
            if not waiters:
                del self._waiters[device_id]

    def notify(self, device_ids: list[str]) -> None:
        """New mail for ``device_ids``: wake them here and, with a broadcaster, everywhere."""
        self.wake(device_ids)
        if self.broadcaster is not None and device_ids:
            self.broadcaster.publish(device_ids)

    def wake(self, device_ids: Iterable[str]) -> None:
        """Wake this process's connections of ``device_ids`` only."""
        for device_id in device_ids:
            for event in self._waiters.get(device_id, ()):
                event.set()

    def wake_all(self) -> None:
        """Wake every local connection (each re-reads its mailbox from the store)."""
        for waiters in self._waiters.values():
            for event in waiters:
                event.set()

    def connected(self, device_id: str) -> bool:
        return bool(self._waiters.get(device_id))
