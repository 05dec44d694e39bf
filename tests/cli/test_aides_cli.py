"""``hotline aides`` (grant, list, answer, revoke) and ``hotline server device-remove``, as real
processes against a real server process."""

from __future__ import annotations

import re
from pathlib import Path

from cli_helpers import CARD_RE, ServerProcess, fails, ok, register, run_hotline


def connect(a, b) -> None:
    card = CARD_RE.search(ok(b.run("card")))
    assert card is not None
    ok(a.run("contacts", "add", card.group(0)))
    ok(b.run("sync"))
    ok(a.run("sync"))


def test_aide_answers_for_the_principal_and_is_labelled(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as server:
        potus = register(server, tmp_path / "potus", "potus", "President")
        chief = register(server, tmp_path / "chief", "chief", "Chief of Staff")
        pm = register(server, tmp_path / "pm", "pm", "Prime Minister")
        connect(potus, chief)
        connect(pm, potus)
        granted = ok(potus.run("aides", "grant", chief.handle, "--days", "3"))
        assert f"{chief.handle} may now read and answer for you" in granted
        assert "active" in ok(potus.run("aides", "list"))
        ok(pm.run("send", potus.handle, "Are we on for Thursday?"))
        ok(chief.run("sync"))
        assert f"You act for {potus.handle}" in ok(chief.run("aides", "list"))
        ok(chief.run("aides", "answer", potus.handle, pm.handle, "Yes, 9am."))
        shown = ok(pm.run("history", potus.handle))
        assert f"(sent by {chief.handle} for {potus.handle})" in shown
        ok(potus.run("aides", "revoke", chief.handle))
        fails(chief.run("aides", "answer", potus.handle, pm.handle, "again"), "not_delegated")


def test_admin_removes_a_device_from_the_command_line(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "data") as server:
        desk = register(server, tmp_path / "desk", "potus", "President")
        phone = tmp_path / "phone"
        added = re.search(
            r"New device (\S+) added", ok(desk.run("devices", "add", "--home", str(phone)))
        )
        assert added is not None
        lost = added.group(1)
        assert lost in ok(desk.run("devices"))
        data = str(server.data_dir)
        out = ok(run_hotline("server", "device-remove", desk.handle, lost, "--data-dir", data))
        assert f"Device {lost} of {desk.handle} removed and blocked" in out
        fails(
            run_hotline("server", "device-remove", desk.handle, lost, "--data-dir", data),
            "unknown_device",
        )
        ok(desk.run("sync"))
        assert lost not in ok(desk.run("devices"))
