"""``hotline policy init/sign`` and the server's policy files: sign, keep, refuse downgrades."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from cli_helpers import hotline_argv, hotline_env

from hotline.policy.document import open_policy
from hotline.policy.keys import read_org_public
from hotline.server.admin import policy_settings
from hotline.wire.codec import Signed, decode
from hotline.wire.errors import BadSignature, MalformedInput, PolicyDowngrade

TOML = 'organisation = "Testland"\nversion = {v}\nissued_at = 1\n[features]\nvoice_calls = false\n'


def policy_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = hotline_env() | {"HOTLINE_ORG_PASSPHRASE": "organisation passphrase"}
    return subprocess.run(
        hotline_argv("policy", *args),
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )


def test_init_sign_and_server_keeps_only_newer(tmp_path: Path) -> None:
    assert policy_cli("init", "--out", str(tmp_path / "org")).returncode == 0
    assert oct((tmp_path / "org" / "org.key").stat().st_mode)[-3:] == "600"
    for v in (1, 2):
        (tmp_path / f"p{v}.toml").write_text(TOML.format(v=v))
        result = policy_cli(
            "sign",
            str(tmp_path / f"p{v}.toml"),
            "--key",
            str(tmp_path / "org" / "org.key"),
            "--out",
            str(tmp_path / f"p{v}"),
        )
        assert result.returncode == 0, result.stderr
    org = read_org_public(tmp_path / "org" / "org.pub")
    signed = decode((tmp_path / "p2").read_bytes().strip(), Signed)
    assert open_policy(signed, org).version == 2
    data = tmp_path / "server"
    got, key = policy_settings(data, tmp_path / "p2", tmp_path / "org" / "org.pub")
    assert got == signed and key == org
    with pytest.raises(PolicyDowngrade):
        policy_settings(data, tmp_path / "p1", None)
    assert policy_settings(data, None, None)[0] == signed  # the newer one stays in force


def test_invalid_policy_and_wrong_key_refused(tmp_path: Path) -> None:
    assert policy_cli("init", "--out", str(tmp_path / "a")).returncode == 0
    assert policy_cli("init", "--out", str(tmp_path / "b")).returncode == 0
    (tmp_path / "bad.toml").write_text('organisation = "X"\nversion = 0\nissued_at = 1\n')
    bad = policy_cli(
        "sign",
        str(tmp_path / "bad.toml"),
        "--key",
        str(tmp_path / "a/org.key"),
        "--out",
        str(tmp_path / "bad"),
    )
    assert bad.returncode != 0 and not (tmp_path / "bad").exists()
    (tmp_path / "ok.toml").write_text(TOML.format(v=1))
    assert (
        policy_cli(
            "sign",
            str(tmp_path / "ok.toml"),
            "--key",
            str(tmp_path / "a/org.key"),
            "--out",
            str(tmp_path / "ok"),
        ).returncode
        == 0
    )
    with pytest.raises(BadSignature):
        policy_settings(tmp_path / "server", tmp_path / "ok", tmp_path / "b/org.pub")
    (tmp_path / "junk").write_text("junk")
    with pytest.raises(MalformedInput):
        policy_settings(tmp_path / "server2", tmp_path / "junk", tmp_path / "a/org.pub")
    assert os.environ.get("HOTLINE_ORG_PASSPHRASE") is None


def test_refused_policy_writes_nothing(tmp_path: Path) -> None:
    assert policy_cli("init", "--out", str(tmp_path / "a")).returncode == 0
    assert policy_cli("init", "--out", str(tmp_path / "b")).returncode == 0
    (tmp_path / "ok.toml").write_text(TOML.format(v=1))
    assert (
        policy_cli(
            "sign",
            str(tmp_path / "ok.toml"),
            "--key",
            str(tmp_path / "a/org.key"),
            "--out",
            str(tmp_path / "ok"),
        ).returncode
        == 0
    )
    with pytest.raises(BadSignature):
        policy_settings(tmp_path / "server", tmp_path / "ok", tmp_path / "b/org.pub")
    assert not (tmp_path / "server").exists() or list((tmp_path / "server").iterdir()) == []
