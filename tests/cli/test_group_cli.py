"""``hotline group`` with real processes: create, send, show, remove (one server on loopback)."""

from __future__ import annotations

from pathlib import Path

from cli_helpers import CARD_RE, Device, ServerProcess, fails, ok, register


def befriend(admin: Device, other: Device) -> None:
    card = CARD_RE.search(ok(other.run("card")))
    assert card
    ok(admin.run("contacts", "add", card.group(0)))
    ok(other.run("sync"))
    ok(admin.run("sync"))


def test_group_commands(tmp_path: Path) -> None:
    with ServerProcess(tmp_path / "server-data") as server:
        potus = register(server, tmp_path / "potus", "potus", "President")
        vp = register(server, tmp_path / "vp", "vp", "Vice President")
        sos = register(server, tmp_path / "sos", "sos", "Secretary of State")
        befriend(potus, vp)
        befriend(potus, sos)
        created = ok(potus.run("group", "create", "Cabinet", "-m", vp.handle, "-m", sos.handle))
        assert "Cabinet" in created and "3 members" in created
        assert "Cabinet" in ok(vp.run("sync"))
        ok(sos.run("sync"))
        assert "Sent to the group" in ok(vp.run("group", "send", "Cabinet", "Nine o'clock."))
        assert "Nine o'clock." in ok(sos.run("sync"))
        shown = ok(potus.run("group", "show", "Cabinet"))
        assert vp.handle in shown and sos.handle in shown
        ok(potus.run("sync"))
        assert "Nine o'clock." in ok(potus.run("group", "show", "Cabinet"))
        assert "2 members" in ok(potus.run("group", "remove", "Cabinet", sos.handle))
        ok(sos.run("sync"))
        assert "you left or were removed" in ok(sos.run("group", "list"))
        fails(sos.run("group", "send", "Cabinet", "Still here?"), "not_a_group_member")
        fails(vp.run("group", "remove", "Cabinet", potus.handle), "roster_refused")
