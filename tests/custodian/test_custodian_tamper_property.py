"""Hypothesis: verification fails exactly when the stored log was changed."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import DB_FILE, World
from hotline.custodian.source import log_public_key, open_log
from hotline.custodian.verify_log import LogReport, verify_log

Tamper = tuple[str, int, int, int]

tampers = st.tuples(
    st.sampled_from(["none", "flip", "delete", "swap"]),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(0, 7),
)


def _apply(db: Path, tamper: Tamper) -> bool:
    """Apply ``tamper``; returns whether the log was really changed."""
    kind, a, b, bit = tamper
    with sqlite3.connect(db) as conn:
        (size,) = conn.execute("SELECT size FROM log_state").fetchone()
        i, j = a % size, b % size
        if kind == "flip":
            (leaf,) = conn.execute("SELECT leaf FROM log_entries WHERE idx=?", (i,)).fetchone()
            changed = bytearray(leaf)
            changed[j % len(changed)] ^= 1 << bit
            conn.execute("UPDATE log_entries SET leaf=? WHERE idx=?", (bytes(changed), i))
        elif kind == "delete":
            conn.execute("DELETE FROM log_entries WHERE idx=?", (i,))
        elif kind == "swap" and i != j:
            conn.execute("UPDATE log_entries SET idx=-1 WHERE idx=?", (i,))
            conn.execute("UPDATE log_entries SET idx=? WHERE idx=?", (i, j))
            conn.execute("UPDATE log_entries SET idx=? WHERE idx=-1", (j,))
        else:
            return False
    conn.close()
    return True


async def _verify(data_dir: Path) -> LogReport:
    store = await open_log(data_dir)
    try:
        return await verify_log(store, log_public_key(data_dir, None), batch=5)
    finally:
        await store.close()


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tamper=tampers)
def test_verification_fails_exactly_when_changed(
    archive_world: World, tmp_path_factory: object, tamper: Tamper
) -> None:
    copy = Path(tmp_path_factory.mktemp("tamper"))  # type: ignore[attr-defined]
    shutil.copytree(archive_world.data_dir, copy, dirs_exist_ok=True)
    changed = _apply(copy / DB_FILE, tamper)
    report = asyncio.run(_verify(copy))
    assert report.ok is not changed, (tamper, report.problems)
