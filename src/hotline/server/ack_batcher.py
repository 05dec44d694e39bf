"""Acknowledgements from every push websocket, written together (group commit).

Each ack frame used to be a write transaction of its own. Here an ack joins the next flush:
one flush runs at a time, and acks that arrive while it commits wait and go in the following
one. An idle server writes an ack at once; a busy one writes fewer, larger transactions.
"""

from __future__ import annotations

import asyncio

from hotline.store import Store


class AckBatcher:
    """Deletes acknowledged mailbox rows for all connections of this process."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._waiting: dict[str, set[int]] = {}
        self._next: asyncio.Future[None] | None = None
        self._runner: asyncio.Task[None] | None = None

    async def ack(self, device_id: str, seqs: list[int]) -> None:
        """Delete those rows of ``device_id``'s mailbox; returns once they are gone.

        Raises:
            StorageError: the flush that held them failed (every ack in it sees the error;
                the rows stay, to be pushed again on the next connection).
        """
        if not seqs:
            return
        self._waiting.setdefault(device_id, set()).update(seqs)
        if self._next is None:
            self._next = asyncio.get_running_loop().create_future()
        flushed = self._next
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="hotline-acks")
        await asyncio.shield(flushed)

    async def _run(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, {}
            flushed, self._next = self._next, None
            assert flushed is not None
            try:
                await self._store.ack_many([(d, sorted(s)) for d, s in sorted(batch.items())])
            except Exception as exc:  # handed to every waiter
                flushed.set_exception(exc)
                flushed.exception()  # retrieved here: a waiter may have gone meanwhile
            else:
                flushed.set_result(None)

    async def close(self) -> None:
        """Let the flush in progress (and what waits for the next) finish."""
        if self._runner is not None:
            await asyncio.gather(self._runner, return_exceptions=True)


__all__ = ["AckBatcher"]
