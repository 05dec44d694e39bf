"""What every command shares: where the keystore is, the passphrase, and error reporting."""

from __future__ import annotations

import asyncio
import functools
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from hotline.wire.errors import HotlineError, PassphraseRequired

P = ParamSpec("P")
T = TypeVar("T")

console = Console()
err_console = Console(stderr=True)

#: what to do next, per error code, shown under the error
NEXT_STEP = {
    "keystore_missing": "Register this device first: hotline register --help",
    "wrong_passphrase": "Check HOTLINE_PASSPHRASE (or the passphrase you typed).",
    "server_unavailable": "Start the home server (hotline server) or check the URL.",
    "not_a_contact": "Exchange cards first: hotline card, then hotline contacts add CARD.",
    "identity_changed": "Compare safety numbers: hotline verify CONTACT, then --confirm.",
    "enrolment_invalid": "Ask the server admin for a new token: hotline server enrol NAME.",
    "invite_invalid": "Ask the card's owner for a fresh card.",
    "card_expired": "Ask the card's owner for a fresh card.",
    "unknown_contact": "See your contacts with: hotline contacts "
    "(a handle, or a unique prefix of a handle or name).",
}


def home_dir() -> Path:
    """The device's keystore folder: ``HOTLINE_HOME``, default ``~/.hotline``."""
    return Path(os.environ.get("HOTLINE_HOME", str(Path.home() / ".hotline")))


def passphrase(confirm: bool = False) -> str:
    """``HOTLINE_PASSPHRASE`` if set, else asked on the terminal (never echoed)."""
    value = os.environ.get("HOTLINE_PASSPHRASE")
    if value:
        return value
    if not sys.stdin.isatty():
        raise PassphraseRequired(
            "no terminal to ask for the keystore passphrase; set HOTLINE_PASSPHRASE"
        )
    first = getpass.getpass("Keystore passphrase: ")
    if confirm and getpass.getpass("Repeat passphrase: ") != first:
        raise typer.BadParameter("the two passphrases differ")
    if len(first) < 8:
        raise typer.BadParameter("use a passphrase of at least 8 characters")
    return first


def run_async(func: Callable[P, Awaitable[T]]) -> Callable[P, T]:
    """Run an async command, turning Hotline errors into a message and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return asyncio.run(func(*args, **kwargs))  # type: ignore[arg-type]
        except HotlineError as exc:
            # escape: "[code]" would otherwise be eaten as Rich markup, and the detail may
            # quote peer- or user-supplied text
            err_console.print(
                f"[bold red]error[/] {escape(f'[{exc.code}]')} {escape(exc.detail)}",
                highlight=False,
            )
            hint = NEXT_STEP.get(exc.code)
            if hint:
                err_console.print(f"[dim]{hint}[/]")
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper
