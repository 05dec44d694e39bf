"""Home servers as real processes (``hotline server``), for crash and fault tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


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
    ) -> None:
        self.data_dir, self.domain, self.custodian_pub = data_dir, domain, custodian_pub
        self.database_url = database_url
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
        env = {**os.environ, "HOTLINE_LOG_LEVEL": "warning"}
        if self.database_url:
            env["HOTLINE_DATABASE_URL"] = self.database_url
        self.proc = subprocess.Popen(
            hotline_command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )
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
