"""Crash safety under fire: a stream of messages while the server process is SIGKILLed at
random moments (20 kills), on SQLite and on PostgreSQL. After every restart nothing
acknowledged is lost and nothing reaches the user twice: messages that could not be sent wait
in the device's outbox and are re-sent with the same id; the server deduplicates."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from harness import FAST_SCRYPT, connect
from processes import ServerProcess, register_principal, scratch_postgres

from hotline.client.device import HotlineClient
from hotline.records.checkpoint import decode_tree_head
from hotline.records.custodian_keys import CustodianKeys, write_keys
from hotline.records.proof import MerkleTree
from hotline.server.config import default_database_url
from hotline.store import open_store
from hotline.wire.errors import HotlineError

pytestmark = pytest.mark.slow
KILLS = 20
MESSAGES = 150


@asynccontextmanager
async def database(backend: str, data_dir: Path) -> AsyncIterator[str]:
    if backend == "sqlite":
        yield default_database_url(data_dir)
        return
    async with scratch_postgres("hotline_crash") as url:
        yield url


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_random_sigkills_lose_and_duplicate_nothing(tmp_path: Path, backend: str) -> None:
    rng = random.Random(20261126)  # timing jitter, not crypto
    write_keys(tmp_path / "custodian", CustodianKeys.generate(), "pass", scrypt=FAST_SCRYPT)
    async with database(backend, tmp_path / "server") as url:
        server = ServerProcess(
            tmp_path / "server",
            "crash.test",
            tmp_path / "custodian" / "custodian.pub",
            database_url=url,
        )
        server.start()
        clients: list[HotlineClient] = []
        try:
            alice = await register_principal(
                url, server.url, f"alice@{server.domain}", tmp_path / "alice"
            )
            bob = await register_principal(
                url, server.url, f"bob@{server.domain}", tmp_path / "bob"
            )
            clients += [alice, bob]
            await connect(alice, bob)
            await bob.send_text(alice.handle, "sessions both ways")
            await alice.sync()

            async def killer() -> int:
                for _ in range(KILLS):
                    await asyncio.sleep(rng.uniform(0.05, 0.4))
                    server.kill()
                    await asyncio.to_thread(server.start)
                return KILLS

            kill_task = asyncio.create_task(killer())
            count = 0
            while not kill_task.done() or count < MESSAGES:
                await alice.send_text(bob.handle, f"n{count:04d}")
                count += 1
                await asyncio.sleep(0.01)
            kills = await kill_task
            received: list[str] = []
            for _ in range(200):
                try:
                    await alice.flush_outbox()
                    received += [e.text for e in await bob.sync() if e.kind == "message"]
                except HotlineError:  # the server may be restarting
                    await asyncio.sleep(0.1)
                    continue
                if len(received) >= count and not alice.keystore.load().outbox:
                    break
                await asyncio.sleep(0.05)
            assert kills == KILLS
            assert received == [f"n{n:04d}" for n in range(count)]
            assert [e for e in await bob.sync() if e.kind == "message"] == []
            sent = [m for m in alice.history(bob.handle) if m.outgoing]
            assert all(m.status in ("sent", "delivered", "read") for m in sent)
        finally:
            for client in clients:
                await client.close()
            server.kill()
        store = await open_store(url)
        try:
            size = await store.log_size()
            entries = await store.log_entries(0, size)
            heads = await store.tree_heads(limit=100_000)
        finally:
            await store.close()
        assert [e.index for e in entries] == list(range(size))
        tree = MerkleTree(e.leaf_hash for e in entries)
        for head in heads:
            assert decode_tree_head(head.head).root == tree.root(head.size)
