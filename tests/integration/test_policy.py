"""The organisation's signed policy, enforced at both ends and on the record."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from harness import (
    CUSTODIAN,
    FAST_SCRYPT,
    PASSPHRASE,
    archive_settings,
    connect,
    start_server,
)

from hotline.client import policy_pin
from hotline.client.cards import sign_allowlist
from hotline.client.device import HotlineClient
from hotline.client.sending import send_envelope
from hotline.client.transport import ServerApi
from hotline.crypto.identity import IdentityKey
from hotline.policy.document import parse_toml, sign_policy
from hotline.policy.keys import public_bytes
from hotline.records.custodian_keys import fingerprint as custodian_fingerprint
from hotline.records.sealing import open_record
from hotline.server.admin import check_custodian_named, issue_enrolment
from hotline.wire.api import SignedListUpload
from hotline.wire.encoding import b64d
from hotline.wire.envelope import CallSignal
from hotline.wire.errors import CustodianNotAuthorised, ForbiddenByPolicy, MalformedInput

ORG = Ed25519PrivateKey.generate()
OTHER_FINGERPRINT = "0123 4567 89ab cdef 0123 4567 89ab cdef"
POLICY_TOML = """
organisation = "Government of Testland"
version = {version}
issued_at = 1800000000
max_contacts = 1
max_devices = 1
card_validity_days = 7
records_banner = "Recorded under the Testland Records Act"

[features]
voice_calls = false
"""


def signed(version: int = 2, key: Ed25519PrivateKey = ORG):
    return sign_policy(parse_toml(POLICY_TOML.format(version=version)), key)


async def run_server(tmp_path: Path, version: int = 2, key: Ed25519PrivateKey = ORG):
    return await start_server(
        tmp_path / "s.db", policy=signed(version, key), org_key=public_bytes(ORG)
    )


async def enrol(server, tmp_path: Path, name: str) -> HotlineClient:
    handle = f"{name}@{server.config.domain}"
    token = await issue_enrolment(server.store, handle, time.time())
    return await HotlineClient.register(
        tmp_path / name,
        PASSPHRASE,
        server_url=server.url,
        enrolment_token=token,
        handle=handle,
        display_name=name,
        scrypt=FAST_SCRYPT,
        org_key=public_bytes(ORG),
    )


def policy_records(db: Path) -> list[dict[str, str]]:
    with sqlite3.connect(db) as conn:
        leaves = [bytes(r[0]) for r in conn.execute("SELECT leaf FROM log_entries ORDER BY idx")]
    return [
        r.detail for r in (open_record(CUSTODIAN, leaf) for leaf in leaves) if r.kind == "policy"
    ]


async def test_policy_enforced_by_client_and_server_and_recorded(tmp_path: Path) -> None:
    server, stop = await run_server(tmp_path)
    clients: list[HotlineClient] = []
    try:
        alice, bob, carol = [await enrol(server, tmp_path, n) for n in ("alice", "bob", "carol")]
        clients += [alice, bob, carol]
        state = alice.keystore.load()
        policy = policy_pin.current(state)
        assert policy is not None and policy.version == 2 and not policy.features.voice_calls
        # Cards last at most the policy's validity.
        await alice.my_card()
        invite = next(iter(alice.keystore.load().invites.values()))
        assert invite.expires_at - time.time() <= 7 * 86400 + 5
        await connect(alice, bob)
        # The client refuses a second contact...
        with pytest.raises(ForbiddenByPolicy):
            await alice.add_contact(await carol.my_card())
        # ...and so does the server when a modified client skips that check.
        identity = IdentityKey.from_bytes(b64d(alice.keystore.load().identity_key))
        two = sign_allowlist(identity, alice.handle, 50, [bob.handle, carol.handle], time.time())
        with pytest.raises(ForbiddenByPolicy):
            await alice.server.call("PUT", "/v1/allowlist", SignedListUpload(signed=two))
        async with httpx.AsyncClient(base_url=server.url) as http:
            reply = await http.post(
                "/v1/invites",
                json={
                    "invite_id": "long",
                    "verifier": "A" * 43,
                    "expires_at": int(time.time() + 30 * 86400),
                },
                headers={"authorization": f"Bearer {alice.server.token}"},
            )
        assert reply.status_code == 403 and reply.json()["code"] == "forbidden_by_policy"
        # Calls are off: a call signal declared honestly is refused by the server.
        async with alice.keystore.transaction() as tx:
            from hotline.crypto.olm import DeviceAccount

            account = DeviceAccount.from_pickle(tx.account_pickle, alice.keystore.pickle_key)
            with pytest.raises(ForbiddenByPolicy):
                await send_envelope(
                    alice,
                    tx,
                    account,
                    bob.handle,
                    "call",
                    call=CallSignal(call_id="c1", event="offer"),
                )
        refusals = [d for d in policy_records(server.db_path) if d.get("event") == "refused"]
        assert {d["rule"] for d in refusals} >= {
            "max_contacts",
            "card_validity_days",
            "voice_calls",
        }
        assert any(
            d.get("event") == "in_force" and d["version"] == "2"
            for d in policy_records(server.db_path)
        )
    finally:
        for client in clients:
            await client.close()
        await stop()


async def test_misdeclared_content_is_dropped_by_the_recipient(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, stop = await run_server(tmp_path)
    clients: list[HotlineClient] = []
    try:
        alice, bob = [await enrol(server, tmp_path, n) for n in ("alice", "bob")]
        clients += [alice, bob]
        await connect(alice, bob)
        # A modified client declares its call signal as an ordinary message to pass the server.
        monkeypatch.setattr(policy_pin, "content_class", lambda kind: "message")
        async with alice.keystore.transaction() as tx:
            from hotline.crypto.olm import DeviceAccount

            account = DeviceAccount.from_pickle(tx.account_pickle, alice.keystore.pickle_key)
            await send_envelope(
                alice, tx, account, bob.handle, "call", call=CallSignal(call_id="c1", event="offer")
            )
        monkeypatch.undo()
        events = await bob.sync()
        assert any(e.kind == "warning" and "policy evasion" in e.text for e in events)
        assert not any(e.kind == "call" for e in events)
    finally:
        for client in clients:
            await client.close()
        await stop()


async def test_downgraded_or_forged_policy_is_refused(tmp_path: Path) -> None:
    server, stop = await run_server(tmp_path, version=3)
    alice = await enrol(server, tmp_path, "alice")
    await alice.close()
    await stop()
    for version, key, code in (
        (2, ORG, "policy_downgrade"),
        (9, Ed25519PrivateKey.generate(), "bad_signature"),
    ):
        server, stop = await start_server(
            tmp_path / "s.db", policy=signed(version, key), org_key=public_bytes(key)
        )
        alice = await HotlineClient.open(tmp_path / "alice", PASSPHRASE)
        alice.server.base_url = server.url
        await alice.server.close()
        alice.server = ServerApi(server.url)
        try:
            warnings = [e.text for e in await alice.refresh_policy(force=True)]
            assert len(warnings) == 1 and code in warnings[0]
            pin = policy_pin.current(alice.keystore.load())
            assert pin is not None and pin.version == 3  # the newer, genuine policy stays
        finally:
            await alice.close()
            await stop()


# --- the organisation names the records custodian (threat model row 12) ----------------------
def bound_policy(fingerprints: list[str], version: int = 2):
    names = ", ".join(f'"{f}"' for f in fingerprints)
    text = (
        POLICY_TOML.format(version=version) + f"\n[records]\ncustodian_fingerprints = [{names}]\n"
    )
    return sign_policy(parse_toml(text), ORG)


async def test_custodian_named_by_the_policy_is_accepted(tmp_path: Path) -> None:
    named = custodian_fingerprint(CUSTODIAN.public.to_bytes())
    server, stop = await start_server(
        tmp_path / "s.db",
        policy=bound_policy([OTHER_FINGERPRINT, named]),
        org_key=public_bytes(ORG),
    )
    try:
        alice = await enrol(server, tmp_path, "alice")
        async with alice._tx() as (state, _):
            assert state.archive is not None
            assert state.archive.custodian_fingerprint == named
            assert policy_pin.current(state) is not None
        await alice.close()
    finally:
        await stop()


async def test_custodian_substituted_at_registration_is_refused(tmp_path: Path) -> None:
    """A server sealing "records" to a key of its own choosing (here: the test custodian, which
    the organisation did not name) is refused at registration, and the device keeps nothing."""
    server, stop = await start_server(
        tmp_path / "s.db", policy=bound_policy([OTHER_FINGERPRINT]), org_key=public_bytes(ORG)
    )
    try:
        with pytest.raises(CustodianNotAuthorised) as caught:
            await enrol(server, tmp_path, "alice")
        assert caught.value.code == "custodian_not_authorised"
        assert OTHER_FINGERPRINT in caught.value.extra["authorised"]
        assert not (tmp_path / "alice").exists()
    finally:
        await stop()


async def test_policy_naming_another_custodian_refused_on_refresh(tmp_path: Path) -> None:
    """A later policy naming another custodian (a rotation this server was not reconfigured
    for) does not replace the one in force: the device warns and keeps the old policy."""
    server, stop = await run_server(tmp_path)
    alice = await enrol(server, tmp_path, "alice")
    await alice.close()
    await stop()
    server, stop = await start_server(
        tmp_path / "s.db", policy=bound_policy([OTHER_FINGERPRINT], 3), org_key=public_bytes(ORG)
    )
    alice = await HotlineClient.open(tmp_path / "alice", PASSPHRASE)
    await alice.server.close()
    alice.server = ServerApi(server.url)
    try:
        events = await alice.refresh_policy(force=True)
        assert any("custodian_not_authorised" in e.text for e in events if e.kind == "warning")
        current = policy_pin.current(alice.keystore.load())
        assert current is not None and current.version == 2
    finally:
        await alice.close()
        await stop()


def test_server_refuses_to_start_with_a_custodian_its_policy_does_not_name() -> None:
    archive = archive_settings()
    with pytest.raises(CustodianNotAuthorised):
        check_custodian_named(archive, bound_policy([OTHER_FINGERPRINT]), public_bytes(ORG))
    named = custodian_fingerprint(archive.custodian_key)
    check_custodian_named(archive, bound_policy([named]), public_bytes(ORG))  # no error
    check_custodian_named(archive, signed(), public_bytes(ORG))  # policy names nobody


def test_policy_records_binding_is_validated() -> None:
    with pytest.raises(MalformedInput, match="custodian_fingerprints"):
        parse_toml(POLICY_TOML.format(version=2) + '\n[records]\ncustodian_fingerprints = ["ab"]\n')
    with pytest.raises(MalformedInput, match="custodian_fingerprints"):
        parse_toml(POLICY_TOML.format(version=2) + "\n[records]\ncustodian_fingerprints = []\n")
