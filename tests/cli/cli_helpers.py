"""Helpers for the command-line tests: the real ``hotline`` command run as a subprocess.

``run_hotline`` runs one command (``python -m hotline.cli.main``) with a clean environment:
``HOTLINE_LOG_LEVEL=warning``, a wide ``COLUMNS`` so Rich does not wrap, and, per call,
``HOTLINE_HOME`` / ``HOTLINE_PASSPHRASE``. ``ServerProcess`` runs ``hotline server`` on a free
127.0.0.1 port and always kills it. ``Device`` is one registered
``HOTLINE_HOME``; ``register`` enrols and registers one. ``all_commands`` walks a Typer app's
commands and subcommands.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

DOMAIN = "gov.test"
PASSPHRASE = "correct horse battery staple"
COMMAND_TIMEOUT = 30.0
CARD_RE = re.compile(r"hotline:[A-Za-z0-9_-]+")
SAFETY_RE = re.compile(r"\b(\d{5}(?: \d{5}){11})\b")


def hotline_env(home: Path | None = None, passphrase: str | None = PASSPHRASE) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("HOTLINE_") and k not in {"COLUMNS", "LINES"}
    }
    env.update(HOTLINE_LOG_LEVEL="warning", COLUMNS="200", NO_COLOR="1", TERM="dumb")
    if home is not None:
        env["HOTLINE_HOME"] = str(home)
    if passphrase is not None:
        env["HOTLINE_PASSPHRASE"] = passphrase
    return env


def hotline_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "hotline.cli.main", *args]


def run_hotline(
    *args: str,
    home: Path | None = None,
    passphrase: str | None = PASSPHRASE,
    cwd: Path | None = None,
    timeout: float = COMMAND_TIMEOUT,
) -> subprocess.CompletedProcess[str]:
    """Run ``hotline ARGS`` to completion (stdin closed, so nothing can prompt and hang)."""
    return subprocess.run(
        hotline_argv(*args),
        env=hotline_env(home, passphrase),
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    """Assert exit 0 and return stdout (the failure shows both streams)."""
    assert result.returncode == 0, (
        f"{result.args[3:]} exited {result.returncode}\n"
        f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    )
    return result.stdout


def fails(result: subprocess.CompletedProcess[str], code: str) -> str:
    """Assert exit 1 with ``[code]`` shown and no traceback; return stdout + stderr."""
    text = result.stdout + result.stderr
    assert result.returncode == 1, f"{result.args[3:]} exited {result.returncode}:\n{text}"
    assert f"[{code}]" in text, f"expected [{code}] in:\n{text}"
    assert "Traceback" not in text, text
    return text


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[str], grace: float = 5.0) -> None:
    """SIGINT, then SIGKILL after ``grace`` seconds; always reaps it (no zombie, no warning)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(grace)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


class ServerProcess:
    """``hotline server --domain D --data-dir DIR --port P`` on 127.0.0.1, as a real process."""

    def __init__(self, data_dir: Path, domain: str = DOMAIN) -> None:
        self.data_dir = data_dir
        self.domain = domain
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = data_dir.parent / f"{data_dir.name}.log"
        self.proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 20.0) -> None:
        argv = hotline_argv(
            "server",
            "--domain",
            self.domain,
            "--data-dir",
            str(self.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        )
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                argv,
                env=hotline_env(passphrase=None),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.output()}")
            if self.healthy():
                return
            time.sleep(0.05)
        raise AssertionError(f"server not healthy after {timeout}s:\n{self.output()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=1) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)

    def enrol(self, name: str) -> str:
        """``hotline server enrol NAME`` and the token it printed."""
        out = ok(run_hotline("server", "enrol", name, "--data-dir", str(self.data_dir)))
        lines = [line.strip() for line in out.splitlines()]
        header = lines.index(next(line for line in lines if line.startswith("Enrolment token")))
        token = lines[header + 1]
        assert re.fullmatch(r"[A-Za-z0-9_-]{16,}", token), out
        return token

    def __enter__(self) -> ServerProcess:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class Device:
    """One registered device: its ``HOTLINE_HOME`` and handle."""

    home: Path
    handle: str

    def run(
        self, *args: str, passphrase: str | None = PASSPHRASE
    ) -> subprocess.CompletedProcess[str]:
        return run_hotline(*args, home=self.home, passphrase=passphrase)


def register(server: ServerProcess, home: Path, name: str, display_name: str) -> Device:
    """Enrol ``name`` on ``server`` and run ``hotline register`` into ``home``."""
    handle = f"{name}@{server.domain}"
    out = ok(
        run_hotline(
            "register",
            "--server",
            server.url,
            "--handle",
            handle,
            "--token",
            server.enrol(name),
            "--name",
            display_name,
            home=home,
        )
    )
    assert f"Registered {handle}" in out
    assert (home / "keystore.key").exists()
    return Device(home, handle)


def _walk(command: Any, path: tuple[str, ...], ctx: Any) -> Iterator[tuple[tuple[str, ...], Any]]:
    yield path, command
    if hasattr(command, "list_commands"):  # a group (Typer vendors its own click classes)
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            sub_ctx = type(ctx)(sub, parent=ctx, info_name=name)
            yield from _walk(sub, (*path, name), sub_ctx)


def all_commands(app: typer.Typer) -> list[tuple[tuple[str, ...], Any]]:
    """Every command of ``app`` with its path (the root's is ``()``), groups included."""
    root = typer.main.get_command(app)
    return list(_walk(root, (), root.make_context("hotline", [], resilient_parsing=True)))
