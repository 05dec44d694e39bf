"""Small groups on one home server (issue 8 item 4): real server on loopback, real devices.

Three principals: potus (the admin) is a contact of vp and sos; vp and sos are *not* contacts
of each other and reach each other only as members of the group.
"""

from __future__ import annotations

import sqlite3

import httpx
import msgspec
import pytest
from harness import RouteTransactions, connect, start_server
from test_capture import log_records

from hotline.client.device import HotlineClient
from hotline.client.group_roster import sign_roster
from hotline.client.groups import roster_of
from hotline.client.sending import send_envelope
from hotline.crypto.identity import IdentityKey
from hotline.crypto.megolm import OutboundGroup
from hotline.wire.api import InboxItem
from hotline.wire.codec import Signed
from hotline.wire.encoding import b64d, b64e
from hotline.wire.groups import GroupMember, GroupPayload


async def cabinet(make_principal) -> tuple[HotlineClient, HotlineClient, HotlineClient, str]:
    potus = await make_principal("potus")
    vp = await make_principal("vp")
    sos = await make_principal("sos")
    await connect(potus, vp)
    await connect(potus, sos)
    group = await potus.groups.create("Cabinet", [vp.handle, sos.handle])
    for member in (vp, sos):
        events = await member.sync()
        assert [e.kind for e in events if e.kind == "group"] == ["group"]
    return potus, vp, sos, group.group_id


def texts(client: HotlineClient, group_id: str) -> list[tuple[str, str]]:
    return [(m.sender, m.text) for m in client.groups.history(group_id)]


async def test_every_member_gets_each_message_once_and_it_is_recorded_once(
    make_principal, live_server
) -> None:
    potus, vp, sos, gid = await cabinet(make_principal)
    sent = await vp.groups.send("Cabinet", "Briefing at nine.")  # vp and sos are no contacts
    assert sent.record_index >= 0 and sent.warnings == []
    for client in (potus, sos):
        events = [e for e in await client.sync() if e.kind == "group"]
        assert [(e.contact, e.text) for e in events] == [(vp.handle, "Briefing at nine.")]
        assert [e for e in await client.sync() if e.kind == "group"] == []  # nothing twice
    await potus.groups.send(gid, "Agreed.")
    await vp.sync()
    await sos.sync()
    expected = [(vp.handle, "Briefing at nine."), (potus.handle, "Agreed.")]
    for client in (potus, vp, sos):
        assert texts(client, gid) == expected
    records = [r for r in log_records(live_server.db_path) if r.conversation == f"group:{gid}"]
    briefing = [(r.side, r.principal) for r in records if r.body == "Briefing at nine."]
    assert sorted(briefing) == sorted(
        [("sent", vp.handle), ("received", potus.handle), ("received", sos.handle)]
    )  # one sealed record by the sender, one by each receiving member: not one per recipient
    roster_records = [r for r in records if r.kind == "group"]
    assert {r.principal for r in roster_records} == {potus.handle, vp.handle, sos.handle}
    # Key shares are on the record as events, but the Megolm session key itself never is.
    everything = log_records(live_server.db_path)
    shares = [r for r in everything if r.body.startswith("group_key ")]
    assert shares and all(r.envelope == "" for r in shares)
    for record in everything:
        if record.envelope:
            group = msgspec.json.decode(b64d(record.envelope)).get("group") or {}
            assert not group.get("session_key")
    with sqlite3.connect(live_server.db_path) as conn:
        blob = b"".join(bytes(r[0]) for r in conn.execute("SELECT leaf FROM log_entries"))
    assert b"Briefing" not in blob


async def test_group_send_is_one_read_and_one_write_whatever_the_size(
    make_principal, live_server
) -> None:
    """The route: session lookup, one read for every membership and device-set check, one
    write (mailbox items, the record, the log tail and the receipt's tree head signed over
    it): 3 transactions for 3 members as for 4 (it was 3 more per member, and the head was a
    write of its own)."""
    potus, vp, _sos, gid = await cabinet(make_principal)
    cia = await make_principal("cia")
    await connect(potus, cia)
    counted = RouteTransactions(live_server, potus, "/v1/groups/messages")
    try:
        await potus.groups.send(gid, "Three of us.")
        await potus.groups.add(gid, [cia.handle])
        await cia.sync()
        await potus.groups.send(gid, "Four of us.")
    finally:
        counted.remove()
    assert counted.counts == [3, 3]
    await vp.sync()
    await cia.sync()
    assert texts(vp, gid) == [(potus.handle, "Three of us."), (potus.handle, "Four of us.")]
    assert texts(cia, gid) == [(potus.handle, "Four of us.")]


async def test_replayed_megolm_message_is_dropped(make_principal, live_server) -> None:
    potus, _vp, sos, gid = await cabinet(make_principal)
    await potus.groups.send(gid, "Once only.")
    await sos.login()
    waiting = await live_server.store.pending(sos.device_id)
    megolm = [r for r in waiting if r.kind == "megolm"]
    assert len(megolm) == 1
    await sos.sync()
    replay = InboxItem(
        seq=10**9,
        message_id="replayed",
        kind="megolm",
        sender_handle=potus.handle,
        sender_device=potus.device_id,
        body=b64e(megolm[0].body),
        created_at=0.0,
    )
    events = await sos.process([replay])
    assert [e for e in events if e.kind == "group"] == []
    assert texts(sos, gid) == [(potus.handle, "Once only.")]


async def test_non_member_refused_by_server(make_principal, live_server) -> None:
    _potus, vp, _sos, gid = await cabinet(make_principal)
    stranger = await make_principal("spy")
    await stranger.login()
    body = b64e(b'{"v":1,"group_id":"' + gid.encode() + b'","session_id":"x","ciphertext":""}')
    async with httpx.AsyncClient(base_url=live_server.url) as http:
        reply = await http.post(
            "/v1/groups/messages",
            headers={"authorization": f"Bearer {stranger.server.token}"},
            json={
                "group_id": gid,
                "message_id": "intruder",
                "body": body,
                "recipients": [{"to": vp.handle, "device_ids": [vp.device_id]}],
            },
        )
    assert reply.status_code == 403 and reply.json()["code"] == "not_a_group_member"
    with sqlite3.connect(live_server.db_path) as conn:
        assert conn.execute(
            "SELECT count(*) FROM deliveries WHERE message_id = 'intruder'"
        ).fetchone() == (0,)


async def test_group_peer_may_not_send_direct_messages(make_principal) -> None:
    _potus, vp, sos, _gid = await cabinet(make_principal)
    async with vp._tx() as (state, account):  # a modified client
        await send_envelope(vp, state, account, sos.handle, "text", text="psst")
    events = await sos.sync()
    assert any("not a contact" in e.text for e in events if e.kind == "warning")
    assert all(m.text != "psst" for m in sos.keystore.history())


async def forged_roster_events(
    sender: HotlineClient, to: HotlineClient, gid: str, **changes: object
) -> list[str]:
    """``sender`` signs a changed roster with its own key and sends it to ``to``."""
    state = sender.keystore.load()
    current = roster_of(state.groups[gid])
    identity = IdentityKey.from_bytes(b64d(state.identity_key))
    fields = {
        "version": current.version + 1,
        "signer": sender.handle,
        "signer_key": b64e(identity.public.to_bytes()),
        "action": "add",
    }
    fields.update(changes)

    forged = sign_roster(identity, msgspec.structs.replace(current, **fields))
    async with sender._tx() as (st, account):
        await send_envelope(
            sender,
            st,
            account,
            to.handle,
            "group_roster",
            group=GroupPayload(group_id=gid, roster=forged),
        )
    return [e.text for e in await to.sync() if e.kind == "warning"]


async def test_roster_forgery_and_rollback_refused(make_principal) -> None:
    potus, vp, sos, gid = await cabinet(make_principal)
    spy = IdentityKey.generate()
    extra = [GroupMember(handle="spy@washington.test", identity_key=b64e(spy.public.to_bytes()))]
    members = list(roster_of(sos.keystore.load().groups[gid]).members) + extra
    warnings = await forged_roster_events(vp, sos, gid, members=members)  # vp is no admin
    assert any("roster_refused" in w for w in warnings)
    assert sos.keystore.load().groups[gid].version == 1
    # A member may sign its own departure, but nothing else with it.
    departed = [m for m in members if m.handle != vp.handle]
    warnings = await forged_roster_events(vp, sos, gid, action="leave", members=departed)
    assert any("roster_refused" in w for w in warnings)
    v1 = sos.keystore.load().groups[gid]
    await vp.groups.leave(gid)
    for client in (potus, sos):
        await client.sync()
        group = client.keystore.load().groups[gid]
        assert group.version == 2 and vp.handle not in [m.handle for m in roster_of(group).members]
    # Rollback: potus's roster v1 again (replayed by a hostile server or relayed by anyone).
    async with potus._tx() as (state, account):
        roster = Signed(payload=v1.roster, signature=v1.signature)
        await send_envelope(
            potus,
            state,
            account,
            sos.handle,
            "group_roster",
            group=GroupPayload(group_id=gid, roster=roster),
        )
    warnings = [e.text for e in await sos.sync() if e.kind == "warning"]
    assert any("stale_version" in w for w in warnings)
    assert sos.keystore.load().groups[gid].version == 2


@pytest.mark.parametrize("count", [51])
def test_roster_over_fifty_members_does_not_decode(count: int) -> None:
    from hotline.client.group_roster import open_roster
    from hotline.wire.codec import Signed, encode
    from hotline.wire.errors import MalformedInput

    identity = IdentityKey.generate()
    key = b64e(identity.public.to_bytes())
    payload = encode(
        {
            "v": 1,
            "group_id": "g" * 24,
            "name": "Too many",
            "version": 1,
            "members": [{"handle": f"m{i}@x.test", "identity_key": key} for i in range(count)],
            "admins": ["m0@x.test"],
            "signer": "m0@x.test",
            "signer_key": key,
            "action": "create",
            "issued_at": 0,
        }
    )
    signed = Signed(payload=b64e(payload), signature=b64e(identity.sign(b"x", payload)))
    with pytest.raises(MalformedInput):
        open_roster(signed)


GROUP_POLICY = """
organisation = "Government of Testland"
version = 1
issued_at = 1800000000
max_group_members = 2
records_banner = "Recorded under the Testland Records Act"
"""


async def test_group_size_limit_enforced_by_client_and_server(tmp_path) -> None:
    from test_policy import ORG, enrol, policy_records

    from hotline.client.group_roster import sign_roster
    from hotline.policy.document import parse_toml, sign_policy
    from hotline.policy.keys import public_bytes
    from hotline.wire.errors import ForbiddenByPolicy
    from hotline.wire.groups import GroupMembershipUpload, GroupRoster

    policy = sign_policy(parse_toml(GROUP_POLICY), ORG)
    server, stop = await start_server(tmp_path / "s.db", policy=policy, org_key=public_bytes(ORG))
    clients = []
    try:
        potus, vp, sos = [await enrol(server, tmp_path, n) for n in ("potus", "vp", "sos")]
        clients += [potus, vp, sos]
        await connect(potus, vp)
        await connect(potus, sos)
        with pytest.raises(ForbiddenByPolicy):
            await potus.groups.create("Cabinet", [vp.handle, sos.handle])
        await potus.groups.create("Pair", [vp.handle])  # two members is allowed
        # A modified client skips its own check: the server refuses and records the refusal.
        state = potus.keystore.load()
        identity = IdentityKey.from_bytes(b64d(state.identity_key))
        members = [
            GroupMember(handle=c.handle, identity_key=b64e(c.identity().public.to_bytes()))
            for c in (potus, vp, sos)
        ]
        roster = GroupRoster(
            v=1,
            group_id="too-big-group-000001",
            name="Cabinet",
            version=1,
            members=members,
            admins=[potus.handle],
            signer=potus.handle,
            signer_key=members[0].identity_key,
            action="create",
            issued_at=0,
        )
        upload = GroupMembershipUpload(roster=sign_roster(identity, roster))
        with pytest.raises(ForbiddenByPolicy):
            await potus.server.call("PUT", "/v1/groups", upload)
        refused = [d for d in policy_records(server.db_path) if d.get("event") == "refused"]
        assert [d["rule"] for d in refused] == ["max_group_members"]
    finally:
        for client in clients:
            await client.close()
        await stop()


async def test_new_device_reads_what_is_sent_after_it_joined(make_principal, tmp_path) -> None:
    from harness import FAST_SCRYPT, PASSPHRASE

    from hotline.client.linked_devices import provision_device

    potus, vp, sos, gid = await cabinet(make_principal)
    await potus.groups.send(gid, "Before the new device.")
    await vp.sync()
    tablet = await provision_device(vp, tmp_path / "vp-tablet", PASSPHRASE, scrypt=FAST_SCRYPT)
    try:
        await potus.groups.send(gid, "After the new device.")
        await sos.groups.send(gid, "Welcome.")
        events = [e for e in await tablet.sync() if e.kind == "group"]
        assert [e.text for e in events] == ["After the new device.", "Welcome."]
        await vp.sync()
        assert [m.text for m in vp.groups.history(gid)] == [
            "Before the new device.",
            "After the new device.",
            "Welcome.",
        ]
    finally:
        await tablet.close()


def device_list_fetches(client: HotlineClient) -> list[str]:
    """The principals whose device lists ``client`` fetches from now on (an httpx hook that
    only observes; ServerApi keeps its httpx.AsyncClient in ``_http``)."""
    fetched: list[str] = []

    async def note(request: httpx.Request) -> None:
        parts = request.url.path.split("/")  # /v1/principals/{handle}/devices
        if parts[-1] == "devices" and parts[-3] == "principals":
            fetched.append(parts[-2])

    hooks = client.server._http.event_hooks
    client.server._http.event_hooks = {**hooks, "request": [*hooks["request"], note]}
    return fetched


def outbound_session(client: HotlineClient, gid: str) -> str:
    group = client.keystore.load().groups[gid]
    return OutboundGroup.from_pickle(group.outbound, client.keystore.pickle_key).session_id


async def test_group_sends_use_cached_device_lists_until_the_server_says_stale(
    make_principal, tmp_path
) -> None:
    """Steady state: no device list is fetched. A member's new or removed device: this server
    refuses the stale device set, the sender fetches that member's list alone and sends again
    (sharing the key with the new device; rotating the session without the removed one)."""
    from harness import FAST_SCRYPT, PASSPHRASE

    from hotline.client.linked_devices import provision_device, remove_device

    potus, vp, _sos, gid = await cabinet(make_principal)
    fetched = device_list_fetches(potus)
    for n in range(3):
        await potus.groups.send(gid, f"Steady {n}.")
    assert fetched == []
    tablet = await provision_device(vp, tmp_path / "vp-tablet", PASSPHRASE, scrypt=FAST_SCRYPT)
    try:
        await potus.groups.send(gid, "Hello, tablet.")
        assert fetched == [vp.handle]
        assert [e.text for e in await tablet.sync() if e.kind == "group"] == ["Hello, tablet."]
        await potus.groups.send(gid, "Steady again.")
        assert fetched == [vp.handle]
        session = outbound_session(potus, gid)
        await remove_device(vp, tablet.device_id)
        await potus.groups.send(gid, "The tablet is gone.")
        assert fetched == [vp.handle, vp.handle]
        assert outbound_session(potus, gid) != session  # rotated: the tablet has no new key
        shared = potus.keystore.load().groups[gid].shared_with
        assert f"{vp.handle}/{tablet.device_id}" not in shared
    finally:
        await tablet.close()
    await vp.sync()
    assert [t for _, t in texts(vp, gid)] == [
        "Steady 0.",
        "Steady 1.",
        "Steady 2.",
        "Hello, tablet.",
        "Steady again.",
        "The tablet is gone.",
    ]


async def test_group_on_postgresql(tmp_path) -> None:
    """The same flow against a server whose store is PostgreSQL (skips without it)."""
    import time

    from harness import CUSTODIAN, FAST_SCRYPT, PASSPHRASE, archive_settings
    from processes import scratch_postgres

    from hotline.records.sealing import open_record
    from hotline.server.admin import issue_enrolment
    from hotline.server.config import ServerConfig
    from hotline.server.embedded import start_embedded

    async with scratch_postgres("hotline_groups") as url:
        config = ServerConfig(
            domain="washington.test", database_url=url, archive=archive_settings()
        )
        server = await start_embedded(config)
        clients: list[HotlineClient] = []
        try:
            for name in ("potus", "vp", "sos"):
                handle = f"{name}@washington.test"
                token = await issue_enrolment(server.store, handle, time.time())
                clients.append(
                    await HotlineClient.register(
                        tmp_path / name,
                        PASSPHRASE,
                        server_url=server.url,
                        enrolment_token=token,
                        handle=handle,
                        display_name=name,
                        scrypt=FAST_SCRYPT,
                    )
                )
            potus, vp, sos = clients
            await connect(potus, vp)
            await connect(potus, sos)
            group = await potus.groups.create("Cabinet", [vp.handle, sos.handle])
            await vp.sync()
            await sos.sync()
            await sos.groups.send(group.group_id, "On PostgreSQL.")
            for client in (potus, vp):
                events = [e for e in await client.sync() if e.kind == "group"]
                assert [e.text for e in events] == ["On PostgreSQL."]
                assert [e for e in await client.sync() if e.kind == "group"] == []
            entries = await server.store.log_entries(0, await server.store.log_size())
            bodies = [open_record(CUSTODIAN, e.leaf) for e in entries]
            assert sorted(r.side for r in bodies if r.body == "On PostgreSQL.") == [
                "received",
                "received",
                "sent",
            ]
        finally:
            for client in clients:
                await client.close()
            await server.stop()
