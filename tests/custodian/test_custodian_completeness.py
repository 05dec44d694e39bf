"""Gaps, transcript digests equal to the clients', and attestations between custodians."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness import CUSTODIAN, FAST_SCRYPT
from typer.testing import CliRunner

from conftest import PASSPHRASE, World
from hotline.cli.main import app
from hotline.custodian.completeness import CompletenessReport, collect_chains
from hotline.custodian.source import iter_records, open_log
from hotline.records.custodian_keys import CustodianKeys, write_keys

runner = CliRunner()
ENV = {"COLUMNS": "250"}


async def _chains(world: World) -> CompletenessReport:
    store = await open_log(world.data_dir)
    try:
        return await collect_chains(store, CUSTODIAN, batch=6)
    finally:
        await store.close()


async def _delete_message(world: World, text: str) -> None:
    """Delete every record (sent and received) of the message with ``text``."""
    store = await open_log(world.data_dir)
    try:
        doomed = [
            o.entry.index
            async for o in iter_records(store, CUSTODIAN)
            if o.record is not None and o.record.kind == "message" and o.record.body == text
        ]
    finally:
        await store.close()
    assert len(doomed) == 2
    for index in doomed:
        world.sql("DELETE FROM log_entries WHERE idx = ?", index)


async def test_no_gaps_and_digest_equals_the_clients(world: World) -> None:
    report = await _chains(world)
    assert report.ok, report.gaps
    chains = report.conversations[world.conversation]
    assert chains.messages == 10
    assert len(chains.streams()) == 2
    assert chains.digest == world.digest_washington == world.digest_ottawa


async def test_deleted_message_is_reported(world: World) -> None:
    await _delete_message(world, world.texts[2])  # Washington's message number 2
    report = await _chains(world)
    assert [(g.kind, g.stream.split("/")[0]) for g in report.gaps] == [
        ("missing", world.washington)
    ]
    assert "message 2 has no record" in report.gaps[0].detail


async def test_one_sided_capture_is_reported(world: World) -> None:
    store = await open_log(world.data_dir)
    try:
        received = [
            o.entry.index
            async for o in iter_records(store, CUSTODIAN)
            if o.record is not None
            and o.record.side == "received"
            and o.record.body == world.texts[5]
        ]
    finally:
        await store.close()
    world.sql("DELETE FROM log_entries WHERE idx = ?", received[0])
    report = await _chains(world)
    assert [g.kind for g in report.gaps] == ["one_sided"]
    assert f"no received record by {world.washington}" in report.gaps[0].detail


def test_gaps_cli_exit_codes(world: World, custodian_key: Path) -> None:
    args = ["archive", "gaps", "--key", str(custodian_key), "--data-dir", str(world.data_dir)]
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 0, result.output
    assert world.digest_washington in result.output
    asyncio.run(_delete_message(world, world.texts[4]))
    result = runner.invoke(app, args, env=ENV)
    assert result.exit_code == 1
    assert "records_gap" in result.output


def test_attestation_round_trip_between_two_custodians(
    world: World, custodian_key: Path, tmp_path: Path
) -> None:
    # The other government's custodian: its own signing key, reading an archive of the
    # same conversation (here a copy of the same log).
    theirs = tmp_path / "ottawa-custodian"
    write_keys(
        theirs,
        CustodianKeys(CUSTODIAN, Ed25519PrivateKey.generate()),
        PASSPHRASE,
        scrypt=FAST_SCRYPT,
    )
    their_data = tmp_path / "ottawa-data"
    shutil.copytree(world.data_dir, their_data)
    statement = tmp_path / "attestation.json"
    result = runner.invoke(
        app,
        [
            "archive",
            "attest",
            world.conversation,
            "--key",
            str(theirs / "custodian.key"),
            "--data-dir",
            str(their_data),
            "--out",
            str(statement),
        ],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    assert b"Ottawa replies" not in statement.read_bytes()  # no content
    check = [
        "archive",
        "check-attestation",
        str(statement),
        "--key",
        str(custodian_key),
        "--data-dir",
        str(world.data_dir),
    ]
    ok = runner.invoke(app, [*check, "--their-custodian", str(theirs / "custodian.pub")], env=ENV)
    assert ok.exit_code == 0, ok.output
    assert "identical transcript" in ok.output
    # A statement checked under the wrong custodian's key is refused.
    wrong = runner.invoke(
        app, [*check, "--their-custodian", str(custodian_key.parent / "custodian.pub")], env=ENV
    )
    assert wrong.exit_code == 1
    assert "bad_signature" in wrong.output
    # Our archive lost Ottawa's last message: the differing stream is named.
    asyncio.run(_delete_message(world, world.texts[-1]))
    differs = runner.invoke(
        app, [*check, "--their-custodian", str(theirs / "custodian.pub")], env=ENV
    )
    assert differs.exit_code == 1
    assert "attestation_mismatch" in differs.output
    assert f"{world.ottawa}/" in differs.output
    assert "theirs seq 5, ours seq 4" in differs.output
