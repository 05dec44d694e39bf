"""STUN/TURN advertisement: the config format, TURN REST credentials, and the client's use."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest
from callkit import flows

from hotline.calls.config import (
    CallsConfig,
    IceServer,
    IceServerEntry,
    ice_servers_of,
    turn_rest_credentials,
)
from hotline.wire.codec import decode
from hotline.wire.errors import MalformedInput, UnsupportedVersion


def test_turn_rest_credentials_are_what_coturn_checks() -> None:
    username, password = turn_rest_credentials(b"shared-secret", "potus@gov.test", 1_000, 600)
    assert username == "1600:potus@gov.test"
    expected = hmac.new(b"shared-secret", b"1600:potus@gov.test", hashlib.sha1).digest()
    assert base64.b64decode(password) == expected
    with pytest.raises(ValueError, match="between a minute and a day"):
        turn_rest_credentials(b"s", "u", 0, 10)


def test_config_format_is_strict() -> None:
    body = b'{"v":1,"ice_servers":[{"urls":["turn:turn.gov.test:3478?transport=udp"],' \
        b'"username":"1600:potus@gov.test","credential":"x"}]}'  # fmt: skip
    config = decode(body, CallsConfig)
    assert ice_servers_of(config) == [
        IceServer(("turn:turn.gov.test:3478?transport=udp",), "1600:potus@gov.test", "x")
    ]
    for bad in (
        b'{"v":1,"ice_servers":[{"urls":["http://evil.test"]}]}',
        b'{"v":1,"ice_servers":[{"urls":[]}]}',
        b'{"v":2}',
    ):
        with pytest.raises((MalformedInput, UnsupportedVersion)):
            decode(bad, CallsConfig)


async def test_client_uses_what_the_server_advertises(connected_pair, monkeypatch) -> None:
    washington, _ = connected_pair
    assert await flows(washington)._ice_servers() == []  # no route: direct ICE (loopback)
    advertised = CallsConfig(v=1, ice_servers=[IceServerEntry(urls=["stun:stun.gov.test"])])
    real_call = washington.server.call

    async def fake_call(method, path, *args, **kwargs):
        if path == "/v1/calls/config":
            return advertised
        return await real_call(method, path, *args, **kwargs)

    monkeypatch.setattr(washington.server, "call", fake_call)
    assert await flows(washington)._ice_servers() == [IceServer(("stun:stun.gov.test",))]
    flows(washington).ice_servers = []  # an explicit setting wins over the advertisement
    assert await flows(washington)._ice_servers() == []


async def test_server_advertises_turn_with_short_lived_credentials(tmp_path) -> None:
    import base64
    import hashlib
    import hmac
    import time

    import httpx
    from harness import FAST_SCRYPT, PASSPHRASE, start_server

    from hotline.client.device import HotlineClient
    from hotline.server.admin import issue_enrolment

    server, stop = await start_server(
        tmp_path / "s.db", turn_urls=("turn:127.0.0.1:3478",), turn_secret=b"coturn static secret"
    )
    try:
        handle = f"alice@{server.config.domain}"
        token = await issue_enrolment(server.store, handle, time.time())
        alice = await HotlineClient.register(
            tmp_path / "a",
            PASSPHRASE,
            server_url=server.url,
            enrolment_token=token,
            handle=handle,
            display_name="A",
            scrypt=FAST_SCRYPT,
        )
        try:
            await alice.login()
            async with httpx.AsyncClient(base_url=server.url) as http:
                assert (await http.get("/v1/calls/config")).status_code == 401
                reply = await http.get(
                    "/v1/calls/config", headers={"authorization": f"Bearer {alice.server.token}"}
                )
            (entry,) = reply.json()["ice_servers"]
            assert entry["urls"] == ["turn:127.0.0.1:3478"]
            expiry, _, user = entry["username"].partition(":")
            assert user == handle and int(expiry) > time.time()
            mac = hmac.new(b"coturn static secret", entry["username"].encode(), hashlib.sha1)
            assert entry["credential"] == base64.b64encode(mac.digest()).decode()
        finally:
            await alice.close()
    finally:
        await stop()
