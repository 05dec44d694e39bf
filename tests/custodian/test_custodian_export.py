"""Export a real log as a BagIt bag, verify it offline, and catch tampered copies."""

from __future__ import annotations

import json
import mailbox
import shutil
from pathlib import Path

import bagit
import pytest
from typer.testing import CliRunner

from conftest import World
from hotline.cli.main import app

runner = CliRunner()
ENV = {"COLUMNS": "250"}


def _export(world: World, key: Path, out: Path) -> None:
    result = runner.invoke(
        app,
        [
            "archive",
            "export",
            "--key",
            str(key),
            "--data-dir",
            str(world.data_dir),
            "--out",
            str(out),
        ],
        env=ENV,
    )
    assert result.exit_code == 0, result.output
    assert "bag written" in result.output


def _verify(bag: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["archive", "verify-export", str(bag), *extra], env=ENV)
    return result.exit_code, result.output


@pytest.fixture
def bag(world: World, custodian_key: Path, tmp_path: Path) -> Path:
    out = tmp_path / "bag"
    _export(world, custodian_key, out)
    return out


def test_bag_layout_and_contents(bag: Path, world: World) -> None:
    assert bagit.Bag(str(bag)).is_valid()
    info = (bag / "bag-info.txt").read_text()
    assert "Source-Organization: washington.test" in info
    assert "Hotline-Log-Id: washington.test/records" in info
    assert (bag / "manifest-sha512.txt").exists()
    records = [json.loads(line) for line in (bag / "data/records.jsonl").read_text().splitlines()]
    assert [r["index"] for r in records] == list(range(len(records)))
    bodies = {r["record"]["body"] for r in records}
    assert set(world.texts) <= bodies
    convo = list((bag / "data/conversations").glob("ottawa*.txt"))
    assert len(convo) == 1
    assert world.texts[0] in convo[0].read_text()
    box = mailbox.mbox(str(convo[0].with_suffix(".mbox")))
    messages = list(box)
    assert len(messages) == 20  # 10 texts, each recorded by sender and receiver
    assert messages[0]["Subject"] == f"Hotline: {world.conversation}"
    assert messages[0]["Message-ID"].endswith("@hotline>")
    box.close()


def test_verify_export_passes_and_warns_about_self_asserted_key(bag: Path, world: World) -> None:
    code, output = _verify(bag)
    assert code == 0, output
    assert "self-asserted" in output
    code, output = _verify(bag, "--log-key", world.log_key)
    assert code == 0, output
    assert "self-asserted" not in output


def test_verify_export_checks_records_against_seals(bag: Path, custodian_key: Path) -> None:
    code, output = _verify(bag, "--key", str(custodian_key))
    assert code == 0, output
    assert "checked against their seals" in output


def test_changed_byte_in_records_fails_the_manifest(
    bag: Path, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    path = bag / "data/records.jsonl"
    text = path.read_text()
    path.write_text(text.replace(world.texts[3], world.texts[3].replace("number", "numbre")))
    code, output = _verify(bag, "--log-key", world.log_key)
    assert code == 1
    assert "data/records.jsonl" in output
    assert "validation failed" in output
    # said in the typed error only: bagit's own raw log lines are muted
    assert not [r for r in caplog.records if r.name.startswith("bagit")]


def test_changed_entry_with_recomputed_manifests_is_named(bag: Path, world: World) -> None:
    path = bag / "data/log/entries.jsonl"
    lines = path.read_text().splitlines()
    entry = json.loads(lines[4])
    leaf = entry["leaf"]
    entry["leaf"] = leaf[:50] + ("A" if leaf[50] != "A" else "B") + leaf[51:]
    lines[4] = json.dumps(entry)
    path.write_text("\n".join(lines) + "\n")
    shutil.rmtree(bag / "data/__pycache__", ignore_errors=True)
    rebag = bagit.Bag(str(bag))
    rebag.save(manifests=True)  # a smart tamperer recomputes the manifests
    code, output = _verify(bag, "--log-key", world.log_key)
    assert code == 1
    assert "entries.jsonl line 5 (entry 4)" in output


def test_forged_head_under_given_key_fails(bag: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    from hotline.wire.encoding import b64e

    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    code, output = _verify(bag, "--log-key", b64e(other))
    assert code == 1
    assert "tree-head.json" in output
