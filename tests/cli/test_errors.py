"""Errors exit 1 with their stable code and tell the user what to do next; nothing is damaged."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import CARD_RE, Device, ServerProcess, fails, free_port, ok, run_hotline


def snapshot(home: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(home.iterdir()) if p.is_file()}


@pytest.mark.parametrize(
    "argv",
    [["contacts"], ["card"], ["send", "potus", "hello"], ["sync"], ["verify", "potus"]],
    ids=" ".join,
)
def test_wrong_passphrase_changes_nothing(device: Device, argv: list[str]) -> None:
    before = snapshot(device.home)
    text = fails(device.run(*argv, passphrase="not the passphrase"), "wrong_passphrase")
    assert "HOTLINE_PASSPHRASE" in text  # what to check
    assert snapshot(device.home) == before


@pytest.mark.parametrize(
    "argv",
    [["contacts"], ["card"], ["send", "pm", "hello"], ["listen"], ["history", "pm"]],
    ids=" ".join,
)
def test_no_keystore_says_register(tmp_path: Path, argv: list[str]) -> None:
    home = tmp_path / "nowhere"
    text = fails(run_hotline(*argv, home=home), "keystore_missing")
    assert "hotline register" in text
    assert not home.exists()  # a typo in HOTLINE_HOME creates nothing


def test_server_down_at_register(tmp_path: Path) -> None:
    home = tmp_path / "home"
    result = run_hotline(
        "register",
        "--server",
        f"http://127.0.0.1:{free_port()}",
        "--handle",
        "pm@gov.test",
        "--token",
        "x" * 32,
        "--name",
        "Prime Minister",
        home=home,
    )
    text = fails(result, "server_unavailable")
    assert "hotline server" in text  # start it, or check the URL
    assert not (home / "keystore.key").exists()  # no half-registered device left behind


def test_wrong_enrolment_token(home_server: ServerProcess, tmp_path: Path) -> None:
    result = run_hotline(
        "register",
        "--server",
        home_server.url,
        "--handle",
        "nobody@gov.test",
        "--token",
        "A" * 32,
        "--name",
        "Nobody",
        home=tmp_path / "home",
    )
    assert "hotline server enrol" in fails(result, "enrolment_invalid")


def test_register_twice_is_refused(device: Device, home_server: ServerProcess) -> None:
    before = snapshot(device.home)
    result = device.run(
        "register",
        "--server",
        home_server.url,
        "--handle",
        "potus@gov.test",
        "--token",
        "A" * 32,
        "--name",
        "POTUS",
    )
    assert "HOTLINE_HOME" in fails(result, "already_exists")
    assert snapshot(device.home) == before


@pytest.mark.parametrize(
    "card_text",
    ["hotline:this-is-not-a-card", "https://example.org/card", "hotline:", "TRUNCATED"],
)
def test_malformed_card(device: Device, card_text: str) -> None:
    if card_text == "TRUNCATED":
        card = CARD_RE.search(ok(device.run("card")))
        assert card
        card_text = card.group(0)[: len(card.group(0)) // 2]
    text = fails(device.run("contacts", "add", card_text), "malformed_card")
    assert "card" in text


@pytest.mark.parametrize(
    "argv",
    [
        ["send", "nobody", "hello"],
        ["verify", "nobody"],
        ["history", "nobody"],
        ["contacts", "remove", "nobody"],
    ],
    ids=" ".join,
)
def test_unknown_contact(device: Device, argv: list[str]) -> None:
    text = fails(device.run(*argv), "unknown_contact")
    assert "nobody" in text
    assert "hotline contacts" in text  # how to see who is there
