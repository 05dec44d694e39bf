"""Every command and subcommand answers ``--help`` with exit 0 and its description.

The commands are enumerated from the Typer app, so a command added later is covered (and one
added without a docstring fails here).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import all_commands, hotline_env
from typer.testing import CliRunner

from hotline.cli.main import app

COMMANDS = all_commands(app)


def _squash(text: str) -> str:
    """Words only: Rich wraps and boxes the help text."""
    return " ".join(text.replace("│", " ").split())


def test_the_walk_finds_the_readme_commands() -> None:
    paths = {path for path, _ in COMMANDS}
    for expected in [
        ("register",),
        ("card",),
        ("send",),
        ("listen",),
        ("sync",),
        ("history",),
        ("verify",),
        ("demo",),
        ("server",),
        ("server", "enrol"),
        ("contacts",),
        ("contacts", "add"),
        ("contacts", "remove"),
    ]:
        assert expected in paths


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "hotline" for p, _ in COMMANDS]
)
def test_help_exits_0_and_describes_the_command(path: tuple[str, ...], command: Any) -> None:
    description = (command.help or "").strip()
    assert description, f"'hotline {' '.join(path)}' has no description (add a docstring)"
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    first_line = description.splitlines()[0]
    assert _squash(first_line) in _squash(result.output), result.output


@pytest.mark.parametrize(
    "argv",
    [
        [sys.executable, "-m", "hotline.cli.main", "--help"],
        [str(Path(sys.executable).parent / "hotline"), "--help"],
    ],
    ids=["python -m hotline.cli.main", "hotline entry point"],
)
def test_real_process_help(argv: list[str]) -> None:
    result = subprocess.run(
        argv, env=hotline_env(), capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "end-to-end encrypted" in result.stdout
    for name in ["register", "card", "send", "listen", "contacts", "server", "demo"]:
        assert name in result.stdout
