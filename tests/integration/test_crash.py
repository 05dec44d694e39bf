"""Crash safety of capture at creation: SIGKILL the server between sends (a real process)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from harness import FAST_SCRYPT, connect
from processes import ServerProcess, register_principal

from hotline.client.device import HotlineClient
from hotline.records.custodian_keys import CustodianKeys, write_keys
from hotline.records.hasher import hash_leaf
from hotline.records.proof import MerkleTree
from hotline.server.config import default_database_url

pytestmark = pytest.mark.slow
DOMAIN = "crash.test"


async def test_sigkill_between_sends_loses_no_acknowledged_record(tmp_path: Path) -> None:
    write_keys(
        tmp_path / "custodian", CustodianKeys.generate(), "custodian pass", scrypt=FAST_SCRYPT
    )
    server = ServerProcess(tmp_path / "server", DOMAIN, tmp_path / "custodian" / "custodian.pub")
    server.start()
    clients: list[HotlineClient] = []
    acknowledged: dict[str, int] = {}
    try:
        washington = await register_principal(
            default_database_url(server.data_dir), server.url, f"potus@{DOMAIN}", tmp_path / "w"
        )
        ottawa = await register_principal(
            default_database_url(server.data_dir), server.url, f"pm@{DOMAIN}", tmp_path / "o"
        )
        clients += [washington, ottawa]
        await connect(washington, ottawa)
        for round_ in range(3):
            for i in range(5):
                entry = await washington.send_text(ottawa.handle, f"round {round_} msg {i}")
                assert entry.record_index >= 0 and entry.warnings == []
                acknowledged[entry.message_id] = entry.record_index
            server.kill()  # SIGKILL: no shutdown, no flush
            server.start()
            for client in clients:
                client.server.token = None  # sessions survive, but log in again anyway
        events = await ottawa.sync()
        texts = [e.text for e in events if e.kind == "message"]
        assert texts == [f"round {r} msg {i}" for r in range(3) for i in range(5)]
        entry = await washington.send_text(ottawa.handle, "after the crashes")
        assert entry.warnings == [], "the new head must extend every head seen before"
    finally:
        for client in clients:
            await client.close()
        server.kill()
    # Every acknowledged record is in the log at its index, whole, and every signed head
    # matches the recomputed tree (the server also checks this at each start).
    db = tmp_path / "server" / "hotline-server.db"
    with sqlite3.connect(db) as conn:
        rows = list(conn.execute("SELECT idx, leaf, leaf_hash FROM log_entries ORDER BY idx"))
        heads = list(conn.execute("SELECT size, head FROM tree_heads ORDER BY size"))
    assert [r[0] for r in rows] == list(range(len(rows)))
    for _, leaf, leaf_hash in rows:
        assert hash_leaf(bytes(leaf)) == bytes(leaf_hash)
    assert set(acknowledged.values()) <= {r[0] for r in rows}
    tree = MerkleTree(bytes(r[2]) for r in rows)
    from hotline.records.checkpoint import decode_tree_head

    for size, head in heads:
        assert decode_tree_head(bytes(head)).root == tree.root(size)
