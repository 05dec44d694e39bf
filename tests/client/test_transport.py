"""The client's HTTP connection reuse stays inside the server's keep-alive window, and only
idempotent requests are sent again when a connection drops under them."""

from __future__ import annotations

import pytest
import uvicorn

from hotline.client.transport import KEEPALIVE_EXPIRY, ServerApi, retry_safe
from hotline.wire import api

ONE_TIME_KEY = api.OneTimeKey(key_id="k1", key="a" * 43, signature="b" * 86)


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


@pytest.mark.parametrize(
    ("method", "path", "body", "safe"),
    [
        ("GET", "/v1/inbox", None, True),
        ("GET", "/v1/principals/pm@ottawa.test/devices", None, True),
        ("POST", "/v1/messages", None, True),
        ("POST", "/v1/groups/messages", None, True),
        ("POST", "/v1/records", None, True),
        ("POST", "/v1/inbox/ack", None, True),
        ("POST", "/v1/keys", api.KeysUpload(one_time_keys=[]), True),
        ("POST", "/v1/keys", api.KeysUpload(one_time_keys=[ONE_TIME_KEY]), False),
        ("POST", "/v1/keys/claim", None, False),
        ("POST", "/v1/register", None, False),
        ("POST", "/v1/auth/challenge", None, False),
        ("POST", "/v1/auth/token", None, False),
        ("POST", "/v1/invites", None, False),
        ("POST", "/v1/contact-requests", None, False),
        ("POST", "/v1/delegations", None, False),
        ("POST", "/v1/device-links", None, False),
        ("PUT", "/v1/allowlist", None, False),
        ("PUT", "/v1/device-list", None, False),
        ("DELETE", "/v1/invites/abc", None, False),
    ],
)
def test_only_requests_that_are_idempotent_are_retry_safe(
    method: str, path: str, body: object, safe: bool
) -> None:
    assert retry_safe(method, path, body) is safe
