"""Fixtures for call tests: a real server on loopback and real clients (from the integration
harness), each client's calls shut down (media released) at the end of the test."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "integration"))

from harness import FAST_SCRYPT, PASSPHRASE, LiveServer, connect, start_server

from hotline.client.call_flow import call_flows
from hotline.client.device import HotlineClient
from hotline.server.admin import issue_enrolment

MakePrincipal = Callable[..., Awaitable[HotlineClient]]


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    server, stop = await start_server(tmp_path / "server.db")
    try:
        yield server
    finally:
        await stop()


@pytest.fixture
async def clients() -> AsyncIterator[list[HotlineClient]]:
    """Every client a test opens; their calls' media and connections are closed at the end."""
    opened: list[HotlineClient] = []
    yield opened
    for client in opened:
        await call_flows(client).shutdown()
        await client.close()


@pytest.fixture
async def make_principal(
    live_server: LiveServer, tmp_path: Path, clients: list[HotlineClient]
) -> MakePrincipal:
    async def make(name: str, display_name: str | None = None) -> HotlineClient:
        handle = f"{name}@{live_server.config.domain}"
        token = await issue_enrolment(live_server.store, handle, time.time())
        client = await HotlineClient.register(
            tmp_path / f"home-{name}",
            PASSPHRASE,
            server_url=live_server.url,
            enrolment_token=token,
            handle=handle,
            display_name=display_name or name.title(),
            scrypt=FAST_SCRYPT,
        )
        clients.append(client)
        return client

    return make


@pytest.fixture
async def connected_pair(make_principal: MakePrincipal) -> tuple[HotlineClient, HotlineClient]:
    washington = await make_principal("potus", "President of the United States")
    ottawa = await make_principal("pm", "Prime Minister of Canada")
    await connect(washington, ottawa)
    return washington, ottawa
