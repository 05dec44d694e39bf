"""The 20-day rule of 44 U.S.C. 2209: messages not yet captured on the receiving side.

A message waiting in a device's mailbox has its sender's record in the log, but not yet the
receiving device's record (the device is offline). Each such delivery must be captured within
20 days of its creation; this lists them with the hours left. It reads the ``deliveries`` table
read-only (no content: bodies are ciphertext and are not selected).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError

from hotline.store.schema import deliveries
from hotline.store.sql import READ_ONLY_OPTION, SqlStore
from hotline.wire.errors import StorageError

DEADLINE_SECONDS = 20 * 24 * 3600.0


@dataclass(frozen=True)
class PendingDelivery:
    """One undelivered item and its capture deadline."""

    seq: int
    message_id: str
    device_id: str
    kind: str
    sender: str
    created_at: float
    hours_left: float

    @property
    def overdue(self) -> bool:
        """The 20 days have passed."""
        return self.hours_left < 0


async def pending_deliveries(store: SqlStore, now: float) -> list[PendingDelivery]:
    """Every mailbox item, oldest first, with hours left until ``created_at`` + 20 days.

    Raises:
        StorageError: the table cannot be read.
    """
    query = select(
        deliveries.c.seq,
        deliveries.c.message_id,
        deliveries.c.device_id,
        deliveries.c.kind,
        deliveries.c.sender_handle,
        deliveries.c.created_at,
    ).order_by(deliveries.c.created_at, deliveries.c.seq)
    try:
        reader = store.engine.execution_options(**{READ_ONLY_OPTION: True})
        async with reader.connect() as conn:
            rows = (await conn.execute(query)).all()
    except SQLAlchemyError as exc:
        raise StorageError("could not read the mailbox table") from exc
    return [
        PendingDelivery(
            seq=row.seq,
            message_id=row.message_id,
            device_id=row.device_id,
            kind=row.kind,
            sender=row.sender_handle,
            created_at=row.created_at,
            hours_left=(row.created_at + DEADLINE_SECONDS - now) / 3600.0,
        )
        for row in rows
    ]
