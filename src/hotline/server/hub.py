"""Wakes the websockets of devices that have new mail (in-process; the store is the truth)."""

from __future__ import annotations

import asyncio
from collections import defaultdict


class PushHub:
    """One ``asyncio.Event`` per connected device connection."""

    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)

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
        for device_id in device_ids:
            for event in self._waiters.get(device_id, ()):
                event.set()

    def connected(self, device_id: str) -> bool:
        return bool(self._waiters.get(device_id))
