"""The federation fault test: 1,000 numbered messages while the receiving server is SIGKILLed
and restarted twice and the sending server once. Every message arrives exactly once, in
order, and both archives hold every record with their logs consistent."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from harness import CUSTODIAN, FAST_SCRYPT, connect
from processes import ServerProcess, register_principal

from hotline.client.device import HotlineClient
from hotline.crypto.hpke import CustodianPrivateKey
from hotline.records.checkpoint import decode_tree_head
from hotline.records.custodian_keys import CustodianKeys, write_keys
from hotline.records.hasher import hash_leaf
from hotline.records.proof import MerkleTree
from hotline.records.sealing import open_record
from hotline.server.config import default_database_url

pytestmark = pytest.mark.slow
COUNT = 1000


def check_log(data_dir: Path, custodian: CustodianPrivateKey) -> list:
    """Every entry whole, indices gap-free, every signed head matching the recomputed tree."""
    with sqlite3.connect(data_dir / "hotline-server.db") as conn:
        rows = list(conn.execute("SELECT idx, leaf, leaf_hash FROM log_entries ORDER BY idx"))
        heads = list(conn.execute("SELECT size, head FROM tree_heads ORDER BY size"))
    assert [r[0] for r in rows] == list(range(len(rows)))
    tree = MerkleTree(hash_leaf(bytes(r[1])) for r in rows)
    for size, head in heads:
        assert decode_tree_head(bytes(head)).root == tree.root(size)
    return [open_record(custodian, bytes(r[1])) for r in rows]


async def test_thousand_messages_through_crashes(tmp_path: Path) -> None:
    keys = {}
    for name in ("washington", "ottawa"):
        keys[name] = CustodianKeys.generate()
        write_keys(tmp_path / f"custodian-{name}", keys[name], "pass", scrypt=FAST_SCRYPT)
    sender = ServerProcess(
        tmp_path / "washington",
        "washington.test",
        tmp_path / "custodian-washington" / "custodian.pub",
    )
    receiver = ServerProcess(
        tmp_path / "ottawa", "ottawa.test", tmp_path / "custodian-ottawa" / "custodian.pub"
    )
    clients: list[HotlineClient] = []
    try:
        for server in (sender, receiver):
            server.start()
        for a, b in ((sender, receiver), (receiver, sender)):
            a.cli("peer", "add", b.domain, "--key", b.cli("key"), "--url", b.url)
        potus = await register_principal(
            default_database_url(sender.data_dir),
            sender.url,
            f"potus@{sender.domain}",
            tmp_path / "potus",
        )
        pm = await register_principal(
            default_database_url(receiver.data_dir),
            receiver.url,
            f"pm@{receiver.domain}",
            tmp_path / "pm",
        )
        clients += [potus, pm]
        await connect(potus, pm)
        for _ in range(100):
            await pm.sync()
            await potus.sync()
            if potus.contact(pm.handle).status == "active":
                break
            await asyncio.sleep(0.05)
        received: list[str] = []

        async def drain() -> None:
            received.extend(e.text for e in await pm.sync() if e.kind == "message")

        faults = {250: receiver, 500: sender, 750: receiver}
        for n in range(COUNT):
            if n in faults:
                faults[n].kill()
                faults[n].start()
                for client in clients:
                    client.server.token = None
            await potus.send_text(pm.handle, f"message {n:04d}")
            if n % 100 == 99:
                await drain()
        deadline = time.monotonic() + 60
        while len(received) < COUNT and time.monotonic() < deadline:
            await drain()
            await asyncio.sleep(0.1)
        assert received == [f"message {n:04d}" for n in range(COUNT)]
        await drain()
        assert len(received) == COUNT  # nothing twice
        assert await pm.flush_records() == []
    finally:
        for client in clients:
            await client.close()
        sender.kill()
        receiver.kill()
    sent = check_log(sender.data_dir, keys["washington"].hpke)
    got = check_log(receiver.data_dir, keys["ottawa"].hpke)
    sent_texts = [r.body for r in sent if r.kind == "message" and r.side == "sent"]
    got_texts = [r.body for r in got if r.kind == "message" and r.side == "received"]
    assert sent_texts == [f"message {n:04d}" for n in range(COUNT)]
    assert sorted(got_texts) == sent_texts
    assert CUSTODIAN  # the shared test custodian is not used here: each side has its own
