"""The client's HTTP connection reuse stays inside the server's keep-alive window."""

from __future__ import annotations

import uvicorn

from hotline.client.transport import KEEPALIVE_EXPIRY, ServerApi


async def test_idle_connections_are_dropped_before_the_server_closes_them() -> None:
    # Reusing a connection the server is closing at that moment fails the request with
    # RemoteProtocolError; a client that drops idle connections first never races it.
    server_keepalive = uvicorn.Config(app=None).timeout_keep_alive  # hotline server's default
    api = ServerApi("http://127.0.0.1:9")
    try:
        pool = api._http._transport._pool  # type: ignore[attr-defined]
        assert pool._keepalive_expiry == KEEPALIVE_EXPIRY
        assert server_keepalive - 1 > KEEPALIVE_EXPIRY
    finally:
        await api.close()
