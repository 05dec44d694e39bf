"""The device's keystore on disk, encrypted at rest.

Layout of ``HOTLINE_HOME``:

- ``keystore.key``: a random 32-byte master key sealed under the passphrase (scrypt + AEAD,
  :mod:`hotline.crypto.passphrase`). A wrong passphrase is refused and nothing is written.
- ``keystore.state``: the :class:`ClientState` JSON, ChaCha20-Poly1305 under the master key's
  ``state`` subkey. Written atomically (temp file, fsync, rename), so a crash leaves either the
  old or the new state, never a torn one. It holds everything except the message history, so
  a transaction rewrites a small file whatever the length of the history.
- ``keystore.history``: the message history, an append-only log of encrypted entries under the
  ``history`` subkey (:mod:`hotline.client.history_log`). A transaction appends only what it
  changed, before saving the state that counts the entries (the commit point). A keystore
  written before the log existed (history inside the state) is migrated on open.
- ``keystore.lock``: an exclusive ``flock`` held for each read-modify-write of the state
  (:meth:`Keystore.transaction`), so ``hotline listen`` and ``hotline send`` can run at the
  same time on one device without overwriting each other's state.

The vodozemac pickles inside the state are encrypted again with the ``pickle`` subkey.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import msgspec

from hotline.client.history_log import HistoryLog, read_history
from hotline.client.state import ClientState, MessageEntry
from hotline.crypto.aead import aead_open, aead_seal
from hotline.crypto.passphrase import DEFAULT_SCRYPT, KeystoreKey, ScryptParams
from hotline.wire.errors import AlreadyExists, DecryptionFailed, KeystoreMissing, WrongPassphrase

KEY_FILE = "keystore.key"
STATE_FILE = "keystore.state"
LOCK_FILE = "keystore.lock"
_AAD_KEY = b"hotline/v1/keystore-key"
_AAD_STATE = b"hotline/v1/keystore-state"


class Keystore:
    """An open keystore: the master key in memory. State is read and written in transactions."""

    def __init__(self, home: Path, key: KeystoreKey) -> None:
        self.home = home
        self._key = key
        self._history = HistoryLog.in_home(home, key.subkey("history"))

    @property
    def pickle_key(self) -> bytes:
        return self._key.subkey("pickle")

    @staticmethod
    def exists(home: Path) -> bool:
        return (home / KEY_FILE).exists()

    @classmethod
    def create(
        cls,
        home: Path,
        passphrase: str,
        state: ClientState,
        *,
        scrypt: ScryptParams = DEFAULT_SCRYPT,
    ) -> Keystore:
        """Create a new keystore holding ``state``. Raises: AlreadyExists if one is there."""
        home.mkdir(parents=True, exist_ok=True, mode=0o700)
        if cls.exists(home):
            raise AlreadyExists(f"a keystore already exists in {home}; use another HOTLINE_HOME")
        key = KeystoreKey.generate()
        store = cls(home, key)
        store._commit(state)
        _atomic_write(home / KEY_FILE, key.seal(passphrase, aad=_AAD_KEY, scrypt=scrypt))
        return store

    @classmethod
    def open(cls, home: Path, passphrase: str) -> Keystore:
        """Unlock with the passphrase. Raises: KeystoreMissing, WrongPassphrase."""
        if not cls.exists(home):
            raise KeystoreMissing(
                f"no keystore in {home}; run 'hotline register' (or set HOTLINE_HOME)"
            )
        try:
            key = KeystoreKey.open(passphrase, (home / KEY_FILE).read_bytes(), aad=_AAD_KEY)
        except WrongPassphrase:
            raise WrongPassphrase(
                "wrong passphrase for this keystore; nothing was changed"
            ) from None
        store = cls(home, key)
        state = store.load()  # fail now, not later, if the state does not match the key
        if state.messages:
            store._migrate()
        return store

    def _migrate(self) -> None:
        """Move a history kept inside the state (written before the log existed) to the log.

        Crash-safe: the log is appended first; until the state without the history is saved,
        the history inside the state stays the truth and the appended entries are ignored.
        """
        handle = (self.home / LOCK_FILE).open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)  # open() is synchronous; the wait is short
            state = self.load()
            if state.messages:
                self._history.view(state.history_entries)
                self._commit(state)
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()

    def history(self) -> list[MessageEntry]:
        """The message history as committed (read afresh; a keystore not yet migrated is read
        from its state).

        Raises:
            WrongPassphrase: the state does not authenticate.
            HistoryDamaged: a committed entry of the log is missing or altered.
        """
        state = self.load()
        if state.messages:
            return state.messages
        return read_history(self.home, self._key.subkey("history"), state.history_entries)

    def load(self) -> ClientState:
        """Raises: WrongPassphrase if the state file does not authenticate."""
        try:
            raw = aead_open(
                self._key.subkey("state"), (self.home / STATE_FILE).read_bytes(), aad=_AAD_STATE
            )
        except (DecryptionFailed, FileNotFoundError) as exc:
            raise WrongPassphrase("keystore state is damaged or does not match its key") from exc
        return msgspec.json.decode(raw, type=ClientState)

    def save(self, state: ClientState) -> None:
        """Write the state file: everything but the history, which only a transaction
        changes (``state.messages`` is not written; ``history_entries`` is kept as given)."""
        self._write(msgspec.structs.replace(state, messages=[]))

    def _write(self, state: ClientState) -> None:
        sealed = aead_seal(self._key.subkey("state"), msgspec.json.encode(state), aad=_AAD_STATE)
        _atomic_write(self.home / STATE_FILE, sealed)

    def _commit(self, state: ClientState) -> None:
        """Append the history's changes to the log, then save the rest of the state with the
        new entry count (the commit point). Settles the history cache either way. The cache
        must be at ``state.history_entries`` (see :meth:`HistoryLog.view`)."""
        try:
            entries, ops = self._history.append(state.messages)
            self._write(msgspec.structs.replace(state, messages=[], history_entries=entries))
        except BaseException:
            self._history.rollback()
            raise
        self._history.accept(state.messages, ops)
        state.history_entries = entries  # so a later save() of this object stays consistent

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[ClientState]:
        """Lock, load, yield the state, and save it if the block succeeds.

        On an exception nothing is saved: the state on disk stays as it was.
        """
        lock = await _lock(self.home)
        try:
            state = self.load()
            committed = self._history.view(state.history_entries)
            if not state.messages:  # else: not migrated yet, the history inside is the truth
                state.messages = committed
            try:
                yield state
            except BaseException:
                self._history.rollback()
                raise
            # Sealing and the fsyncs run off the event loop, so a device's websocket and
            # timers (and other clients in the same process) keep running meanwhile.
            await asyncio.to_thread(self._commit, state)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()


async def _lock(home: Path, timeout: float = 30.0) -> IO[bytes]:
    handle = (home / LOCK_FILE).open("ab")
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return handle
        except BlockingIOError:
            if time.monotonic() > deadline:
                handle.close()
                raise AlreadyExists(f"another hotline process keeps {home} locked") from None
            await asyncio.sleep(0.01)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
