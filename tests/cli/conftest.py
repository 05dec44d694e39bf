"""Fixtures of the command-line tests: one real home server process for the session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_helpers import Device, ServerProcess, register


@pytest.fixture(scope="session")
def home_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One real home server process for the session's error and card tests."""
    with ServerProcess(tmp_path_factory.mktemp("server") / "data") as server:
        yield server


@pytest.fixture(scope="session")
def device(home_server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Device:
    """A device registered on ``home_server`` (tests must not change its state)."""
    return register(home_server, tmp_path_factory.mktemp("home") / "potus", "potus", "POTUS")
