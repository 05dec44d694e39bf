"""The custodian's other commands: init, verify, search, pending, the action log, holds."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import PASSPHRASE, World
from hotline.cli.main import app
from hotline.custodian.actions import actions_path
from hotline.custodian.pending import pending_deliveries
from hotline.custodian.source import PASSPHRASE_ENV, open_log
from hotline.records.custodian_keys import read_keys, read_public

runner = CliRunner()
ENV = {"COLUMNS": "250"}


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["archive", *args], env=ENV)
    return result.exit_code, result.output


def test_init_writes_keys_and_prints_next_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, PASSPHRASE)
    code, output = _run("init", "--out", str(tmp_path / "keys"))
    assert code == 0, output
    public = read_public(tmp_path / "keys/custodian.pub")
    assert public.fingerprint in output
    assert "hotline server --custodian-key" in output
    assert read_keys(tmp_path / "keys/custodian.key", PASSPHRASE).public.fingerprint == (
        public.fingerprint
    )
    code, output = _run("init", "--out", str(tmp_path / "keys"))
    assert code == 1
    assert "refusing to overwrite" in output


def test_verify_cli(world: World) -> None:
    code, output = _run("verify", "--data-dir", str(world.data_dir))
    assert code == 0, output
    assert "log verified" in output
    code, output = _run("verify", "--data-dir", str(world.data_dir), "--log-key", world.log_key)
    assert code == 0, output
    world.sql("DELETE FROM log_entries WHERE idx = 6")
    code, output = _run("verify", "--data-dir", str(world.data_dir))
    assert code == 1
    assert "log_index_gap" in output
    assert "First failing tree head" in output


def test_verify_without_log_key_says_how(tmp_path: Path, world: World) -> None:
    (world.data_dir / "log.key").unlink()
    code, output = _run("verify", "--data-dir", str(world.data_dir))
    assert code == 1
    assert "log_key_missing" in output
    assert not (world.data_dir / "log.key").exists()  # never created by the custodian


def test_search_by_text_and_participant(world: World, custodian_key: Path) -> None:
    base = ["search", "--key", str(custodian_key), "--data-dir", str(world.data_dir)]
    code, output = _run(*base, "--text", "replies number 3", "--kind", "message")
    assert code == 0, output
    assert "Ottawa replies, number 3" in output
    assert "2 of" in output  # sent and received records
    code, output = _run(
        *base, "--participant", world.ottawa, "--kind", "message", "--text", "Washington"
    )
    assert code == 0, output
    assert "10 of" in output
    code, output = _run(*base, "--since", "2999-01-01T00:00:00+00:00")
    assert code == 0
    assert "0 of" in output


def test_wrong_passphrase_is_a_clean_error(
    world: World, custodian_key: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "not the passphrase")
    code, output = _run("search", "--key", str(custodian_key), "--data-dir", str(world.data_dir))
    assert code == 1
    assert "wrong_passphrase" in output


async def test_pending_lists_undelivered_with_hours_left(world: World) -> None:
    store = await open_log(world.data_dir)
    try:
        now = time.time()
        items = await pending_deliveries(store, now)
        assert [i.kind for i in items] and all(i.sender == world.washington for i in items)
        assert all(470 < i.hours_left <= 480 for i in items)
        late = await pending_deliveries(store, now + 21 * 86400)
        assert all(i.overdue for i in late)
    finally:
        await store.close()


def test_pending_cli_exit_codes(world: World) -> None:
    code, output = _run("pending", "--data-dir", str(world.data_dir))
    assert code == 0, output
    assert "pending capture, 0 past" in output
    world.sql("UPDATE deliveries SET created_at = created_at - 21 * 86400")
    code, output = _run("pending", "--data-dir", str(world.data_dir))
    assert code == 2
    assert "past the 20-day deadline" in output


def test_action_log_records_and_detects_changes(world: World, custodian_key: Path) -> None:
    base = ["--key", str(custodian_key)]
    assert _run("search", *base, "--data-dir", str(world.data_dir), "--text", "x")[0] == 0
    code, output = _run(
        "hold",
        "add",
        "inquiry-1",
        *base,
        "--conversation",
        world.conversation,
        "--reason",
        "congressional inquiry",
    )
    assert code == 0, output
    assert _run("retention", "set", *base, "--years", "75")[0] == 0
    code, output = _run("hold", "list", *base)
    assert "inquiry-1" in output
    code, output = _run("actions", *base)
    assert code == 0, output
    assert "3 actions" in output
    assert "hold_added" in output and "retention_set" in output
    path = actions_path(custodian_key)
    lines = path.read_bytes().splitlines()
    lines[1] = lines[1].replace(b"A", b"B", 1)
    path.write_bytes(b"\n".join(lines) + b"\n")
    code, output = _run("actions", *base)
    assert code == 1
    assert "action_log_broken" in output and "line 2" in output
    # Removing a line is caught too.
    path.write_bytes(b"\n".join([lines[0], lines[2]]) + b"\n")
    code, output = _run("actions", *base)
    assert code == 1
    assert "line 2 does not follow line 1" in output
    assert _run("hold", "add", "x", *base, "--conversation", "c", "--reason", "r")[0] == 1
