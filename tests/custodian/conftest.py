"""A real records log, built once per session by real clients through a real server.

``archive_world`` runs a server with an archive (custodian key = ``harness.CUSTODIAN``, log key
in the data dir as ``hotline server`` keeps it), registers Washington and Ottawa, exchanges
five texts each way, records both clients' transcript digests, then Washington removes Ottawa
(whose device stays offline, so that notice waits in its mailbox). Tests get a private copy of
the data dir (``world``) to tamper with.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness import CUSTODIAN, FAST_SCRYPT, LAW, PASSPHRASE, connect, start_server

from hotline.client.device import HotlineClient
from hotline.client.transcript import conversation_id
from hotline.custodian.source import PASSPHRASE_ENV, public_key_b64
from hotline.records.custodian_keys import CustodianKeys, write_keys
from hotline.server.admin import issue_enrolment, load_log_key
from hotline.server.records_log import ArchiveSettings

DB_FILE = "hotline-server.db"


@dataclass(frozen=True)
class World:
    """A copy of the server's data dir and what the clients saw."""

    data_dir: Path
    log_key: str
    washington: str
    ottawa: str
    conversation: str
    digest_washington: str
    digest_ottawa: str
    texts: tuple[str, ...]

    @property
    def db(self) -> Path:
        return self.data_dir / DB_FILE

    def sql(self, statement: str, *params: object) -> list[tuple[object, ...]]:
        """Run SQL on the SQLite file directly (the tamperer's tool)."""
        with sqlite3.connect(self.db) as conn:
            rows = conn.execute(statement, params).fetchall()
        conn.close()
        return rows


async def _register(url: str, store: object, home: Path, name: str) -> HotlineClient:
    handle = f"{name}@washington.test"
    token = await issue_enrolment(store, handle, time.time())  # type: ignore[arg-type]
    return await HotlineClient.register(
        home,
        PASSPHRASE,
        server_url=url,
        enrolment_token=token,
        handle=handle,
        display_name=name.title(),
        scrypt=FAST_SCRYPT,
    )


async def _build(root: Path) -> World:
    data_dir = root / "data"
    settings = ArchiveSettings(
        log_key=load_log_key(data_dir), custodian_key=CUSTODIAN.public.to_bytes(), law=LAW
    )
    server, stop = await start_server(data_dir / DB_FILE, archive_settings=settings)
    try:
        w = await _register(server.url, server.store, root / "home-w", "washington")
        o = await _register(server.url, server.store, root / "home-o", "ottawa")
        await connect(w, o)
        texts: list[str] = []
        for i in range(5):
            texts += [f"Washington to Ottawa, number {i}", f"Ottawa replies, number {i}"]
            await w.send_text(o.handle, texts[-2])
            await o.sync()
            await o.send_text(w.handle, texts[-1])
            await w.sync()
        await o.sync()
        await w.flush_records()
        await o.flush_records()
        digest_w, digest_o = w.transcript_digest(o.handle), o.transcript_digest(w.handle)
        await w.remove_contact(o.handle)  # Ottawa stays offline: the notice waits
        handles = (w.handle, o.handle)
        await w.close()
        await o.close()
    finally:
        await stop()
    return World(
        data_dir=data_dir,
        log_key=public_key_b64(settings.log_key.public_key()),
        washington=handles[0],
        ottawa=handles[1],
        conversation=conversation_id(*handles),
        digest_washington=digest_w,
        digest_ottawa=digest_o,
        texts=tuple(texts),
    )


@pytest.fixture(scope="session")
def archive_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return asyncio.run(_build(tmp_path_factory.mktemp("world")))


@pytest.fixture
def world(archive_world: World, tmp_path: Path) -> World:
    """A private copy of the built world's data dir."""
    copy = tmp_path / "data"
    shutil.copytree(archive_world.data_dir, copy)
    return replace(archive_world, data_dir=copy)


@pytest.fixture(scope="session")
def custodian_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``custodian.key``/``custodian.pub`` holding ``harness.CUSTODIAN`` (built once)."""
    directory = tmp_path_factory.mktemp("custodian")
    keys = CustodianKeys(CUSTODIAN, Ed25519PrivateKey.generate())
    write_keys(directory, keys, PASSPHRASE, scrypt=FAST_SCRYPT)
    return directory


@pytest.fixture
def custodian_key(custodian_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the custodian key dir; the passphrase is in the environment."""
    copy = tmp_path / "custodian"
    shutil.copytree(custodian_dir, copy)
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    return copy / "custodian.key"
