"""Aides and delegation (issue 8 item 5): a principal's signed, policy-limited, revocable and
recorded grant lets an aide read and answer; the counterpart sees "sent by <aide> for
<principal>"; real server on loopback, real devices, records opened with the custodian key."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

import pytest
from harness import CUSTODIAN, connect, start_server
from processes import register_principal

from hotline.client.delegation import answer_for, grant_aide, list_aides, revoke_aide
from hotline.client.delegation_view import fetch_aides, label
from hotline.client.device import HotlineClient
from hotline.crypto.identity import IdentityKey
from hotline.policy.grants import open_grant, sign_grant
from hotline.records.sealing import open_record
from hotline.server import delegation as server_delegation
from hotline.server.embedded import start_embedded
from hotline.store.delegation_base import GrantRow
from hotline.wire.delegation import DelegationGrant, GrantUpload
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import BadSignature, MalformedInput, NotDelegated


def records(db: Path) -> list:
    with sqlite3.connect(db) as conn:
        leaves = [bytes(r[0]) for r in conn.execute("SELECT leaf FROM log_entries ORDER BY idx")]
    return [open_record(CUSTODIAN, leaf) for leaf in leaves]


async def trio(make_principal) -> tuple[HotlineClient, HotlineClient, HotlineClient]:
    """The President, the chief of staff (an aide, a contact of hers) and a counterpart."""
    potus = await make_principal("potus", "President")
    chief = await make_principal("chief", "Chief of Staff")
    pm = await make_principal("pm", "Prime Minister")
    await connect(potus, chief)
    await connect(pm, potus)
    return potus, chief, pm


def texts(client: HotlineClient, a: str, b: str) -> list:
    from hotline.client.transcript import conversation_id

    conversation = conversation_id(a, b)
    return [m for m in client.keystore.history() if m.conversation == conversation]


async def test_aide_reads_and_answers_labelled_and_recorded_on_both(
    make_principal, live_server
) -> None:
    potus, chief, pm = await trio(make_principal)
    issued = await grant_aide(potus, chief.handle, days=7)
    assert [g.aide for g in list_aides(potus)] == [chief.handle]
    await chief.sync()  # takes the grant and the President's pinned counterparts

    await pm.send_text(potus.handle, "Can we speak tomorrow?")
    await chief.sync()
    (read,) = texts(chief, potus.handle, pm.handle)
    assert (read.sender, read.text) == (pm.handle, "Can we speak tomorrow?")

    sent = await answer_for(chief, potus.handle, pm.handle, "The President will call at 9.")
    assert sent.on_behalf_of == potus.handle and sent.record_index >= 0
    events = await pm.sync()
    shown = [e for e in events if e.kind == "message"]
    assert [(e.text, e.label) for e in shown] == [
        ("The President will call at 9.", f"sent by {chief.handle} for {potus.handle}")
    ]
    answer = pm.history(potus.handle)[-1]
    assert (answer.sender, answer.on_behalf_of) == (chief.handle, potus.handle)
    assert label(answer) == f"sent by {chief.handle} for {potus.handle}"

    await potus.sync()  # the principal sees what was said in her name
    mine = [m for m in potus.history(pm.handle) if m.sender == chief.handle]
    assert [(m.text, m.outgoing, m.on_behalf_of) for m in mine] == [
        ("The President will call at 9.", True, potus.handle)
    ]

    await pm.flush_records()
    opened = records(live_server.db_path)
    said = [r for r in opened if r.kind == "message" and r.body == sent.text]
    assert {(r.side, r.principal, r.sender, r.detail.get("on_behalf_of")) for r in said} == {
        ("sent", chief.handle, chief.handle, potus.handle),
        ("received", pm.handle, chief.handle, potus.handle),
    }
    granted = [r for r in opened if r.kind == "delegation" and r.side == "local"]
    assert [(r.principal, r.recipients, r.detail["event"]) for r in granted] == [
        (potus.handle, [chief.handle], "granted")
    ]
    assert granted[0].detail["grant_id"] == issued.grant_id


async def test_aide_answer_waits_in_the_outbox_while_the_server_is_down(tmp_path: Path) -> None:
    """An aide's answer takes the ordinary send path: written during an outage it is kept
    ("sending") and delivered once the server is back, labelled and recorded on both sides."""
    live, stop = await start_server(tmp_path / "server.db")
    url, db = live.config.database_url, live.db_path
    clients = [
        await register_principal(url, live.url, f"{name}@{live.config.domain}", tmp_path / name)
        for name in ("potus", "chief", "pm")
    ]
    potus, chief, pm = clients
    running = stop
    try:
        await connect(potus, chief)
        await connect(pm, potus)
        await grant_aide(potus, chief.handle)
        await chief.sync()
        await answer_for(chief, potus.handle, pm.handle, "Noted.")  # sessions and lists known
        running = None
        await stop()

        queued = await answer_for(chief, potus.handle, pm.handle, "The President will call at 9.")
        assert (queued.status, queued.on_behalf_of) == ("sending", potus.handle)
        assert [i.message_id for i in chief.keystore.load().outbox] == [queued.message_id]

        port = int(live.url.rpartition(":")[2])
        running = (await start_embedded(live.config, port=port)).stop
        assert await chief.sync() == []
        assert chief.keystore.load().outbox == []
        (sent,) = [m for m in texts(chief, potus.handle, pm.handle) if m.text == queued.text]
        assert (sent.status, sent.on_behalf_of) == ("sent", potus.handle)
        assert sent.record_index >= 0

        shown = [e for e in await pm.sync() if e.kind == "message"]
        assert [(e.text, e.label) for e in shown] == [
            ("Noted.", f"sent by {chief.handle} for {potus.handle}"),
            (queued.text, f"sent by {chief.handle} for {potus.handle}"),
        ]
        await pm.flush_records()
        said = [r for r in records(db) if r.kind == "message" and r.body == queued.text]
        assert {(r.side, r.principal, r.sender, r.detail.get("on_behalf_of")) for r in said} == {
            ("sent", chief.handle, chief.handle, potus.handle),
            ("received", pm.handle, chief.handle, potus.handle),
        }
    finally:
        for client in clients:
            await client.close()
        if running is not None:
            await running()


async def test_revocation_stops_reading_and_answering(
    make_principal, live_server, monkeypatch
) -> None:
    potus, chief, pm = await trio(make_principal)
    await grant_aide(potus, chief.handle)
    await chief.sync()
    await pm.send_text(potus.handle, "before")
    await chief.sync()

    await revoke_aide(potus, chief.handle)
    opened = records(live_server.db_path)
    local = [r for r in opened if r.kind == "delegation" and r.side == "local"]
    assert [r.detail["event"] for r in local] == ["granted", "revoked"]
    await pm.send_text(potus.handle, "after")  # refreshed: no longer for the aide's devices
    # The aide has not synced yet (still believes it holds the grant): the server refuses.
    with pytest.raises(NotDelegated):
        await answer_for(chief, potus.handle, pm.handle, "still here?")
    await chief.sync()
    assert [m.text for m in texts(chief, potus.handle, pm.handle)] == ["before"]
    with pytest.raises(NotDelegated):  # now the aide's own device refuses too
        await answer_for(chief, potus.handle, pm.handle, "still here?")

    # Even if the server were bypassed, the counterpart's device refuses the revoked grant.
    async with chief.keystore.transaction() as state:  # a modified aide client...
        state.delegations = {**state.delegations, **_held_again(potus, chief)}

    def no_check(*args: object, **kwargs: object) -> None:
        return None

    monkeypatch.setattr(server_delegation, "check_on_behalf", no_check)  # ...and server
    await answer_for(chief, potus.handle, pm.handle, "forged after revocation")
    events = await pm.sync()
    assert [m.text for m in pm.history(potus.handle) if m.sender == chief.handle] == []
    assert any(e.kind == "warning" for e in events)


def _held_again(potus: HotlineClient, chief: HotlineClient) -> dict:
    """The revoked grant, put back on the aide's device (what a modified client would do)."""
    from hotline.client.delegation_state import HeldDelegation

    issued = potus.keystore.load().issued_grants[chief.handle]
    return {
        potus.handle: HeldDelegation(
            principal=potus.handle,
            grant_id=issued.grant_id,
            rights=issued.rights,
            expires_at=issued.expires_at,
            grant=issued.grant,
        )
    }


async def test_forged_grant_refused(make_principal, live_server) -> None:
    potus, chief, pm = await trio(make_principal)
    potus_key = potus.identity().public.to_bytes()
    forged = DelegationGrant(
        v=1,
        grant_id="forged-grant",
        principal=potus.handle,
        principal_identity_key=b64e(potus_key),
        aide=chief.handle,
        aide_identity_key=b64e(chief.identity().public.to_bytes()),
        rights=["read", "answer"],
        issued_at=int(time.time()),
        expires_at=int(time.time()) + 3600,
    )
    signed = sign_grant(chief.identity(), forged)  # signed by the aide itself
    with pytest.raises(BadSignature):
        open_grant(signed, potus_key, potus.handle)
    await chief._ensure_login()
    with pytest.raises(MalformedInput):  # not the uploader's own grant
        await chief.server.call("POST", "/v1/delegations", GrantUpload(grant=signed))
    # A server that publishes it anyway gains nothing: the counterpart does not believe it.
    await live_server.store.put_grant(
        GrantRow(
            grant_id="forged-grant",
            principal=potus.handle,
            aide=chief.handle,
            payload=b64d(signed.payload),
            signature=b64d(signed.signature),
            expires_at=time.time() + 3600,
            created_at=time.time(),
        ),
        max_active=8,
        now=time.time(),
    )
    async with pm.keystore.transaction() as state:
        view = await fetch_aides(pm, state, potus.handle)
    assert view.aides == []


async def test_grant_expiry(make_principal, live_server) -> None:
    potus, chief, pm = await trio(make_principal)
    await grant_aide(potus, chief.handle, seconds=3)
    await chief.sync()
    await answer_for(chief, potus.handle, pm.handle, "in time")
    await asyncio.sleep(3.2)
    with pytest.raises(NotDelegated):
        await answer_for(chief, potus.handle, pm.handle, "too late")
    real = chief.clock
    chief.clock = lambda: real() - 60  # a client that ignores expiry: the server refuses
    with pytest.raises(NotDelegated):
        await answer_for(chief, potus.handle, pm.handle, "too late")
    events = await pm.sync()
    assert [m.text for m in pm.history(potus.handle) if m.sender == chief.handle] == ["in time"]
    assert not [e for e in events if e.kind == "warning"]


async def test_identity_key_of_grant_is_the_aides(make_principal) -> None:
    potus, chief, _ = await trio(make_principal)
    other = IdentityKey.generate()
    grant = DelegationGrant(
        v=1,
        grant_id="wrong-aide-key",
        principal=potus.handle,
        principal_identity_key=b64e(potus.identity().public.to_bytes()),
        aide=chief.handle,
        aide_identity_key=b64e(other.public.to_bytes()),
        rights=["read"],
        issued_at=int(time.time()),
        expires_at=int(time.time()) + 3600,
    )
    with pytest.raises(MalformedInput):
        await potus.server.call(
            "POST", "/v1/delegations", GrantUpload(grant=sign_grant(potus.identity(), grant))
        )
