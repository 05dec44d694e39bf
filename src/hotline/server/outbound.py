"""The delivery worker: drains the durable outbound queue to peer servers.

Messages for one peer go out in acceptance order, in batches. A peer that is down is retried
with exponential backoff and jitter (``retry_base`` doubling to ``retry_max``); nothing is
removed from the queue until the peer answered for it. The peer's answer per message is
``ok``/``duplicate`` (delivered; a retry after a lost answer is harmless because the peer
deduplicates by message id) or ``refused`` with a code (not a contact, device list changed):
the sending device is then told with a ``bounce`` item, and the message leaves the queue.

Every worker process runs one of these. A peer is drained by one worker at a time: the worker
leases it in the store (:meth:`~hotline.store.base.FederationStore.lease_outbound`) for
:data:`LEASE` seconds, sends one batch, and gives the lease back; a back-off is written into
the lease, so no worker retries a peer that is down before it is due. A worker that dies
mid-batch leaves a lease that expires, and another worker re-sends that batch (the peer
deduplicates by message id, so this is harmless).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket

from hotline.server.context import ServerState
from hotline.store import DeliveryItem, OutboundRow
from hotline.wire.codec import decode, encode
from hotline.wire.errors import HotlineError
from hotline.wire.federation import Bounce, DeliverBatch, DeliverResponse, RemoteMessage

log = logging.getLogger("hotline.server.outbound")
_random = secrets.SystemRandom()
#: how long a worker may hold a peer for one batch (well above the peer call's timeout)
LEASE = 60.0


class OutboundWorker:
    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._due: dict[str, tuple[float, int]] = {}  # destination -> (next try, failures)
        self._task: asyncio.Task[None] | None = None
        #: this worker's name on the leases it holds
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hotline-outbound")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                busy = await self.drain_once()
            except HotlineError as exc:  # e.g. the database is briefly unavailable
                log.warning("outbound pass failed: %s", exc.code)
                busy = False
            if not busy:
                wake = self.state.outbound_wakeup
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), timeout=self._sleep())
                wake.clear()

    def _sleep(self) -> float:
        now = self.state.now()
        waits = [max(0.05, due - now) for due, _ in self._due.values()]
        return min([1.0, *waits])

    async def drain_once(self) -> bool:
        """One pass over every peer with queued messages; True if anything was delivered."""
        progressed = False
        for destination in await self.state.store.outbound_destinations():
            due, _ = self._due.get(destination, (0.0, 0))
            if self.state.now() < due:
                continue
            now = self.state.now()
            store = self.state.store
            rows = await store.lease_outbound(destination, self.owner, now, now + LEASE)
            if not rows:
                continue  # another worker has it, or it is backed off, or it just emptied
            not_before = 0.0
            try:
                sent, not_before = await self._send(destination, rows)
                progressed = progressed or sent
            finally:
                with contextlib.suppress(HotlineError):  # else the lease simply expires
                    await store.release_outbound(destination, self.owner, not_before)
        return progressed

    async def _send(self, destination: str, rows: list[OutboundRow]) -> tuple[bool, float]:
        """Deliver one leased batch: (anything delivered, when the peer may be tried again)."""
        batch = DeliverBatch(messages=[decode(r.payload, RemoteMessage) for r in rows])
        try:
            reply = await self.state.peers.call(
                self.state, destination, "deliver", batch, DeliverResponse
            )
        except HotlineError as exc:
            return False, await self._back_off(destination, rows, exc)
        self._due.pop(destination, None)
        results = {r.message_id: r for r in reply.results}
        done: list[int] = []
        for row in rows:
            result = results.get(row.message_id)
            if result is None:
                continue  # not answered: stays queued, retried in order
            if result.status == "refused":
                await self._bounce(row, result.code, result.detail)
            done.append(row.id)
        await self.state.store.finish_outbound(done)
        return bool(done), 0.0

    async def _back_off(
        self, destination: str, rows: list[OutboundRow], exc: HotlineError
    ) -> float:
        _, failures = self._due.get(destination, (0.0, 0))
        config = self.state.config
        delay = min(config.retry_max, config.retry_base * 2**failures) * _random.uniform(0.5, 1.5)
        due = self.state.now() + float(delay)
        self._due[destination] = (due, failures + 1)
        await self.state.store.retry_outbound([r.id for r in rows], due)
        log.info("peer %s: %s; retry in %.1f s", destination, exc.code, delay)
        return due

    async def _bounce(self, row: OutboundRow, code: str, detail: str) -> None:
        message = decode(row.payload, RemoteMessage)
        notice = encode(Bounce(message_id=row.message_id, to=message.to, code=code, detail=detail))
        await self.state.store.enqueue(
            message_id=f"bounce-{row.id}",
            sender_handle=row.destination,
            sender_device="server",
            items=[DeliveryItem(row.sender_device, "bounce", notice)],
            now=self.state.now(),
        )
        self.state.hub.notify([row.sender_device])
