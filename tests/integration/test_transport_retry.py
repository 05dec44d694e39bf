"""A request whose connection drops before its answer is sent once more only if that is safe
(``client.transport.retry_safe``). A real server on loopback behind a real TCP proxy that
closes the connection carrying one chosen request — as a server or proxy closing an idle
keep-alive connection does when the client reuses it at that moment."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from harness import LiveServer, start_server

from hotline.client.device import HotlineClient
from hotline.client.transport import RATE_WAIT_MAX, ServerApi
from hotline.wire import api
from hotline.wire.errors import RateLimited, ServerUnavailable, UnknownDevice


class DroppingProxy:
    """Pipes loopback connections to ``upstream`` and closes, once, the connection carrying
    the first request that starts with ``drop``: with ``forward``, after the server answered
    it (the server acted, the client never hears), else before the server sees it."""

    def __init__(self, upstream: str, drop: bytes, *, forward: bool) -> None:
        parts = urlsplit(upstream)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._drop = drop
        self._forward = forward
        self.connections = 0
        #: requests seen that start with ``drop`` (dropped or piped)
        self.matched = 0
        self.dropped = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accept(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        server_r, server_w = await asyncio.open_connection(*self._upstream)
        answering = asyncio.Event()  # set while the server's answer flows back
        answering.set()
        swallow = asyncio.Event()  # the server acts on the request, the client never hears
        ends = [client_w, server_w]

        async def upstream() -> None:
            while data := await client_r.read(65536):
                if answering.is_set():  # a new request on this connection
                    answering.clear()
                    if data.startswith(self._drop):
                        self.matched += 1
                        if self.dropped == 0:
                            self.dropped += 1
                            if not self._forward:
                                return  # closed before the server sees it
                            swallow.set()
                server_w.write(data)
                await server_w.drain()

        async def downstream() -> None:
            while data := await server_r.read(65536):
                if swallow.is_set():
                    return  # closed with the answer unsent
                answering.set()
                client_w.write(data)
                await client_w.drain()

        pipes = [asyncio.create_task(upstream()), asyncio.create_task(downstream())]
        self._tasks.update(pipes)
        with contextlib.suppress(OSError):
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        for task in pipes:
            task.cancel()
        for end in ends:
            end.close()


@contextlib.asynccontextmanager
async def proxied(
    server: LiveServer, drop: bytes, *, forward: bool
) -> AsyncIterator[tuple[DroppingProxy, str]]:
    proxy = DroppingProxy(server.url, drop, forward=forward)
    url = await proxy.start()
    try:
        yield proxy, url
    finally:
        await proxy.stop()


async def test_a_get_is_sent_again_on_a_new_connection(live_server: LiveServer) -> None:
    async with proxied(live_server, b"GET /v1/server", forward=False) as (proxy, url):
        server = ServerApi(url)
        try:
            info = await server.call("GET", "/v1/server", response=api.ServerInfo)
        finally:
            await server.close()
    assert info is not None and info.domain == live_server.config.domain
    assert (proxy.dropped, proxy.matched, proxy.connections) == (1, 2, 2)


async def test_a_message_the_server_took_is_sent_again_and_stored_once(
    connected_pair: tuple[HotlineClient, HotlineClient], live_server: LiveServer
) -> None:
    """The server stored the message but the answer was lost: the retry is recognised by
    its message id, so the recipient gets it once."""
    washington, ottawa = connected_pair
    await washington.send_text(ottawa.handle, "Sessions set up.")
    async with proxied(live_server, b"POST /v1/messages", forward=True) as (proxy, url):
        direct, washington.server = washington.server, ServerApi(url)
        washington.server.token, washington.server.relogin = direct.token, washington.login
        try:
            entry = await washington.send_text(ottawa.handle, "Once, though sent twice.")
        finally:
            await washington.server.close()
            washington.server = direct
    assert (proxy.dropped, proxy.matched) == (1, 2)
    assert entry.status == "sent" and entry.record_index >= 0
    await ottawa.sync()
    received = [m.text for m in ottawa.history(washington.handle) if not m.outgoing]
    assert received == ["Sessions set up.", "Once, though sent twice."]


async def test_a_key_claim_is_never_sent_again(
    connected_pair: tuple[HotlineClient, HotlineClient], live_server: LiveServer
) -> None:
    """A claim takes a one-time key: a dropped one is reported, never repeated."""
    washington, ottawa = connected_pair
    async with proxied(live_server, b"POST /v1/keys/claim", forward=False) as (proxy, url):
        server = ServerApi(url)
        server.token = washington.server.token
        try:
            with pytest.raises(ServerUnavailable):
                await server.call(
                    "POST",
                    "/v1/keys/claim",
                    api.ClaimRequest(handle=ottawa.handle, device_ids=[ottawa.device_id]),
                    api.ClaimResponse,
                )
        finally:
            await server.close()
    assert (proxy.dropped, proxy.matched, proxy.connections) == (1, 1, 1)


async def test_rate_limited_request_is_sent_again_after_the_named_wait(tmp_path: Path) -> None:
    """The limit is checked before a request does anything, so the client may repeat any
    request after the wait the server names (here 0.2 s per request after a burst of one)."""
    server, stop = await start_server(
        tmp_path / "s.db", anon_rate_per_second=5.0, anon_rate_burst=1.0
    )
    client = ServerApi(server.url)
    try:
        for _ in range(3):  # the 2nd and 3rd are refused once each, then go through
            with pytest.raises(UnknownDevice):
                await client.call("POST", "/v1/auth/challenge", api.ChallengeRequest("nobody"))
    finally:
        await client.close()
        await stop()


async def test_a_long_rate_limit_wait_is_the_callers(tmp_path: Path) -> None:
    server, stop = await start_server(
        tmp_path / "s.db", anon_rate_per_second=0.5 / RATE_WAIT_MAX, anon_rate_burst=1.0
    )
    client = ServerApi(server.url)
    try:
        with pytest.raises(UnknownDevice):
            await client.call("POST", "/v1/auth/challenge", api.ChallengeRequest("nobody"))
        with pytest.raises(RateLimited) as refused:
            await client.call("POST", "/v1/auth/challenge", api.ChallengeRequest("nobody"))
        assert refused.value.extra["retry_after"] > RATE_WAIT_MAX
    finally:
        await client.close()
        await stop()
