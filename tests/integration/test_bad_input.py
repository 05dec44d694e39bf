"""Every refusal of item 9: its own problem+json code, and nothing already stored changes."""

from __future__ import annotations

import hashlib
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

from hotline.client.device import HotlineClient
from hotline.crypto.identity import DOMAIN_AUTH, DOMAIN_ONE_TIME_KEY, IdentityKey
from hotline.crypto.olm import DeviceAccount
from hotline.server.routes_account import auth_message
from hotline.wire.encoding import b64d, b64e


def account_of(client: HotlineClient) -> DeviceAccount:
    state = client.keystore.load()
    return DeviceAccount.from_pickle(state.account_pickle, client.keystore.pickle_key)


def snapshot(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (what 'nothing stored changes' compares)."""
    with sqlite3.connect(db) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {
            t: sorted(map(tuple, conn.execute(f"SELECT * FROM {t}")), key=repr)
            for t in tables
            if t not in ("sessions", "challenges")
        }


def problem(reply: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert reply.status_code == status, reply.text
    assert reply.headers["content-type"].startswith("application/problem+json")
    doc = reply.json()
    assert doc["code"] == code, doc
    assert doc["detail"]
    return doc


@pytest.fixture
async def http(live_server) -> httpx.AsyncClient:
    async with httpx.AsyncClient(base_url=live_server.url) as client:
        yield client


def bearer(client: HotlineClient) -> dict[str, str]:
    assert client.server.token
    return {"authorization": f"Bearer {client.server.token}"}


async def test_forged_challenge_signature_refused_and_challenge_kept(
    make_principal, http, live_server
) -> None:
    alice = await make_principal("alice")
    challenge = (await http.post("/v1/auth/challenge", json={"device_id": alice.device_id})).json()
    forged = DeviceAccount.generate().sign(
        DOMAIN_AUTH, auth_message(b64d(challenge["challenge"]), live_server.config.domain)
    )
    reply = await http.post(
        "/v1/auth/token",
        json={
            "device_id": alice.device_id,
            "challenge": challenge["challenge"],
            "signature": b64e(forged),
        },
    )
    problem(reply, 400, "bad_signature")
    # The forger did not burn the challenge: the real device can still use it.
    real = account_of(alice).sign(
        DOMAIN_AUTH, auth_message(b64d(challenge["challenge"]), live_server.config.domain)
    )
    reply = await http.post(
        "/v1/auth/token",
        json={
            "device_id": alice.device_id,
            "challenge": challenge["challenge"],
            "signature": b64e(real),
        },
    )
    assert reply.status_code == 200


async def test_replayed_challenge_refused(make_principal, http, live_server) -> None:
    alice = await make_principal("alice")
    challenge = (await http.post("/v1/auth/challenge", json={"device_id": alice.device_id})).json()
    signature = account_of(alice).sign(
        DOMAIN_AUTH, auth_message(b64d(challenge["challenge"]), live_server.config.domain)
    )
    body = {
        "device_id": alice.device_id,
        "challenge": challenge["challenge"],
        "signature": b64e(signature),
    }
    assert (await http.post("/v1/auth/token", json=body)).status_code == 200
    problem(await http.post("/v1/auth/token", json=body), 401, "challenge_invalid")


async def test_unknown_device_refused(http) -> None:
    problem(
        await http.post("/v1/auth/challenge", json={"device_id": "nobody"}), 404, "unknown_device"
    )


async def test_no_token_refused(http) -> None:
    problem(await http.get("/v1/inbox"), 401, "unauthenticated")
    problem(
        await http.get("/v1/inbox", headers={"authorization": "Bearer forged"}),
        401,
        "unauthenticated",
    )


async def test_reused_one_time_key_refused_nothing_stored(
    make_principal, http, live_server
) -> None:
    alice = await make_principal("alice")
    account = account_of(alice)
    # Re-publish a key id already on the server (published at registration).
    with sqlite3.connect(live_server.db_path) as conn:
        key_id, key = conn.execute(
            "SELECT key_id, key FROM one_time_keys WHERE device_id = ? LIMIT 1", (alice.device_id,)
        ).fetchone()
    before = snapshot(live_server.db_path)
    reply = await http.post(
        "/v1/keys",
        headers=bearer(alice),
        json={
            "one_time_keys": [
                {
                    "key_id": key_id,
                    "key": b64e(key),
                    "signature": b64e(account.sign(DOMAIN_ONE_TIME_KEY, key)),
                }
            ]
        },
    )
    problem(reply, 409, "one_time_key_reused")
    assert snapshot(live_server.db_path) == before


async def test_one_time_key_with_forged_signature_refused(
    make_principal, http, live_server
) -> None:
    alice = await make_principal("alice")
    key = bytes(range(32))
    before = snapshot(live_server.db_path)
    reply = await http.post(
        "/v1/keys",
        headers=bearer(alice),
        json={
            "one_time_keys": [
                {
                    "key_id": "AAAAfresh",
                    "key": b64e(key),
                    "signature": b64e(DeviceAccount.generate().sign(DOMAIN_ONE_TIME_KEY, key)),
                }
            ]
        },
    )
    problem(reply, 400, "bad_signature")
    assert snapshot(live_server.db_path) == before


async def test_oversized_body_refused(make_principal, http, live_server) -> None:
    alice = await make_principal("alice")
    before = snapshot(live_server.db_path)
    reply = await http.post(
        "/v1/messages", headers=bearer(alice), content=b"{" + b" " * (300 * 1024) + b"}"
    )
    problem(reply, 413, "too_large")
    assert snapshot(live_server.db_path) == before


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"message_id": "x"}',
        b'{"message_id": "x", "to": "pm@washington.test", "ciphertexts": [], "extra": 1}',
    ],
)
async def test_malformed_body_refused(make_principal, http, live_server, body: bytes) -> None:
    alice = await make_principal("alice")
    before = snapshot(live_server.db_path)
    problem(await http.post("/v1/messages", headers=bearer(alice), content=body), 400, "malformed")
    assert snapshot(live_server.db_path) == before


async def test_sender_not_on_allowlist_refused_nothing_stored(
    connected_pair, make_principal, live_server, http
) -> None:
    _washington, ottawa = connected_pair
    mallory = await make_principal("mallory")
    before = snapshot(live_server.db_path)
    # Mallory cannot even learn Ottawa's devices or claim its keys: no directory.
    from hotline.wire.errors import NotAContact

    with pytest.raises(NotAContact):
        await mallory.server.call("GET", f"/v1/principals/{ottawa.handle}/devices")
    with pytest.raises(NotAContact):
        await mallory.server.call("POST", "/v1/keys/claim", _claim(ottawa.handle))
    reply = await http.post(
        "/v1/messages",
        headers=bearer(mallory),
        json={
            "message_id": "m1",
            "to": ottawa.handle,
            "ciphertexts": [{"device_id": ottawa.device_id, "type": 0, "body": "AAAA"}],
        },
    )
    problem(reply, 403, "not_a_contact")
    assert snapshot(live_server.db_path) == before
    assert [e for e in await ottawa.sync() if e.kind == "message"] == []


def _claim(handle: str) -> object:
    from hotline.wire.api import ClaimRequest

    return ClaimRequest(handle=handle)


async def test_enrolment_token_single_use(live_server, tmp_path: Path) -> None:
    from harness import FAST_SCRYPT, PASSPHRASE

    from hotline.server.admin import issue_enrolment
    from hotline.wire.errors import EnrolmentInvalid

    handle = f"alice@{live_server.config.domain}"
    token = await issue_enrolment(live_server.store, handle, time.time())
    await (
        await HotlineClient.register(
            tmp_path / "a1",
            PASSPHRASE,
            server_url=live_server.url,
            enrolment_token=token,
            handle=handle,
            display_name="Alice",
            scrypt=FAST_SCRYPT,
        )
    ).close()
    with pytest.raises(EnrolmentInvalid):
        await HotlineClient.register(
            tmp_path / "a2",
            PASSPHRASE,
            server_url=live_server.url,
            enrolment_token=token,
            handle=f"bob@{live_server.config.domain}",
            display_name="Bob",
            scrypt=FAST_SCRYPT,
        )
    assert not (tmp_path / "a2").exists(), "a failed registration leaves no keystore behind"


async def test_enrolment_token_bound_to_its_handle(live_server, tmp_path: Path) -> None:
    from harness import FAST_SCRYPT, PASSPHRASE

    from hotline.server.admin import issue_enrolment
    from hotline.wire.errors import EnrolmentInvalid

    token = await issue_enrolment(
        live_server.store, f"alice@{live_server.config.domain}", time.time()
    )
    with pytest.raises(EnrolmentInvalid):
        await HotlineClient.register(
            tmp_path / "m",
            PASSPHRASE,
            server_url=live_server.url,
            enrolment_token=token,
            handle=f"mallory@{live_server.config.domain}",
            display_name="M",
            scrypt=FAST_SCRYPT,
        )


async def test_allowlist_signed_by_wrong_key_refused(make_principal, live_server) -> None:
    from hotline.client.cards import sign_allowlist
    from hotline.wire.api import SignedListUpload
    from hotline.wire.errors import BadSignature

    alice = await make_principal("alice")
    before = snapshot(live_server.db_path)
    forged = sign_allowlist(
        IdentityKey.generate(), alice.handle, 99, ["mallory@x.test"], time.time()
    )
    with pytest.raises(BadSignature):
        await alice.server.call("PUT", "/v1/allowlist", SignedListUpload(signed=forged))
    assert snapshot(live_server.db_path) == before


async def test_allowlist_rollback_refused(connected_pair, live_server) -> None:
    from hotline.client.cards import sign_allowlist
    from hotline.wire.api import SignedListUpload
    from hotline.wire.errors import StaleVersion

    washington, _ = connected_pair
    identity = IdentityKey.from_bytes(b64d(washington.keystore.load().identity_key))
    before = snapshot(live_server.db_path)
    old = sign_allowlist(identity, washington.handle, 1, [], time.time())
    with pytest.raises(StaleVersion):
        await washington.server.call("PUT", "/v1/allowlist", SignedListUpload(signed=old))
    assert snapshot(live_server.db_path) == before


async def test_revoked_card_refused(make_principal) -> None:
    from hotline.wire.errors import InviteInvalid

    alice = await make_principal("alice")
    bob = await make_principal("bob")
    card = await alice.my_card()
    await alice.revoke_card()
    with pytest.raises(InviteInvalid):
        await bob.add_contact(card)
    await alice.sync()
    assert alice.contacts() == []


async def test_message_missing_a_device_refused(connected_pair, live_server, http) -> None:
    washington, ottawa = connected_pair
    before = snapshot(live_server.db_path)
    reply = await http.post(
        "/v1/messages",
        headers=bearer(washington),
        json={
            "message_id": "m1",
            "to": ottawa.handle,
            "ciphertexts": [{"device_id": "not-a-device", "type": 0, "body": "AAAA"}],
        },
    )
    doc = problem(reply, 409, "device_list_mismatch")
    assert doc["extra"] == {"expected": [ottawa.device_id]}
    assert snapshot(live_server.db_path) == before


async def test_rate_limit(tmp_path: Path) -> None:
    from harness import start_server

    server, stop = await start_server(
        tmp_path / "s.db", anon_rate_per_second=0.001, anon_rate_burst=3
    )
    try:
        async with httpx.AsyncClient(base_url=server.url) as http:
            codes = [
                (await http.post("/v1/auth/challenge", json={"device_id": "x"})).status_code
                for _ in range(4)
            ]
            assert codes == [404, 404, 404, 429]
            reply = await http.post("/v1/auth/challenge", json={"device_id": "x"})
            problem(reply, 429, "rate_limited")
            assert int(reply.headers["retry-after"]) > 0
    finally:
        await stop()


async def test_health_and_openapi(http) -> None:
    assert (await http.get("/health")).json() == {"status": "ok"}
    doc = (await http.get("/openapi.json")).json()
    assert doc["openapi"].startswith("3.1")
    assert "/v1/messages" in doc["paths"]
    assert "SendRequest" in doc["components"]["schemas"]


async def test_invite_verifier_is_a_hash(make_principal, live_server) -> None:
    alice = await make_principal("alice")
    await alice.my_card()
    secret = next(iter(alice.keystore.load().invites.values())).secret
    with sqlite3.connect(live_server.db_path) as conn:
        (verifier,) = conn.execute("SELECT verifier FROM invites").fetchone()
    assert verifier == hashlib.sha256(b64d(secret)).digest()


async def test_unknown_endpoint_and_method_are_problems(http) -> None:
    problem(await http.get("/v1/nothing-here"), 404, "not_found")
    problem(await http.delete("/v1/messages"), 405, "method_not_allowed")


async def test_refused_card_leaves_no_contact_and_no_allowlist_entry(
    make_principal, live_server
) -> None:
    from hotline.wire.errors import InviteInvalid

    alice = await make_principal("alice")
    bob = await make_principal("bob")
    card = await alice.my_card()
    await alice.revoke_card()
    with pytest.raises(InviteInvalid):
        await bob.add_contact(card)
    assert bob.contacts() == []
    assert not await live_server.store.is_allowed(bob.handle, alice.handle)
    # The attempt itself is kept for the record (pending until the next flush).
    assert len(bob.keystore.load().pending_records) == 1
    assert await bob.flush_records() == []
    assert bob.keystore.load().pending_records == []


async def test_short_enrolment_token_is_enrolment_invalid(live_server, tmp_path: Path) -> None:
    from harness import FAST_SCRYPT, PASSPHRASE

    from hotline.wire.errors import EnrolmentInvalid

    with pytest.raises(EnrolmentInvalid):
        await HotlineClient.register(
            tmp_path / "x",
            PASSPHRASE,
            server_url=live_server.url,
            enrolment_token="abc",
            handle=f"x@{live_server.config.domain}",
            display_name="X",
            scrypt=FAST_SCRYPT,
        )
