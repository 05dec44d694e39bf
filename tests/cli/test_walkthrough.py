"""The README's "three terminals" walkthrough, with real processes.

Terminal 1 runs ``hotline server``; Washington and Ottawa each have their own ``HOTLINE_HOME``
and run the commands the README shows, in that order, while Ottawa's ``hotline listen`` runs
as a process of its own. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import (
    CARD_RE,
    SAFETY_RE,
    Device,
    ServerProcess,
    fails,
    hotline_argv,
    hotline_env,
    ok,
    register,
    stop_process,
)

QUESTION = "Do you have a minute on the summit?"
ANSWER = "Of course, Mr President. [Go ahead.] 🍁"
DIGEST_RE = re.compile(r"transcript digest ([0-9a-f]{64})")


class Listener:
    """``hotline listen`` as a process; its stdout read line by line on a thread."""

    def __init__(self, device: Device) -> None:
        self.proc = subprocess.Popen(
            hotline_argv("listen"),
            env=hotline_env(device.home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        """The first line (not yet consumed) containing ``text``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self.lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                if self.proc.poll() is not None and self.lines.empty():
                    break
                continue
            self.seen.append(line)
            if text in line:
                return line
        stderr = (
            self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        )
        raise AssertionError(
            f"'hotline listen' did not print {text!r} within {timeout}s "
            f"(exit {self.proc.poll()}); stdout so far:\n{''.join(self.seen)}\nstderr:\n{stderr}"
        )

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user would; returns the exit code and stderr."""
        assert self.proc.stderr is not None
        stderr_stream = self.proc.stderr
        self.proc.stderr = None  # stop_process must not close it before we read it
        stop_process(self.proc)
        self._reader.join(5)
        stderr = stderr_stream.read()
        stderr_stream.close()
        return self.proc.returncode, stderr


def safety_number(output: str) -> str:
    match = SAFETY_RE.search(output)
    assert match, f"no 60-digit safety number in:\n{output}"
    digits = match.group(1).replace(" ", "")
    assert len(digits) == 60
    return digits


@pytest.mark.slow
def test_readme_three_terminals(tmp_path: Path) -> None:
    # Terminal 1: the home server, and the operator's tokens.
    with ServerProcess(tmp_path / "server-data") as server:
        potus = register(
            server, tmp_path / "hotline-potus", "potus", "President of the United States"
        )
        pm = register(server, tmp_path / "hotline-pm", "pm", "Prime Minister of Canada")

        # Terminal 2: Washington prints its card.
        card_match = CARD_RE.search(ok(potus.run("card")))
        assert card_match, "hotline card printed no hotline: URI"
        card = card_match.group(0)

        # Terminal 3: Ottawa adds it and listens.
        added = ok(pm.run("contacts", "add", card))
        assert "President of the United States" in added
        assert "potus@gov.test" in added
        listener = Listener(pm)
        try:
            listener.wait_for("listening as pm@gov.test")

            # Terminal 2: Washington's device accepts the request.
            synced = ok(potus.run("sync"))
            assert "contact_added" in synced
            assert "pm@gov.test" in synced

            # Both sides show the same 60 digits, then confirm.
            number = safety_number(ok(potus.run("verify", "pm@gov.test")))
            assert safety_number(ok(pm.run("verify", "potus@gov.test"))) == number
            confirmed = ok(potus.run("verify", "pm@gov.test", "--confirm"))
            assert safety_number(confirmed) == number
            assert "Marked as verified" in confirmed
            assert "Marked as verified" in ok(pm.run("verify", "potus", "--confirm"))

            # Washington writes; Ottawa's listener prints it as it arrives.
            assert "sent #1 to pm" in ok(potus.run("send", "pm", QUESTION))
            line = listener.wait_for(QUESTION)
            assert "potus@gov.test" in line
            assert "#1" in line

            # Ottawa answers (text that looks like Rich markup is shown as typed).
            ok(pm.run("send", "potus", ANSWER))
        finally:
            code, stderr = listener.stop()
        assert code == 130, stderr  # Ctrl-C: a clean stop
        assert "Traceback" not in stderr

        # history: the whole conversation, and the same transcript digest on both sides.
        mine = ok(potus.run("history", "pm"))
        theirs = ok(pm.run("history", "potus"))
        for out in (mine, theirs):
            assert QUESTION in out
            assert ANSWER in out
            assert out.index(QUESTION) < out.index(ANSWER)
        digest_mine, digest_theirs = DIGEST_RE.search(mine), DIGEST_RE.search(theirs)
        assert digest_mine and digest_theirs, f"no transcript digest in:\n{mine}\n{theirs}"
        assert digest_mine.group(1) == digest_theirs.group(1)

        # hotline contacts: each lists the other, active and verified.
        for device, other, name in [
            (potus, "pm@gov.test", "Prime Minister of Canada"),
            (pm, "potus@gov.test", "President of the United States"),
        ]:
            row = next(
                (line for line in ok(device.run("contacts")).splitlines() if other in line), ""
            )
            assert name in row
            assert "active" in row
            assert "yes" in row

        # hotline card --revoke: a third principal can no longer use the old card.
        assert "Revoked 1 card invite" in ok(potus.run("card", "--revoke"))
        vp = register(server, tmp_path / "hotline-vp", "vp", "Vice President")
        refused = fails(vp.run("contacts", "add", card), "invite_invalid")
        assert "fresh card" in refused  # what to do next

        # hotline contacts remove: cut off at both ends.
        assert "Removed potus" in ok(pm.run("contacts", "remove", "potus"))
        assert "removed" in ok(pm.run("contacts"))
        assert "contact_removed" in ok(potus.run("sync"))
        fails(potus.run("send", "pm", "Are you there?"), "not_a_contact")

        server.stop()
        # With the server down, commands say so and what to do.
        down = fails(potus.run("sync"), "server_unavailable")
        assert "hotline server" in down
