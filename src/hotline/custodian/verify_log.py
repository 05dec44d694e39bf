"""Recompute the whole records log from storage and check every signed tree head.

RFC 9162 §2.1.1 defines the root of a log; §4.10 the signed tree head. The check streams the
entries in index order with O(log n) memory (a compact range of perfect-subtree roots, as in
transparency-dev/merkle's ``compact`` package) and, whenever the stream reaches the size of a
stored head, compares the head's signed root with the recomputed one. It reports:

* an entry whose bytes no longer hash to its stored leaf hash (a flipped byte), by index;
* an entry that is not a sealed record or names another record id than its row;
* a gap in the indices (deleted rows), an entry beyond the recorded size (inserted rows);
* a head whose signature or bytes do not verify under the log key, or that names another log;
* the first head whose root differs from storage (deleted, reordered, inserted or changed
  entries), with the range of leaves between the last good head and it;
* a head that covers more entries than storage holds (truncation, rollback).

Consistency between heads (RFC 9162 §2.1.4) is implied: if every head's root equals the root
recomputed from the same stored sequence at its size, each later head extends each earlier one.
"""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hotline.custodian.errors import (
    EntryBeyondLog,
    EntryMalformed,
    LeafHashMismatch,
    LogIndexGap,
    TreeHeadBeyondLog,
    TreeHeadInvalid,
    TreeHeadRootMismatch,
)
from hotline.custodian.source import BATCH, iter_entries
from hotline.records.checkpoint import SignedTreeHead, TreeHead, verify_tree_head
from hotline.records.hasher import hash_children, hash_leaf
from hotline.records.proof import fold_root
from hotline.store.base import LogEntryRow, LogStore, TreeHeadRow
from hotline.wire.codec import decode
from hotline.wire.errors import HotlineError
from hotline.wire.records import MAX_LEAF, SealedRecord

#: Problems kept in a report (the count goes on beyond it).
MAX_PROBLEMS = 200
HEAD_PAGE = 500

Progress = Callable[[int, int], None]


class Frontier:
    """The roots of the perfect subtrees over the leaves pushed so far (RFC 9162 §2.1.1)."""

    def __init__(self) -> None:
        self.size = 0
        self._roots: list[bytes] = []

    def push(self, leaf_hash: bytes) -> None:
        """Append one leaf hash, merging completed perfect subtrees."""
        node, self.size = leaf_hash, self.size + 1
        n = self.size
        while n & 1 == 0:
            node = hash_children(self._roots.pop(), node)
            n >>= 1
        self._roots.append(node)

    def root(self) -> bytes:
        """MTH over every pushed leaf."""
        return fold_root(self._roots)


@dataclass
class LogReport:
    """What :func:`verify_log` found. ``ok`` only when ``problems`` is empty."""

    log_size: int = 0
    entries_checked: int = 0
    heads_checked: int = 0
    log_id: str = ""
    latest_root: bytes = b""
    latest_head_size: int = 0
    last_good_head_size: int = 0
    problems: list[HotlineError] = field(default_factory=list)
    problem_count: int = 0

    @property
    def ok(self) -> bool:
        """True when nothing was found."""
        return self.problem_count == 0

    @property
    def first_failing_head(self) -> TreeHeadRootMismatch | TreeHeadBeyondLog | None:
        """The first head (smallest size) whose root storage no longer produces."""
        for problem in self.problems:
            if isinstance(problem, TreeHeadRootMismatch | TreeHeadBeyondLog):
                return problem
        return None

    def add(self, problem: HotlineError) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(problem)


async def _heads(store: LogStore) -> AsyncIterator[TreeHeadRow]:
    after = -1
    while True:
        page = await store.tree_heads(after_size=after, limit=HEAD_PAGE)
        if not page:
            return
        for row in page:
            yield row
        after = page[-1].size


class _Checker:
    """The streaming state of one verification."""

    def __init__(self, report: LogReport, log_key: Ed25519PublicKey) -> None:
        self.report = report
        self.log_key = log_key
        self.frontier = Frontier()
        self.position = 0  # one past the last index seen

    def check_entry(self, row: LogEntryRow) -> None:
        report = self.report
        if row.index != self.position:
            report.add(
                LogIndexGap(
                    f"entries {self.position}..{row.index - 1} are missing from storage "
                    f"(next stored entry is {row.index})",
                    expected=self.position,
                    got=row.index,
                )
            )
        calculated = hash_leaf(row.leaf)
        if not hmac.compare_digest(calculated, row.leaf_hash):
            report.add(
                LeafHashMismatch(
                    f"entry {row.index} (record {row.record_id}): its bytes hash to "
                    f"{calculated.hex()[:16]}…, "
                    f"the stored leaf hash is {row.leaf_hash.hex()[:16]}…",
                    index=row.index,
                    stored=row.leaf_hash.hex(),
                    calculated=calculated.hex(),
                )
            )
        self._check_sealed(row)
        self.frontier.push(calculated)
        self.position = row.index + 1
        report.entries_checked += 1

    def _check_sealed(self, row: LogEntryRow) -> None:
        try:
            sealed = decode(row.leaf, SealedRecord, max_size=MAX_LEAF, what="sealed record")
        except HotlineError as exc:
            self.report.add(EntryMalformed(f"entry {row.index}: {exc.detail}", index=row.index))
            return
        if sealed.record_id != row.record_id:
            self.report.add(
                EntryMalformed(
                    f"entry {row.index}: row says record {row.record_id}, the sealed record "
                    f"says {sealed.record_id}",
                    index=row.index,
                )
            )

    def open_head(self, row: TreeHeadRow) -> TreeHead | None:
        try:
            head = verify_tree_head(SignedTreeHead(row.head, row.signature), self.log_key)
        except HotlineError as exc:
            self.report.add(
                TreeHeadInvalid(
                    f"tree head at size {row.size}: {exc.detail} (under the given log key)",
                    size=row.size,
                )
            )
            return None
        if head.size != row.size:
            self.report.add(
                TreeHeadInvalid(
                    f"tree head stored at size {row.size} is signed for size {head.size}",
                    size=row.size,
                )
            )
            return None
        if self.report.log_id and head.log_id != self.report.log_id:
            self.report.add(
                TreeHeadInvalid(
                    f"tree head at size {row.size} is for log {head.log_id}, "
                    f"not {self.report.log_id}",
                    size=row.size,
                )
            )
            return None
        self.report.log_id = head.log_id
        return head

    def compare(self, head: TreeHead) -> None:
        """Compare a head with the root of everything streamed so far (``position`` leaves)."""
        report = self.report
        report.heads_checked += 1
        calculated = self.frontier.root()
        if self.frontier.size == head.size and hmac.compare_digest(calculated, head.root):
            report.last_good_head_size = head.size
            return
        first = report.last_good_head_size
        report.add(
            TreeHeadRootMismatch(
                f"signed tree head at size {head.size} does not match storage: leaves "
                f"{first}..{head.size - 1} were changed, deleted, reordered or inserted "
                f"(the head before it, at size {first}, matches)",
                size=head.size,
                expected=head.root.hex(),
                calculated=calculated.hex(),
                first_leaf=first,
                end_leaf=head.size,
            )
        )


async def verify_log(
    store: LogStore,
    log_key: Ed25519PublicKey,
    *,
    batch: int = BATCH,
    progress: Progress | None = None,
) -> LogReport:
    """Recompute the log from ``store`` and check every stored signed tree head.

    Never raises for a damaged log: every problem is collected, with evidence, in the report.

    Raises:
        StorageError: the store cannot be read.
    """
    size = await store.log_size()
    report = LogReport(log_size=size)
    checker = _Checker(report, log_key)
    heads = _heads(store)
    pending = await _next_head(heads, checker)
    async for row in iter_entries(store, 0, size, batch):
        # Heads whose size is reached before this entry are checked against what came before.
        while pending is not None and pending.size <= row.index:
            checker.compare(pending)
            _note_latest(report, pending)
            pending = await _next_head(heads, checker)
        checker.check_entry(row)
        if progress is not None and report.entries_checked % batch == 0:
            progress(report.entries_checked, size)
    if checker.position != size:
        report.add(
            LogIndexGap(
                f"entries {checker.position}..{size - 1} are missing from storage",
                expected=checker.position,
                got=size,
            )
        )
    while pending is not None:
        if pending.size <= size:
            checker.compare(pending)
        else:
            report.heads_checked += 1
            report.add(
                TreeHeadBeyondLog(
                    f"signed tree head at size {pending.size} covers more entries than the "
                    f"{size} in storage: the log was truncated or rolled back",
                    size=pending.size,
                    log_size=size,
                )
            )
        _note_latest(report, pending)
        pending = await _next_head(heads, checker)
    async for extra in iter_entries(store, size, size + batch, batch):
        report.add(
            EntryBeyondLog(
                f"entry {extra.index} (record {extra.record_id}) is beyond the log size {size}",
                index=extra.index,
                size=size,
            )
        )
    if progress is not None:
        progress(report.entries_checked, size)
    return report


def _note_latest(report: LogReport, head: TreeHead) -> None:
    report.latest_head_size = head.size
    report.latest_root = head.root


async def _next_head(heads: AsyncIterator[TreeHeadRow], checker: _Checker) -> TreeHead | None:
    # Heads that do not verify are reported and skipped: they prove nothing.
    async for row in heads:
        head = checker.open_head(row)
        if head is not None:
            return head
    return None
