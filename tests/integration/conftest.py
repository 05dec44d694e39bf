"""Fixtures of the two-party harness; the helpers live in ``harness.py``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from harness import FAST_SCRYPT, PASSPHRASE, LiveServer, connect, start_server

from hotline.client.device import HotlineClient
from hotline.server.admin import issue_enrolment


@pytest.fixture
async def live_server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    server, stop = await start_server(tmp_path / "server.db")
    try:
        yield server
    finally:
        await stop()


MakePrincipal = Callable[..., Awaitable[HotlineClient]]


@pytest.fixture
async def make_principal(live_server: LiveServer, tmp_path: Path) -> AsyncIterator[MakePrincipal]:
    clients: list[HotlineClient] = []

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

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def connected_pair(make_principal: MakePrincipal) -> tuple[HotlineClient, HotlineClient]:
    washington = await make_principal("potus", "President of the United States")
    ottawa = await make_principal("pm", "Prime Minister of Canada")
    await connect(washington, ottawa)
    return washington, ottawa
