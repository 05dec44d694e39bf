"""The device's message history: an append-only encrypted log beside the keystore state.

The history grows without bound, so it does not live inside the keystore state (which is
rewritten whole by every keystore transaction). File ``keystore.history`` holds entries

    length (4 bytes, big-endian) || nonce (12) || ChaCha20-Poly1305 ciphertext || tag (16)

under the keystore master key's ``history`` subkey (HKDF-SHA256 with its own label, see
:func:`hotline.crypto.passphrase.derive_subkey`). The associated data binds each entry to
its position (``hotline/v1/history`` 0x00 || entry number, 8 bytes), so an entry cannot be
moved, swapped or replayed elsewhere in the log without detection.

An entry is one operation on the history list (:class:`HistoryOp`): put a message at a
position (a new one at the end, or a changed one in place) or clear the list. The keystore
state counts the committed entries (``ClientState.history_entries``) and is saved only after
the entries are durably appended: an entry past that count belongs to a transaction that did
not commit (a crash between the two writes, or a torn final write), so it is ignored and the
next append overwrites it. A committed entry that does not authenticate or is missing raises
:class:`~hotline.wire.errors.HistoryDamaged`.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import msgspec

from hotline.client.state import MessageEntry
from hotline.crypto.aead import NONCE_SIZE, TAG_SIZE, aead_open, aead_seal
from hotline.wire.errors import DecryptionFailed, HistoryDamaged

HISTORY_FILE = "keystore.history"
_AAD = b"hotline/v1/history\x00"
_LENGTH = struct.Struct(">I")
#: an entry is one message; anything larger is not an entry this code wrote
MAX_ENTRY = 1 << 20
#: ``HistoryOp.at`` of the operation that empties the list
CLEAR = -1


class HistoryOp(msgspec.Struct, frozen=True):
    """Put ``message`` at position ``at`` (``at == len``: append), or clear (``at == CLEAR``)."""

    at: int
    message: MessageEntry | None = None


def _copy(message: MessageEntry) -> MessageEntry:
    """A copy that shares no mutable part (``warnings``) with ``message``."""
    return msgspec.structs.replace(message, warnings=list(message.warnings))


def apply(messages: list[MessageEntry], op: HistoryOp, entry: int, committed: int) -> None:
    """Apply one operation. Raises: HistoryDamaged if it does not fit the list."""
    if op.at == CLEAR:
        messages.clear()
    elif op.message is not None and 0 <= op.at < len(messages):
        messages[op.at] = op.message
    elif op.message is not None and op.at == len(messages):
        messages.append(op.message)
    else:
        raise HistoryDamaged(
            "the message history log does not replay", entry=entry, committed=committed
        )


def diff(committed: list[MessageEntry], current: list[MessageEntry]) -> list[HistoryOp]:
    """The operations that turn ``committed`` into ``current`` (nothing if equal).

    A shorter list (a transaction emptied or replaced it) is written as a clear, then puts.
    """
    if len(current) < len(committed):
        return [HistoryOp(CLEAR), *(HistoryOp(i, m) for i, m in enumerate(current))]
    ops = [
        HistoryOp(i, m)
        for i, (m, old) in enumerate(zip(current, committed, strict=False))
        if m != old
    ]
    ops += [HistoryOp(i, current[i]) for i in range(len(committed), len(current))]
    return ops


@dataclass
class _Position:
    entries: int = 0
    offset: int = 0


class HistoryLog:
    """One device's history log, with the committed list cached in memory.

    :meth:`view` hands a keystore transaction the live list; :meth:`append` writes what the
    transaction changed; :meth:`accept` or :meth:`rollback` settles the cache once the state
    save succeeded or failed. Only one transaction at a time (the keystore lock) may use it.
    """

    def __init__(self, path: Path, key: bytes) -> None:
        self.path = path
        self._key = key
        self._at = _Position()
        self._committed: list[MessageEntry] = []  # copies: what is on disk
        self._live: list[MessageEntry] = []  # handed to transactions
        self._pending_size = 0  # bytes written by the last append, not yet accepted

    @classmethod
    def in_home(cls, home: Path, key: bytes) -> HistoryLog:
        return cls(home / HISTORY_FILE, key)

    def view(self, committed: int) -> list[MessageEntry]:
        """The committed history (``committed`` entries), reading only entries that are new
        since the last call. The list and its entries may be changed by the caller.

        Raises:
            HistoryDamaged: a committed entry is missing or does not authenticate.
        """
        if committed < self._at.entries:  # replaced or rolled back elsewhere: start again
            self._at, self._committed = _Position(), []
        if committed > self._at.entries:
            try:
                for entry, op in self._read(committed):
                    apply(self._committed, op, entry, committed)
            except HistoryDamaged:
                self._at, self._committed = _Position(), []
                raise
            self._live = [_copy(m) for m in self._committed]
        return self._live

    def append(self, current: list[MessageEntry]) -> tuple[int, list[HistoryOp]]:
        """Durably append what changed between the committed list and ``current``, over any
        uncommitted tail. Returns the new committed count (to save in the state) and the
        operations written (for :meth:`accept`)."""
        ops = diff(self._committed, current)
        if not ops:
            return self._at.entries, ops
        blob = bytearray()
        for n, op in enumerate(ops):
            blob += self._seal(op, self._at.entries + n)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.ftruncate(fd, self._at.offset)
            os.pwrite(fd, bytes(blob), self._at.offset)
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            _fsync_dir(self.path.parent)
        self._pending_size = len(blob)
        return self._at.entries + len(ops), ops

    def accept(self, current: list[MessageEntry], ops: list[HistoryOp]) -> None:
        """The state recording the appended entries is saved: they are committed, and
        ``current`` (the list the transaction changed) is the live list from now on."""
        for n, op in enumerate(ops):
            copied = HistoryOp(op.at, None if op.message is None else _copy(op.message))
            apply(self._committed, copied, self._at.entries + n, self._at.entries + len(ops))
        if ops:
            self._at = _Position(self._at.entries + len(ops), self._at.offset + self._pending_size)
        self._live = current

    def rollback(self) -> None:
        """The transaction failed: forget its changes to the live list (the uncommitted
        entries on disk are ignored and overwritten by the next append)."""
        self._live = [_copy(m) for m in self._committed]

    def _seal(self, op: HistoryOp, entry: int) -> bytes:
        sealed = aead_seal(self._key, msgspec.json.encode(op), aad=_aad(entry))
        return _LENGTH.pack(len(sealed)) + sealed

    def _read(self, committed: int) -> list[tuple[int, HistoryOp]]:
        """Entries ``[self._at.entries, committed)`` with their numbers; advances the read
        position."""
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._at.offset)
                data = handle.read()
        except FileNotFoundError:
            data = b""
        ops: list[tuple[int, HistoryOp]] = []
        pos = 0
        while self._at.entries < committed:
            entry = self._at.entries
            damaged = HistoryDamaged(
                f"message history entry {entry} is missing or altered (the keystore counts "
                f"{committed}); restore {self.path.name} from a backup",
                entry=entry,
                committed=committed,
            )
            if len(data) - pos < _LENGTH.size:
                raise damaged
            (length,) = _LENGTH.unpack_from(data, pos)
            end = pos + _LENGTH.size + length
            if not NONCE_SIZE + TAG_SIZE <= length <= MAX_ENTRY or end > len(data):
                raise damaged
            try:
                plain = aead_open(self._key, data[pos + _LENGTH.size : end], aad=_aad(entry))
                ops.append((entry, msgspec.json.decode(plain, type=HistoryOp)))
            except (DecryptionFailed, msgspec.DecodeError) as exc:
                raise damaged from exc
            pos = end
            self._at = _Position(entry + 1, self._at.offset + _LENGTH.size + length)
        return ops


def read_history(home: Path, key: bytes, committed: int) -> list[MessageEntry]:
    """The committed history, read afresh (for readers outside a transaction)."""
    return HistoryLog.in_home(home, key).view(committed)


def _aad(entry: int) -> bytes:
    return _AAD + entry.to_bytes(8, "big")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = ["CLEAR", "HISTORY_FILE", "HistoryLog", "HistoryOp", "apply", "diff", "read_history"]
