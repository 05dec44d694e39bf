"""Small groups across two sovereign home servers (issue 8 item 4), real devices on loopback.

washington.test: potus (two devices) and vp; ottawa.test: pm. potus administers the group and
is a contact of both; vp and pm are not contacts of each other.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from harness import CUSTODIAN, FAST_SCRYPT, PASSPHRASE, connect
from test_federation import Government, governments, principal

from hotline.client.device import HotlineClient
from hotline.client.events import ClientEvent
from hotline.client.groups import roster_of
from hotline.client.linked_devices import provision_device, remove_device
from hotline.crypto.megolm import InboundGroup
from hotline.records.sealing import open_record
from hotline.wire.codec import Signed, decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import DecryptionFailed, NotAGroupMember
from hotline.wire.groups import (
    GroupCiphertext,
    GroupMembershipUpload,
    GroupRecipient,
    GroupSendRequest,
)

__all__ = ["governments"]  # the two-government fixture of test_federation


@dataclass
class Summit:
    washington: Government
    ottawa: Government
    potus: HotlineClient
    phone: HotlineClient  # potus's second device
    vp: HotlineClient
    pm: HotlineClient
    gid: str


async def settle(*clients: HotlineClient, until: object = None, timeout: float = 10) -> None:
    """Sync every client until ``until()`` holds (federation is asynchronous)."""
    deadline = time.monotonic() + timeout
    while True:
        for client in clients:
            await client.sync()
        if until is None or until() or time.monotonic() > deadline:  # type: ignore[operator]
            return
        await asyncio.sleep(0.05)


async def group_events(client: HotlineClient, count: int, timeout: float = 10) -> list[ClientEvent]:
    events: list[ClientEvent] = []
    deadline = time.monotonic() + timeout
    while len(events) < count and time.monotonic() < deadline:
        events += [e for e in await client.sync() if e.kind == "group" and e.message_id]
        if len(events) < count:
            await asyncio.sleep(0.05)
    return events


@pytest.fixture
async def summit(governments, tmp_path: Path) -> AsyncIterator[Summit]:
    washington, ottawa = governments
    potus = await principal(washington, "potus", tmp_path / "potus")
    vp = await principal(washington, "vp", tmp_path / "vp")
    pm = await principal(ottawa, "pm", tmp_path / "pm")
    clients = [potus, vp, pm]
    try:
        await connect(potus, vp)
        await connect(potus, pm)
        await settle(pm, potus, until=lambda: potus.contact(pm.handle).status == "active")
        phone = await provision_device(potus, tmp_path / "phone", PASSPHRASE, scrypt=FAST_SCRYPT)
        clients.append(phone)
        group = await potus.groups.create("Summit", [vp.handle, pm.handle])
        gid = group.group_id
        await settle(
            vp, pm, phone, until=lambda: all(gid in c.keystore.load().groups for c in (vp, pm))
        )
        assert all(gid in c.keystore.load().groups for c in (vp, pm, phone))
        yield Summit(washington, ottawa, potus, phone, vp, pm, gid)
    finally:
        for client in clients:
            await client.close()


def group_records(gov: Government, gid: str) -> list[tuple[str, str, str, str]]:
    assert gov.server
    with sqlite3.connect(gov.server.db_path) as conn:
        leaves = [bytes(r[0]) for r in conn.execute("SELECT leaf FROM log_entries ORDER BY idx")]
    records = [open_record(CUSTODIAN, leaf) for leaf in leaves]  # the custodian opens them
    return sorted(
        (r.side, r.principal, r.device, r.body)
        for r in records
        if r.conversation == f"group:{gid}" and r.kind == "message"
    )


async def test_group_across_two_servers_delivers_once_and_every_archive_holds_it(
    summit: Summit,
) -> None:
    s = summit
    await s.pm.groups.send(s.gid, "From Ottawa.")
    for client in (s.potus, s.phone, s.vp):
        events = await group_events(client, 1)
        assert [(e.contact, e.text) for e in events] == [(s.pm.handle, "From Ottawa.")]
    await s.potus.groups.send(s.gid, "From Washington.")
    for client in (s.pm, s.phone, s.vp):
        events = await group_events(client, 1)
        assert [(e.contact, e.text) for e in events] == [(s.potus.handle, "From Washington.")]
    await asyncio.sleep(0.3)  # anything duplicated would have arrived by now
    for client in (s.potus, s.phone, s.vp, s.pm):
        assert await group_events(client, 1, timeout=0.2) == []
    assert [m.text for m in s.vp.groups.history(s.gid)] == ["From Ottawa.", "From Washington."]
    await settle(s.potus, s.phone, s.vp, s.pm)  # flush the received records
    potus, phone, vp, pm = ((c.handle, c.device_id) for c in (s.potus, s.phone, s.vp, s.pm))
    # Each sent message is sealed once by its sender; each receiving device seals its own.
    # (potus's phone shows potus's own message without a second record of it.)
    assert group_records(s.washington, s.gid) == sorted(
        [
            ("received", *potus, "From Ottawa."),
            ("received", *phone, "From Ottawa."),
            ("received", *vp, "From Ottawa."),
            ("sent", *potus, "From Washington."),
            ("received", *vp, "From Washington."),
        ]
    )
    assert group_records(s.ottawa, s.gid) == sorted(
        [("sent", *pm, "From Ottawa."), ("received", *pm, "From Washington.")]
    )


def cannot_decrypt(client: HotlineClient, gid: str, body: bytes) -> None:
    """None of ``client``'s Megolm sessions opens ``body`` (a GroupCiphertext)."""
    message = decode(body, GroupCiphertext)
    group = client.keystore.load().groups[gid]
    assert message.session_id not in group.inbound  # the new key never reached it
    for session in group.inbound.values():
        inbound = InboundGroup.from_pickle(session.pickle, client.keystore.pickle_key)
        with pytest.raises(DecryptionFailed):
            inbound.decrypt(b64d(message.ciphertext))


async def waiting_megolm(gov: Government, device_id: str) -> list[bytes]:
    assert gov.server
    return [r.body for r in await gov.server.store.pending(device_id) if r.kind == "megolm"]


async def test_removed_device_and_removed_member_cannot_read_later_messages(
    summit: Summit,
) -> None:
    s = summit
    await s.potus.groups.send(s.gid, "Before.")
    for client in (s.pm, s.phone, s.vp):
        assert len(await group_events(client, 1)) == 1
    # The phone is lost: potus removes it with the ordinary device-removal flow.
    await remove_device(s.potus, s.phone.device_id)
    await s.pm.groups.send(s.gid, "After the phone was removed.")
    deadline = time.monotonic() + 10
    while not await waiting_megolm(s.washington, s.vp.device_id):
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    (copy,) = await waiting_megolm(s.washington, s.vp.device_id)
    assert await waiting_megolm(s.washington, s.phone.device_id) == []
    cannot_decrypt(s.phone, s.gid, copy)
    for client in (s.potus, s.vp):
        events = await group_events(client, 1)
        assert [e.text for e in events] == ["After the phone was removed."]
    # pm is removed from the group; its devices get no later key and nothing else.
    old_roster = s.pm.keystore.load().groups[s.gid]
    await s.potus.groups.remove(s.gid, s.pm.handle)
    await settle(s.pm, s.vp, until=lambda: not s.pm.keystore.load().groups[s.gid].active)
    assert not s.pm.keystore.load().groups[s.gid].active
    assert s.pm.handle not in [
        m.handle for m in roster_of(s.vp.keystore.load().groups[s.gid]).members
    ]
    await s.potus.groups.send(s.gid, "After pm was removed.")
    (copy,) = await waiting_megolm(s.washington, s.vp.device_id)
    assert [e.text for e in await group_events(s.vp, 1)] == ["After pm was removed."]
    await asyncio.sleep(0.3)
    assert await group_events(s.pm, 1, timeout=0.3) == []
    cannot_decrypt(s.pm, s.gid, copy)
    with pytest.raises(NotAGroupMember):
        await s.pm.groups.send(s.gid, "Still here?")
    # A modified client re-joins on its own server: the members' server refuses it anyway.
    roster = Signed(payload=old_roster.roster, signature=old_roster.signature)
    await s.pm.server.call("PUT", "/v1/groups", GroupMembershipUpload(roster=roster))
    fake = GroupCiphertext(v=1, group_id=s.gid, session_id="s", ciphertext="")
    await s.pm.server.call(
        "POST",
        "/v1/groups/messages",
        _with_record(s.pm, s.gid, fake, s.vp),
    )
    deadline = time.monotonic() + 10
    warnings: list[str] = []
    while not warnings and time.monotonic() < deadline:
        warnings = [e.text for e in await s.pm.sync() if e.kind == "warning"]
        await asyncio.sleep(0.05)
    assert any("not_a_group_member" in w for w in warnings)
    assert await waiting_megolm(s.washington, s.vp.device_id) == []  # nothing relayed


def _with_record(
    pm: HotlineClient, gid: str, fake: GroupCiphertext, vp: HotlineClient
) -> GroupSendRequest:
    from hotline.client.capture import build_record

    _, leaf = build_record(
        pm.keystore.load(),
        kind="message",
        side="sent",
        now_ms=1,
        sender=pm.handle,
        recipients=[vp.handle],
        body="ghost",
    )
    return GroupSendRequest(
        group_id=gid,
        message_id="ghost",
        body=b64e(encode(fake)),
        recipients=[GroupRecipient(to=vp.handle, device_ids=[vp.device_id])],
        record=b64e(leaf),
    )
