"""``hotline devices join`` on a new device and ``hotline devices approve CODE`` on an existing
one, as real processes against a real server process."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

from cli_helpers import (
    COMMAND_TIMEOUT,
    Device,
    ServerProcess,
    fails,
    hotline_argv,
    hotline_env,
    ok,
    register,
    stop_process,
)

CODE_RE = re.compile(r"hotline-link:[^\s']+")
FINGERPRINT_RE = re.compile(r"fingerprint: (\d{5} \d{5} \d{5} \d{5})")


def read_until(proc: subprocess.Popen[str], pattern: re.Pattern[str]) -> tuple[str, str]:
    """Lines of ``proc``'s stdout up to the first match; returns (text so far, match)."""
    assert proc.stdout is not None
    seen = ""
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen += line
        found = pattern.search(seen)
        if found:
            return seen, found.group(0)
    raise AssertionError(f"{pattern.pattern} not printed:\n{seen}")


def test_join_then_approve_links_a_new_device(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as server:
        desk = register(server, tmp_path / "desk", "potus", "POTUS")
        phone_home = tmp_path / "phone"
        env = hotline_env(phone_home) | {"PYTHONUNBUFFERED": "1"}
        join = subprocess.Popen(
            hotline_argv("devices", "join", "--server", server.url),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _, code = read_until(join, CODE_RE)
            shown, _ = read_until(join, FINGERPRINT_RE)
            fingerprint = FINGERPRINT_RE.search(shown)
            assert fingerprint is not None
            fails(desk.run("devices", "approve", code + "x"), "link_invalid")
            out = ok(desk.run("devices", "approve", code, "--yes"))
            assert fingerprint.group(1) in out  # the same digits on both screens
            rest, errors = join.communicate(timeout=COMMAND_TIMEOUT)
            assert join.returncode == 0, rest + errors
            linked = re.search(r"Linked: this is device (\S+) of (\S+)\.", rest)
            assert linked is not None and linked.group(2) == desk.handle, rest
        finally:
            stop_process(join)
        phone = Device(phone_home, desk.handle)
        for device in (phone, desk):
            listed = ok(device.run("devices"))
            assert linked.group(1) in listed and listed.count("yes") == 1
        fails(desk.run("devices", "approve", code, "--yes"), "link_used")
