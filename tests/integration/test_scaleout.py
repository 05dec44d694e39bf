"""Scale-out: stateless workers sharing PostgreSQL.

* Cross-worker push: a device on worker A's websocket gets, within a second, a message sent
  through worker B (two real ``hotline server`` processes, one database, one data dir).
* The LISTEN connection recovers from a drop and wakes every local waiter once.
* ``hotline server --workers 2`` (uvicorn's multiprocess mode) serves health and messages,
  and ``--workers 2`` on SQLite is refused with a clear message.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import time
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness import FAST_SCRYPT, connect
from processes import (
    ServerProcess,
    free_port,
    hotline_command,
    register_principal,
    scratch_postgres,
)

from hotline.client.device import HotlineClient
from hotline.crypto.hpke import CustodianPrivateKey
from hotline.records.checkpoint import SignedTreeHead, verify_tree_head
from hotline.records.custodian_keys import CustodianKeys, write_keys
from hotline.records.proof import MerkleTree
from hotline.server.factory import TcpNoDelayConfig
from hotline.server.hub import PushHub
from hotline.server.pg_notify import PgNotifier
from hotline.server.records_log import ArchiveSettings, RecordsLog
from hotline.store import open_store

pytestmark = [pytest.mark.slow, pytest.mark.postgres]
ADMIN_URL = os.environ.get(
    "HOTLINE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
DOMAIN = "scale.test"


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def postgres() -> AbstractAsyncContextManager[str]:
    """A new empty database, dropped afterwards."""
    return scratch_postgres("hotline_scale")


async def first_message(client: HotlineClient, ready: asyncio.Event) -> tuple[str, float]:
    """Listen on the websocket; return the first message's text and when it arrived."""
    listening = client.listen()
    ready_task = asyncio.create_task(_signal_when_open(client, ready))
    try:
        async for event in listening:
            if event.kind == "message" and not event.outgoing:
                return event.text, time.perf_counter()
    finally:
        ready_task.cancel()
        await listening.aclose()
    raise AssertionError("the websocket closed before any message")


async def _signal_when_open(client: HotlineClient, ready: asyncio.Event) -> None:
    while getattr(client.server, "_ws", None) is None:
        await asyncio.sleep(0.005)
    ready.set()


async def test_push_crosses_workers(tmp_path: Path) -> None:
    write_keys(tmp_path / "custodian", CustodianKeys.generate(), "pass", scrypt=FAST_SCRYPT)
    async with postgres() as url:
        data = tmp_path / "server"
        custodian = tmp_path / "custodian" / "custodian.pub"
        worker_a = ServerProcess(data, DOMAIN, custodian, database_url=url)
        worker_b = ServerProcess(data, DOMAIN, custodian, database_url=url)
        worker_a.start()  # first: creates log.key and server.key in the shared data dir
        worker_b.start()
        clients: list[HotlineClient] = []
        try:
            alice = await register_principal(
                url, worker_b.url, f"alice@{DOMAIN}", tmp_path / "alice"
            )
            bob = await register_principal(url, worker_a.url, f"bob@{DOMAIN}", tmp_path / "bob")
            clients += [alice, bob]
            await connect(alice, bob)
            await bob.send_text(alice.handle, "sessions both ways")
            await alice.sync()
            for round_ in range(3):
                ready = asyncio.Event()
                listening = asyncio.create_task(first_message(bob, ready))
                await asyncio.wait_for(ready.wait(), 10)
                await asyncio.sleep(0.1)  # the socket is idle, waiting for a wake-up
                sent = time.perf_counter()
                await alice.send_text(bob.handle, f"via worker B, round {round_}")
                text, arrived = await asyncio.wait_for(listening, 5)
                assert text == f"via worker B, round {round_}"
                assert arrived - sent < 1.0, f"took {arrived - sent:.3f} s"
        finally:
            for client in clients:
                await client.close()
            worker_b.kill()
            worker_a.kill()


async def test_listen_connection_recovers_and_wakes_everyone() -> None:
    async with postgres() as url:
        dsn = _dsn(url)
        hub_a, hub_b = PushHub(), PushHub()
        a = PgNotifier(dsn, hub_a, retry_base=0.05)
        b = PgNotifier(dsn, hub_b, retry_base=0.05)
        await a.start()
        await b.start()
        try:
            on_b, idle_on_b = hub_b.subscribe("dev1"), hub_b.subscribe("dev2")
            mine = hub_a.subscribe("dev1")
            hub_a.notify(["dev1"])
            assert mine.is_set()  # local wake-up is immediate
            await asyncio.wait_for(on_b.wait(), 2)
            assert not idle_on_b.is_set()
            # Own notifications are ignored (no second, spurious wake-up on A).
            mine.clear()
            await asyncio.sleep(0.2)
            assert not mine.is_set()
            # Many ids in one go: split under PostgreSQL's 8000-byte payload limit.
            many = [f"d{n:05d}" + "x" * 50 for n in range(400)]
            events = [hub_b.subscribe(d) for d in many]
            hub_a.notify(many)
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 3)
            # Drop B's link: it reconnects and wakes every local waiter once.
            on_b.clear()
            idle_on_b.clear()
            b.drop_connection()
            deadline = time.monotonic() + 5
            while b.connections < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            assert b.connections == 2
            await asyncio.wait_for(b.listening.wait(), 2)
            assert on_b.is_set() and idle_on_b.is_set()
            # And cross-worker wake-ups work again.
            on_b.clear()
            hub_a.notify(["dev1"])
            await asyncio.wait_for(on_b.wait(), 2)
        finally:
            await a.stop()
            await b.stop()


def _workers(pid: int) -> list[int]:
    """uvicorn's worker processes under ``pid`` (not multiprocessing's resource tracker)."""
    try:
        children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []
    return [c for c in children if b"spawn_main" in Path(f"/proc/{c}/cmdline").read_bytes()]


async def test_workers_2_serves_health_and_messages(tmp_path: Path) -> None:
    write_keys(tmp_path / "custodian", CustodianKeys.generate(), "pass", scrypt=FAST_SCRYPT)
    async with postgres() as url:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        args = ["server", "--workers", "2", "--data-dir", str(tmp_path / "server")]
        args += ["--domain", DOMAIN, "--port", str(port)]
        args += ["--custodian-key", str(tmp_path / "custodian" / "custodian.pub")]
        env = {**os.environ, "HOTLINE_DATABASE_URL": url, "HOTLINE_LOG_LEVEL": "warning"}
        log = tmp_path / "server.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                hotline_command(*args),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        clients: list[HotlineClient] = []
        try:
            async with httpx.AsyncClient(timeout=1) as http:
                deadline = time.monotonic() + 60
                while True:
                    assert proc.poll() is None, log.read_text(errors="replace")
                    try:
                        if (await http.get(base + "/health")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    assert time.monotonic() < deadline, "--workers 2 did not answer /health"
                    await asyncio.sleep(0.1)
                for _ in range(20):  # both workers answer (the kernel spreads connections)
                    assert (await http.get(base + "/health")).json()["status"] == "ok"
                # Keep-alive requests are not held back by Nagle + delayed ACK (~40 ms added to
                # every one when the workers' listening socket lacks IPPROTO_TCP:
                # TcpNoDelayConfig). Without the fix not even the fastest of 20 gets under 30
                # ms; with it, a loaded machine may slow most but not all of them.
                took = []
                for _ in range(20):
                    start = time.perf_counter()
                    await http.get(base + "/v1/server")
                    took.append(time.perf_counter() - start)
                assert min(took) < 0.03, took
            workers = _workers(proc.pid)
            assert len(workers) == 2, f"expected 2 worker processes, found {workers}"
            alice = await register_principal(url, base, f"alice@{DOMAIN}", tmp_path / "alice")
            bob = await register_principal(url, base, f"bob@{DOMAIN}", tmp_path / "bob")
            clients += [alice, bob]
            await connect(alice, bob)
            await bob.send_text(alice.handle, "sessions both ways")
            await alice.sync()
            for round_ in range(4):  # each request may land on either worker
                ready = asyncio.Event()
                listening = asyncio.create_task(first_message(bob, ready))
                await asyncio.wait_for(ready.wait(), 10)
                await asyncio.sleep(0.05)
                entry = await alice.send_text(bob.handle, f"two workers, round {round_}")
                assert entry.record_index >= 0 and entry.warnings == []
                text, _ = await asyncio.wait_for(listening, 5)
                assert text == f"two workers, round {round_}"
        finally:
            for client in clients:
                await client.close()
            if proc.poll() is None:
                os.killpg(proc.pid, 15)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, 9)
                proc.wait()


def test_workers_2_refused_on_sqlite(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_DATABASE_URL"}
    out = subprocess.run(
        hotline_command(
            "server", "--workers", "2", "--data-dir", str(tmp_path), "--domain", DOMAIN
        ),
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2
    assert "needs PostgreSQL" in " ".join(out.stderr.split())


async def test_workers_signing_the_same_size_hand_out_one_head() -> None:
    """Two workers (each its own store and in-memory tree, one log key) append and sign
    concurrently: every receipt for a given size carries the same stored head, and every
    stored head is the root of the entries at its size."""
    settings = ArchiveSettings(
        log_key=Ed25519PrivateKey.generate(),
        custodian_key=CustodianPrivateKey.generate().public.to_bytes(),
    )
    async with postgres() as url:
        stores = [await open_store(url) for _ in range(2)]
        logs = [RecordsLog(settings, DOMAIN) for _ in stores]
        seen: dict[int, set[tuple[bytes, bytes]]] = {}
        try:

            async def worker(n: int) -> None:
                for i in range(15):
                    now = 1000.0 + n + i / 100  # different timestamps per worker
                    await logs[n].server_record(stores[n], "policy", "", {"i": str(i)}, now)
                    size, signed = await logs[n].signed_head(stores[n], now)
                    seen.setdefault(size, set()).add((signed.head_bytes, signed.signature))

            await asyncio.gather(worker(0), worker(1))
            assert all(len(heads) == 1 for heads in seen.values()), seen
            size = await stores[0].log_size()
            tree = MerkleTree(e.leaf_hash for e in await stores[0].log_entries(0, size))
            for row in await stores[0].tree_heads(limit=1000):
                head = verify_tree_head(
                    SignedTreeHead(row.head, row.signature), settings.log_key.public_key()
                )
                assert head.root == tree.root(head.size)
                if head.size in seen:
                    assert seen[head.size] == {(row.head, row.signature)}
        finally:
            for store in stores:
                await store.close()


def test_worker_listener_says_tcp_so_asyncio_sets_nodelay() -> None:
    config = TcpNoDelayConfig("hotline.server.factory:app_from_env", host="127.0.0.1", port=0)
    sock = config.bind_socket()
    try:
        assert sock.proto == socket.IPPROTO_TCP and sock.get_inheritable()
    finally:
        sock.close()
