"""Home servers as real processes (``hotline server``), for crash, fault and scale-out tests:
the process itself, a scratch PostgreSQL database, and registering a principal on it."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from harness import FAST_SCRYPT, PASSPHRASE

from hotline.client.device import HotlineClient
from hotline.server.admin import issue_enrolment
from hotline.store import open_store

ADMIN_URL = os.environ.get(
    "HOTLINE_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hotline_command(*args: str) -> list[str]:
    return [str(Path(sys.executable).with_name("hotline")), *args]


class ServerProcess:
    """``hotline server`` on a fixed loopback port; SIGKILL it and start it again."""

    def __init__(
        self,
        data_dir: Path,
        domain: str,
        custodian_pub: Path | None = None,
        database_url: str | None = None,
        log_path: Path | None = None,
    ) -> None:
        self.data_dir, self.domain, self.custodian_pub = data_dir, domain, custodian_pub
        self.database_url = database_url
        #: with a path, the server logs at debug level (everything) into that file
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            "server",
            "--data-dir",
            str(self.data_dir),
            "--domain",
            self.domain,
            "--port",
            str(self.port),
        ]
        if self.custodian_pub is not None:
            args += ["--custodian-key", str(self.custodian_pub)]
        level = "debug" if self.log_path is not None else "warning"
        env = {**os.environ, "HOTLINE_LOG_LEVEL": level}
        if self.database_url:
            env["HOTLINE_DATABASE_URL"] = self.database_url
        out = self.log_path.open("ab") if self.log_path is not None else subprocess.DEVNULL
        try:
            self.proc = subprocess.Popen(
                hotline_command(*args), stdout=out, stderr=subprocess.STDOUT, env=env
            )
        finally:
            if self.log_path is not None:
                out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.url + "/health", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.kill()
        raise AssertionError(f"server {self.domain} did not start")

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def cli(self, *args: str) -> str:
        """Run an operator command against this server's data dir."""
        out = subprocess.run(
            hotline_command("server", *args, "--data-dir", str(self.data_dir)),
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()


@asynccontextmanager
async def scratch_postgres(prefix: str = "hotline_test") -> AsyncIterator[str]:
    """A new empty PostgreSQL database (its SQLAlchemy URL), dropped afterwards.

    Skips without PostgreSQL, except under ``CI=true``, where that is a failure.
    """
    try:
        admin = await asyncpg.connect(
            ADMIN_URL.replace("postgresql+asyncpg://", "postgresql://"), timeout=5
        )
    except (OSError, asyncpg.PostgresError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true but PostgreSQL is unavailable: {exc}")
        pytest.skip(f"PostgreSQL unavailable: {exc}")
    name = f"{prefix}_{secrets.token_hex(4)}"
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def register_principal(
    database_url: str, server_url: str, handle: str, home: Path
) -> HotlineClient:
    """Enrol ``handle`` directly in the server's database and register a device for it."""
    store = await open_store(database_url)
    try:
        token = await issue_enrolment(store, handle, time.time())
    finally:
        await store.close()
    return await HotlineClient.register(
        home,
        PASSPHRASE,
        server_url=server_url,
        enrolment_token=token,
        handle=handle,
        display_name=handle.partition("@")[0],
        scrypt=FAST_SCRYPT,
    )
