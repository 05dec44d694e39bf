"""The ``hotline`` command.

Each command group lives in its own module; the server, archive and call modules pull in
uvicorn, SQLAlchemy with Alembic, the custodian tools and aiortc, which together take most of a
second and a half to import. :func:`main` (the console script) therefore registers only the
command named on the command line (everything for ``--help``, no command or an unknown one),
so ``hotline send`` starts in a fraction of that. ``app`` — every command — is built on first
access, for help pages and tests. A command module must be entered in ``_GROUPS`` or
``_COMMANDS`` to exist at all; ``tests/cli/test_entry_point.py`` checks that every one is, and
that ``hotline NAME`` registers the same tree as ``app``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence
from typing import Any

import typer

__all__ = ["build_app", "main"]  # and ``app``, built on first access (__getattr__)

_HELP = (
    "Hotline: an end-to-end encrypted, records-compliant direct line between leaders.\n\n"
    "Device commands use HOTLINE_HOME (keystore folder) and HOTLINE_PASSPHRASE (or ask)."
)

#: command groups: name -> (module, attribute of its Typer app)
_GROUPS: dict[str, tuple[str, str]] = {
    "server": ("hotline.cli.server_cmds", "server_app"),
    "policy": ("hotline.cli.policy_cmds", "policy_app"),
    "contacts": ("hotline.cli.client_cmds", "contacts_app"),
    "devices": ("hotline.cli.device_cmds", "devices_app"),
    "archive": ("hotline.cli.archive_cmds", "archive_app"),
    "group": ("hotline.cli.group_cmds", "group_app"),
    "aides": ("hotline.cli.aides_cmds", "aides_app"),
}
#: single commands: name -> (module, function)
_COMMANDS: dict[str, tuple[str, str]] = {
    "register": ("hotline.cli.client_cmds", "register"),
    "card": ("hotline.cli.client_cmds", "card"),
    "send": ("hotline.cli.client_cmds", "send"),
    "listen": ("hotline.cli.client_cmds", "listen"),
    "sync": ("hotline.cli.client_cmds", "sync"),
    "history": ("hotline.cli.client_cmds", "history"),
    "verify": ("hotline.cli.client_cmds", "verify"),
    "call": ("hotline.cli.call_cmds", "call"),
    "answer": ("hotline.cli.call_cmds", "answer"),
}


def demo() -> None:
    """Run the end-to-end demo: a server, Washington and Ottawa, cards, messages."""
    from hotline.cli.demo import run_demo

    raise typer.Exit(run_demo())


def _root() -> None:
    pass


def _load(module: str, name: str) -> Any:
    return getattr(importlib.import_module(module), name)


def build_app(only: str | None = None) -> typer.Typer:
    """The ``hotline`` app with every command, or only the command or group ``only``."""
    root = typer.Typer(help=_HELP, no_args_is_help=True, pretty_exceptions_enable=False)
    # A callback keeps ``hotline <command> ...`` a group when only one command is registered
    # (typer would otherwise make that command the whole program).
    root.callback()(_root)
    for name, (module, attribute) in _GROUPS.items():
        if only in (None, name):
            root.add_typer(_load(module, attribute), name=name)
    for name, (module, function) in _COMMANDS.items():
        if only in (None, name):
            command: Callable[..., Any] = _load(module, function)
            root.command(name)(command)
    if only in (None, "demo"):
        root.command("demo")(demo)
    return root


def _named(argv: Sequence[str]) -> str | None:
    """The command the arguments name, if they start with a known one."""
    first = argv[0] if argv else None
    known = first in _GROUPS or first in _COMMANDS or first == "demo"
    return first if known else None


def main(argv: Sequence[str] | None = None) -> None:
    """Console entry point: registers only the named command (see the module docstring)."""
    args = list(sys.argv[1:] if argv is None else argv)
    build_app(_named(args))(args, prog_name="hotline")


def __getattr__(name: str) -> Any:  # PEP 562: ``app`` is built when first imported
    if name == "app":
        built = build_app()
        globals()["app"] = built
        return built
    raise AttributeError(name)


if __name__ == "__main__":
    main()
