"""Capture at creation: every message is on the record on both sides, sealed to the
custodian, and clients catch a log that forks or rolls back."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from harness import CUSTODIAN

from hotline.client.capture import build_record, flush_records, queue_record
from hotline.client.transport import ServerApi
from hotline.records.checkpoint import SignedTreeHead, TreeHead, sign_tree_head, verify_tree_head
from hotline.records.proof import MerkleTree
from hotline.records.sealing import open_record
from hotline.wire.encoding import b64d, b64e


def log_records(db) -> list:
    with sqlite3.connect(db) as conn:
        leaves = [bytes(r[0]) for r in conn.execute("SELECT leaf FROM log_entries ORDER BY idx")]
    return [open_record(CUSTODIAN, leaf) for leaf in leaves]


async def test_every_message_on_the_record_both_sides(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    sent = await washington.send_text(ottawa.handle, "On the record, Prime Minister.")
    assert sent.record_index >= 0 and sent.warnings == []
    await ottawa.sync()
    (received,) = ottawa.history(washington.handle)
    assert received.record_index >= 0 and received.record_index != sent.record_index
    records = log_records(live_server.db_path)
    messages = [r for r in records if r.kind == "message"]
    assert {(r.side, r.principal, r.body) for r in messages} == {
        ("sent", washington.handle, "On the record, Prime Minister."),
        ("received", ottawa.handle, "On the record, Prime Minister."),
    }
    assert all(r.envelope for r in messages)
    kinds = {r.kind for r in records}
    assert {"card_issued", "contact_added", "receipt"} <= kinds
    # The sealed log itself holds no plaintext.
    with sqlite3.connect(live_server.db_path) as conn:
        blob = b"".join(bytes(r[0]) for r in conn.execute("SELECT leaf FROM log_entries"))
    assert b"Prime Minister" not in blob


async def test_message_without_record_refused_nothing_stored(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "prime the sessions")
    before = await live_server.store.log_size()
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        reply = await http.post(
            "/v1/messages",
            headers={"authorization": f"Bearer {washington.server.token}"},
            json={
                "message_id": "norecord",
                "to": ottawa.handle,
                "ciphertexts": [{"device_id": ottawa.device_id, "type": 1, "body": "AAAA"}],
            },
        )
    assert reply.status_code == 400 and reply.json()["code"] == "record_required"
    assert await live_server.store.log_size() == before
    with sqlite3.connect(live_server.db_path) as conn:
        assert conn.execute(
            "SELECT count(*) FROM deliveries WHERE message_id = 'norecord'"
        ).fetchone() == (0,)


async def test_record_not_accepted_is_retried(connected_pair, live_server) -> None:
    washington, _ = connected_pair
    async with washington.keystore.transaction() as state:
        queue_record(
            state,
            kind="contact_added",
            side="local",
            now_ms=1,
            sender=state.handle,
            recipients=[],
            detail={"action": "test"},
        )
        dead = ServerApi("http://127.0.0.1:9")  # nothing listens on the discard port
        try:
            warnings = await flush_records(dead, state)
        finally:
            await dead.close()
        assert len(state.pending_records) == 1 and "not on the record" in warnings[0]
    assert await washington.flush_records() == []
    assert washington.keystore.load().pending_records == []


async def test_fork_and_rollback_detected(connected_pair, live_server) -> None:
    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "first")
    state = washington.keystore.load()
    assert state.last_head is not None and state.archive is not None
    log_key = live_server.config.archive.log_key
    # A head at the same size with another root, signed by the log key: a fork.
    forged = sign_tree_head(
        TreeHead(
            log_id=state.archive.log_id,
            size=state.last_head.size + 1,
            root=bytes(32),
            timestamp_ms=1,
        ),
        log_key,
    )
    async with washington.keystore.transaction() as tx:
        tx.last_head.size = state.last_head.size + 1
        tx.last_head.root = b64e(bytes(32))
        tx.last_head.head = b64e(forged.head_bytes)
    entry = await washington.send_text(ottawa.handle, "second")
    assert entry.warnings and entry.warnings[0].startswith("log_inconsistent")
    # A head far beyond the log's real size: the log cannot prove it, i.e. rolled back.
    async with washington.keystore.transaction() as tx:
        tx.last_head.size = 10_000
    entry = await washington.send_text(ottawa.handle, "third")
    assert entry.warnings and entry.warnings[0].startswith("log_inconsistent")


async def test_banner_policy_pinned(connected_pair, live_server) -> None:
    washington, _ = connected_pair
    archive = washington.keystore.load().archive
    assert archive is not None
    assert archive.law == "Presidential Records Act, 44 U.S.C. 2209"
    assert "Presidential Records Act" in archive.banner
    assert archive.custodian_key == b64e(CUSTODIAN.public.to_bytes())


async def test_records_decrypt_only_with_custodian_key(connected_pair, live_server) -> None:
    from hotline.crypto.hpke import CustodianPrivateKey
    from hotline.wire.errors import DecryptionFailed

    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "for the custodian only")
    with sqlite3.connect(live_server.db_path) as conn:
        leaf = bytes(
            conn.execute("SELECT leaf FROM log_entries ORDER BY idx DESC LIMIT 1").fetchone()[0]
        )
    with pytest.raises(DecryptionFailed):
        open_record(CustodianPrivateKey.generate(), leaf)
    assert open_record(CUSTODIAN, leaf).record_id
    assert build_record  # the builder is public API for call records later


async def test_both_sides_see_who_records_the_conversation(connected_pair) -> None:
    washington, ottawa = connected_pair
    for me, them in ((washington, ottawa), (ottawa, washington)):
        banners = me.archive_banners(them.handle)
        assert banners and all("Presidential Records Act" in b for b in banners)


async def test_many_pending_records_are_uploaded_in_batches_under_the_cap(
    connected_pair,
) -> None:
    washington, _ = connected_pair
    async with washington.keystore.transaction() as state:
        for n in range(250):
            queue_record(
                state,
                kind="contact_added",
                side="local",
                now_ms=n,
                sender=state.handle,
                recipients=[],
                body="x" * 500,
            )
    assert await washington.flush_records() == []
    assert washington.keystore.load().pending_records == []


async def test_receipts_carry_consistency_proofs(connected_pair, monkeypatch) -> None:
    """A device that says which tree size it verified gets the consistency proof in the
    receipt: no extra round trip per record (and the proof is still checked)."""
    washington, ottawa = connected_pair
    asked: list[str] = []
    original = ServerApi.call

    async def counting(self, method, path, *args, **kwargs):
        if path == "/v1/records/consistency":
            asked.append(path)
        return await original(self, method, path, *args, **kwargs)

    monkeypatch.setattr(ServerApi, "call", counting)
    for n in range(3):
        entry = await washington.send_text(ottawa.handle, f"proof {n}")
        assert entry.warnings == [] and entry.record_index >= 0
        await ottawa.sync()
        await ottawa.send_text(washington.handle, f"reply {n}")
        await washington.sync()
    assert asked == []


async def test_receipt_heads_are_stored_with_their_appends(connected_pair, live_server) -> None:
    """The head a receipt carries is signed and stored in the appending transaction (no write
    of its own): it is the stored head of that size, and every stored head signs the root
    the log really has at its size."""
    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "Signed with the append.")
    await ottawa.sync()  # ottawa's own record and receipt: appends through /v1/records
    stored = {h.size: h for h in await live_server.store.tree_heads()}
    for client in (washington, ottawa):
        seen = client.keystore.load().last_head
        assert seen is not None and b64d(seen.head) == stored[seen.size].head
    size = await live_server.store.log_size()
    assert max(stored) == size
    tree = MerkleTree(await live_server.store.leaf_hashes(0, size))
    key = live_server.config.archive.log_key.public_key()
    for head in stored.values():
        signed = verify_tree_head(SignedTreeHead(head.head, head.signature), key)
        assert signed.size == head.size and signed.root == tree.root(head.size)
