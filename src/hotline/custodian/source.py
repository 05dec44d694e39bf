"""Where the custodian reads the log from, and how records are opened.

The custodian works on the home server's storage (or a copy of it): an SQLite file in the
server's data dir, or any store URL. Entries are streamed in batches so memory stays bounded
whatever the log's size. The log's *public* key verifies tree heads; it comes from ``--log-key``
or from the server's data dir (``log.key``; never created here).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from hotline.crypto.hpke import CustodianPrivateKey
from hotline.custodian.errors import LogKeyUnavailable
from hotline.records.custodian_keys import CustodianKeys, read_keys
from hotline.records.sealing import open_record
from hotline.server.admin import LOG_KEY_FILE, load_log_key
from hotline.server.config import default_database_url
from hotline.store import open_store
from hotline.store.base import LogEntryRow, LogStore
from hotline.store.sql import SqlStore
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import HotlineError, MalformedInput
from hotline.wire.records import Record

#: Entries read per storage round trip.
BATCH = 1000
PASSPHRASE_ENV = "HOTLINE_CUSTODIAN_PASSPHRASE"  # noqa: S105 (a variable name)


def database_url(data_dir: Path | None, url: str | None) -> str:
    """The store URL: ``url`` if given, else the server's database in ``data_dir``.

    Raises:
        MalformedInput: neither was given.
    """
    if url:
        return url
    if data_dir is None:
        raise MalformedInput("give --data-dir (the server's folder) or --database-url")
    return default_database_url(data_dir)


async def open_log(data_dir: Path | None, url: str | None = None) -> SqlStore:
    """Open the server's store read for the custodian.

    Raises:
        MalformedInput: no location given, or the SQLite file does not exist.
        StorageError: the database cannot be opened.
    """
    target = database_url(data_dir, url)
    if target.startswith("sqlite") and ":///" in target:
        path = Path(target.split(":///", 1)[1])
        if not path.exists():
            raise MalformedInput(f"no server database at {path}")
    return await open_store(target)


def log_public_key(data_dir: Path | None, log_key_b64: str | None) -> Ed25519PublicKey:
    """The log's Ed25519 public key, from ``--log-key`` (base64url) or ``data_dir/log.key``.

    Raises:
        LogKeyUnavailable: neither is available (a missing key file is never created here).
        MalformedInput: the given key is not 32 bytes of base64url.
    """
    if log_key_b64:
        raw = b64d(log_key_b64, field="log key")
        if len(raw) != 32:
            raise MalformedInput("the log key must be 32 bytes (base64url)")
        return Ed25519PublicKey.from_public_bytes(raw)
    if data_dir is not None and (data_dir / LOG_KEY_FILE).exists():
        return load_log_key(data_dir).public_key()
    raise LogKeyUnavailable(
        "give --log-key (the 'log_key' of GET /v1/records/policy) or a --data-dir with log.key"
    )


def public_key_b64(key: Ed25519PublicKey) -> str:
    """Raw base64url of an Ed25519 public key."""
    return b64e(key.public_bytes(Encoding.Raw, PublicFormat.Raw))


def custodian_passphrase(prompt: bool = True) -> str:
    """``HOTLINE_CUSTODIAN_PASSPHRASE`` if set, else asked on the terminal (never echoed)."""
    value = os.environ.get(PASSPHRASE_ENV)
    if value or not prompt:
        return value or ""
    import getpass

    return getpass.getpass("Custodian key passphrase: ")


def load_custodian(key_file: Path, passphrase: str | None = None) -> CustodianKeys:
    """Open ``custodian.key``.

    Raises:
        MalformedInput: no such file. WrongPassphrase: the passphrase does not open it.
    """
    if not key_file.is_file():
        raise MalformedInput(f"no custodian key file at {key_file}")
    return read_keys(key_file, passphrase if passphrase is not None else custodian_passphrase())


async def iter_entries(
    store: LogStore, start: int = 0, end: int | None = None, batch: int = BATCH
) -> AsyncIterator[LogEntryRow]:
    """Stored entries with ``start <= index < end`` (default: the log size), in index order.

    Rows missing from storage are simply absent: callers that care check the indices.
    """
    stop = await store.log_size() if end is None else end
    for first in range(start, stop, batch):
        for row in await store.log_entries(first, min(stop, first + batch)):
            yield row


@dataclass(frozen=True)
class OpenedEntry:
    """One entry and its record, or why it could not be opened (``error`` is a code)."""

    entry: LogEntryRow
    record: Record | None
    error: str = ""


async def iter_records(
    store: LogStore, custodian: CustodianPrivateKey, end: int | None = None, batch: int = BATCH
) -> AsyncIterator[OpenedEntry]:
    """Open every entry with the custodian's key, streaming; unreadable ones carry an error."""
    async for row in iter_entries(store, 0, end, batch):
        try:
            yield OpenedEntry(row, open_record(custodian, row.leaf))
        except HotlineError as exc:
            yield OpenedEntry(row, None, exc.code)
