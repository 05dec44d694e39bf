"""The ``hotline`` console script (``cli.main.main``) registers only the command named on the
command line, from ``cli.main``'s name -> module table; the tests and help pages use the full
``app``. A command module left out of the table would vanish from ``hotline`` alone: these
tests compare the lazy entry point with the full app, and the command modules with the table.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
import typer
from cli_helpers import all_commands

import hotline.cli
from hotline.cli import main as cli_main
from hotline.cli.main import app, build_app

FULL = {path for path, _ in all_commands(app) if path}
NAMES = sorted({path[0] for path in FULL})


def test_the_full_app_has_commands_and_groups() -> None:
    assert {"send", "server", "contacts", "demo"} <= set(NAMES)
    assert ("server", "peer", "add") in FULL  # a group's nested group


@pytest.mark.parametrize("name", NAMES)
def test_the_entry_point_registers_each_command_alone_with_all_its_subcommands(
    name: str,
) -> None:
    """What ``hotline NAME ...`` builds: that command and its whole tree, nothing else."""
    assert cli_main._named([name, "--help"]) == name
    lazy = {path for path, _ in all_commands(build_app(name)) if path}
    assert lazy == {path for path in FULL if path[0] == name}


def test_an_unknown_command_gets_every_command_for_its_error() -> None:
    assert cli_main._named(["no-such-command"]) is None
    assert {path for path, _ in all_commands(build_app(None)) if path} == FULL


def _command_modules() -> Iterator[ModuleType]:
    for info in pkgutil.iter_modules(hotline.cli.__path__):
        if info.name.endswith("_cmds"):
            yield importlib.import_module(f"hotline.cli.{info.name}")


def _reachable(typer_app: typer.Typer) -> Iterator[Any]:
    """Every Typer app and command callback (a group's own too) registered under it."""
    yield typer_app
    if typer_app.registered_callback is not None:
        yield typer_app.registered_callback.callback
    for command in typer_app.registered_commands:
        yield command.callback
    for group in typer_app.registered_groups:
        assert group.typer_instance is not None
        yield from _reachable(group.typer_instance)


def test_every_command_group_and_command_of_the_modules_is_in_the_table() -> None:
    """Each Typer app a ``*_cmds`` module defines, and each command it wraps with
    ``run_async`` at module level, is reachable from ``hotline``'s table."""
    reachable = {id(thing) for thing in _reachable(app)}
    defined: list[str] = []
    for module in _command_modules():
        for attribute, value in vars(module).items():
            wrapped = getattr(value, "__wrapped__", None)
            command = inspect.iscoroutinefunction(wrapped) and value.__module__ == module.__name__
            if isinstance(value, typer.Typer) or command:
                defined.append(f"{module.__name__}.{attribute}")
                assert id(value) in reachable, f"{module.__name__}.{attribute} is not in main.py"
    assert "hotline.cli.client_cmds.send" in defined and "hotline.cli.call_cmds.call" in defined
