"""Search the archive: open every record with the custodian key and filter it (streaming)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from hotline.crypto.hpke import CustodianPrivateKey
from hotline.custodian.source import BATCH, OpenedEntry, iter_records
from hotline.store.base import LogStore
from hotline.wire.records import Record


@dataclass(frozen=True)
class RecordFilter:
    """Which records to keep; empty fields match everything.

    ``since``/``until`` compare with the record's ``created_at_ms`` (``until`` exclusive);
    ``text`` matches when every word occurs in the body (case-insensitive); ``participant``
    matches the sender, a recipient or the capturing principal (a handle or its prefix).
    """

    participant: str = ""
    since: datetime | None = None
    until: datetime | None = None
    text: str = ""
    kind: str = ""
    conversation: str = ""

    def matches(self, record: Record) -> bool:
        """Whether ``record`` passes every given criterion."""
        return (
            self._participant(record)
            and self._time(record)
            and self._words(record)
            and (not self.kind or record.kind == self.kind)
            and (not self.conversation or record.conversation == self.conversation)
        )

    def _participant(self, record: Record) -> bool:
        if not self.participant:
            return True
        who = [record.sender, record.principal, *record.recipients]
        return any(h == self.participant or h.startswith(self.participant) for h in who)

    def _time(self, record: Record) -> bool:
        at = record.created_at_ms
        if self.since is not None and at < int(self.since.timestamp() * 1000):
            return False
        return self.until is None or at < int(self.until.timestamp() * 1000)

    def _words(self, record: Record) -> bool:
        body = record.body.casefold()
        return all(word in body for word in self.text.casefold().split())


@dataclass
class SearchStats:
    """How many entries were read, matched, and could not be opened with this key."""

    read: int = 0
    matched: int = 0
    unreadable: int = 0


async def search_records(
    store: LogStore,
    custodian: CustodianPrivateKey,
    where: RecordFilter,
    stats: SearchStats | None = None,
    batch: int = BATCH,
) -> AsyncIterator[OpenedEntry]:
    """Matching records in log order (entries that do not open are counted, not yielded)."""
    counts = stats if stats is not None else SearchStats()
    async for opened in iter_records(store, custodian, batch=batch):
        counts.read += 1
        if opened.record is None:
            counts.unreadable += 1
        elif where.matches(opened.record):
            counts.matched += 1
            yield opened
