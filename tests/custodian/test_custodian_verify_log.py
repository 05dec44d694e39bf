"""``verify_log`` on a real log: passes untouched, names every kind of tampering."""

from __future__ import annotations

from conftest import World
from hotline.custodian.errors import (
    LeafHashMismatch,
    LogIndexGap,
    TreeHeadBeyondLog,
    TreeHeadRootMismatch,
)
from hotline.custodian.source import log_public_key, open_log
from hotline.custodian.verify_log import LogReport, verify_log


async def _verify(world: World, batch: int = 7) -> LogReport:
    store = await open_log(world.data_dir)
    try:
        return await verify_log(store, log_public_key(world.data_dir, None), batch=batch)
    finally:
        await store.close()


async def test_untouched_log_verifies(world: World) -> None:
    report = await _verify(world)
    assert report.ok, report.problems
    assert report.log_size > 20
    assert report.entries_checked == report.log_size
    assert report.heads_checked > 10
    assert report.latest_head_size <= report.log_size
    assert report.log_id == "washington.test/records"


async def test_flipped_byte_in_leaf_is_named(world: World) -> None:
    (leaf,) = world.sql("SELECT leaf FROM log_entries WHERE idx = 5")[0]
    assert isinstance(leaf, bytes)
    changed = bytearray(leaf)
    changed[60] ^= 0x01
    world.sql("UPDATE log_entries SET leaf = ? WHERE idx = 5", bytes(changed))
    report = await _verify(world)
    assert not report.ok
    first = report.problems[0]
    assert isinstance(first, LeafHashMismatch)
    assert first.extra["index"] == 5
    failing = report.first_failing_head
    assert isinstance(failing, TreeHeadRootMismatch)
    assert failing.extra["first_leaf"] <= 5 < failing.extra["end_leaf"]


async def test_deleted_entry_is_a_gap_and_fails_the_head(world: World) -> None:
    world.sql("DELETE FROM log_entries WHERE idx = 8")
    report = await _verify(world)
    gaps = [p for p in report.problems if isinstance(p, LogIndexGap)]
    assert gaps and gaps[0].extra == {"expected": 8, "got": 9}
    failing = report.first_failing_head
    assert isinstance(failing, TreeHeadRootMismatch)
    assert failing.extra["first_leaf"] <= 8 < failing.extra["end_leaf"]


async def test_truncated_log_is_behind_its_heads(world: World) -> None:
    (size,) = world.sql("SELECT size FROM log_state")[0]
    assert isinstance(size, int)
    world.sql("DELETE FROM log_entries WHERE idx >= ?", size - 2)
    world.sql("UPDATE log_state SET size = ?", size - 2)
    report = await _verify(world)
    assert isinstance(report.first_failing_head, TreeHeadBeyondLog)


async def test_swapped_entries_fail_the_first_head_covering_them(world: World) -> None:
    rows = world.sql("SELECT idx, record_id, leaf, leaf_hash FROM log_entries WHERE idx IN (3, 11)")
    (_, rid3, leaf3, hash3), (_, rid11, leaf11, hash11) = rows
    world.sql("UPDATE log_entries SET record_id = 'tmp' WHERE idx = 3")
    world.sql(
        "UPDATE log_entries SET record_id=?, leaf=?, leaf_hash=? WHERE idx=11", rid3, leaf3, hash3
    )
    world.sql(
        "UPDATE log_entries SET record_id=?, leaf=?, leaf_hash=? WHERE idx=3", rid11, leaf11, hash11
    )
    report = await _verify(world)
    assert all(not isinstance(p, LeafHashMismatch) for p in report.problems)
    failing = report.first_failing_head
    assert isinstance(failing, TreeHeadRootMismatch)
    assert failing.extra["first_leaf"] <= 3 < failing.extra["end_leaf"]
    assert "leaves" in failing.detail


async def test_wrong_log_key_rejects_every_head(world: World) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    store = await open_log(world.data_dir)
    try:
        report = await verify_log(store, Ed25519PrivateKey.generate().public_key())
    finally:
        await store.close()
    assert not report.ok
    assert {p.code for p in report.problems} == {"tree_head_invalid"}
