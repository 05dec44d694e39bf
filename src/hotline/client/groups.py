"""Small groups on the device: create, change the roster, send with Megolm (sans policy on
the server side, which checks again).

A group's messages are encrypted once with this device's outbound Megolm session
(``crypto.megolm``); its session key goes to every current member device over Olm (envelope
``group_key``) before the first message that needs it. The session is replaced (rotated)
when a member leaves or is removed, when any member's device list loses a device, after
``ROTATE_MESSAGES`` messages and after ``ROTATE_SECONDS``: a removed device never gets the new
key. Members' device lists are cached (those of members on other servers are fetched for
every message); a send this server refuses as addressed to a stale device set is sent again
after fetching the list it names. Roster changes are signed (``client.group_roster``), sent
to every member over Olm, captured as a record on this device, and uploaded to this
principal's own server, which then relays group traffic to it only from the roster's members.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from hotline.client import policy_pin
from hotline.client.capture import build_record, check_receipt, queue_record
from hotline.client.device_lists import devices_of
from hotline.client.events import ClientEvent
from hotline.client.group_roster import check_roster, open_roster, sign_roster
from hotline.client.group_state import GroupState, conversation_of
from hotline.client.sending import send_envelope
from hotline.client.state import ClientState, ContactState, MessageEntry, PendingRecord
from hotline.crypto.identity import IdentityKey
from hotline.crypto.megolm import OutboundGroup
from hotline.crypto.olm import DeviceAccount
from hotline.wire import api
from hotline.wire.codec import Signed, decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import (
    DeviceListMismatch,
    ForbiddenByPolicy,
    HotlineError,
    MalformedInput,
    NotAGroupMember,
    UnknownGroup,
)
from hotline.wire.groups import (
    MAX_GROUP_MEMBERS,
    GroupCiphertext,
    GroupMember,
    GroupMembershipUpload,
    GroupPayload,
    GroupRecipient,
    GroupRoster,
    GroupSendRequest,
    GroupText,
    RosterAction,
)
from hotline.wire.lists import DeviceKeys
from hotline.wire.records import RecordSide

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient

#: a new outbound session after this many messages
ROTATE_MESSAGES = 100
#: ... or when the session is this old
ROTATE_SECONDS = 7 * 24 * 3600
#: sends of one message at most: cached device lists, then the member the server named as
#: stale fetched again, then every member
SEND_ATTEMPTS = 3


def roster_of(group: GroupState) -> GroupRoster:
    return decode(b64d(group.roster), GroupRoster, what="group roster")


def member_limit(state: ClientState) -> int:
    """The organisation's ``max_group_members``. Raises ForbiddenByPolicy if groups are off."""
    policy = policy_pin.current(state)
    if policy is None:
        return MAX_GROUP_MEMBERS
    if not policy.features.groups:
        raise ForbiddenByPolicy("your organisation's policy does not allow groups", rule="groups")
    return policy.max_group_members


def pinned_key(state: ClientState, handle: str) -> str | None:
    """The identity key this device pinned for ``handle`` (itself or a contact), or None."""
    if handle == state.handle:
        return b64e(IdentityKey.from_bytes(b64d(state.identity_key)).public.to_bytes())
    contact = state.contacts.get(handle)
    if contact is None or contact.status == "removed":
        return None
    return contact.identity_key


class Groups:
    """The group API of one device (``client.groups``)."""

    def __init__(self, client: HotlineClient) -> None:
        self.client = client
        #: members the last roster change could not be sent to (shown by the CLI)
        self.warnings: list[str] = []

    # -- reading -----------------------------------------------------------------------------
    def all(self) -> list[GroupState]:
        return sorted(self.client.keystore.load().groups.values(), key=lambda g: g.name)

    def find(self, name: str) -> GroupState:
        """A group by id, or by a unique name or name prefix. Raises: UnknownGroup."""
        return _find(self.client.keystore.load(), name)

    def history(self, name: str) -> list[MessageEntry]:
        conversation = conversation_of(self.find(name).group_id)
        return [m for m in self.client.keystore.history() if m.conversation == conversation]

    # -- roster changes ----------------------------------------------------------------------
    async def create(self, name: str, members: list[str]) -> GroupState:
        """Create a group of me (its admin) and some of my contacts.

        Raises:
            UnknownContact, NotAContact: a member is not an active contact.
            ForbiddenByPolicy: groups are off, or too many members.
        """
        client = self.client
        await client._ensure_login()
        async with client._tx() as (state, account):
            listed = [self._me(state)] + [self._contact_member(state, m) for m in members]
            roster = self._roster(
                state, secrets.token_urlsafe(18), name, 1, listed, [state.handle], "create"
            )
            return await self._publish(state, account, roster, None)

    async def add(self, group_name: str, members: list[str]) -> GroupState:
        """Add contacts to a group I administer."""
        client = self.client
        await client._ensure_login()
        async with client._tx() as (state, account):
            current = roster_of(_find(state, group_name, active=True))
            known = {m.handle for m in current.members}
            added = [self._contact_member(state, m) for m in members]
            listed = list(current.members) + [m for m in added if m.handle not in known]
            roster = self._roster(
                state,
                current.group_id,
                current.name,
                current.version + 1,
                listed,
                list(current.admins),
                "add",
            )
            return await self._publish(state, account, roster, current)

    async def remove(self, group_name: str, member: str) -> GroupState:
        """Remove a member from a group I administer (their devices get no later key)."""
        client = self.client
        await client._ensure_login()
        async with client._tx() as (state, account):
            current = roster_of(_find(state, group_name, active=True))
            handle = _member_handle(current, member)
            if handle == state.handle:
                raise MalformedInput("to take yourself out, leave the group")
            roster = self._roster(
                state,
                current.group_id,
                current.name,
                current.version + 1,
                [m for m in current.members if m.handle != handle],
                [a for a in current.admins if a != handle],
                "remove",
            )
            return await self._publish(state, account, roster, current)

    async def leave(self, group_name: str) -> GroupState:
        """Leave a group (signed by me; every member's device rotates its key)."""
        client = self.client
        await client._ensure_login()
        async with client._tx() as (state, account):
            current = roster_of(_find(state, group_name, active=True))
            roster = self._roster(
                state,
                current.group_id,
                current.name,
                current.version + 1,
                [m for m in current.members if m.handle != state.handle],
                [a for a in current.admins if a != state.handle],
                "leave",
            )
            return await self._publish(state, account, roster, current)

    def _me(self, state: ClientState) -> GroupMember:
        key = pinned_key(state, state.handle)
        assert key is not None
        return GroupMember(handle=state.handle, identity_key=key)

    def _contact_member(self, state: ClientState, name: str) -> GroupMember:
        contact = state.contacts[self.client.contact(name).handle]
        if contact.status != "active":
            raise NotAGroupMember(f"{contact.handle} is not an active contact; add them first")
        return GroupMember(handle=contact.handle, identity_key=contact.identity_key)

    def _roster(
        self,
        state: ClientState,
        group_id: str,
        name: str,
        version: int,
        members: list[GroupMember],
        admins: list[str],
        action: RosterAction,
    ) -> GroupRoster:
        if len(members) > member_limit(state):
            raise ForbiddenByPolicy(
                f"{len(members)} group members; your organisation allows at most "
                f"{member_limit(state)}",
                rule="max_group_members",
            )
        return GroupRoster(
            v=1,
            group_id=group_id,
            name=name,
            version=version,
            members=members,
            admins=admins,
            signer=state.handle,
            signer_key=self._me(state).identity_key,
            action=action,
            issued_at=int(self.client.clock()),
        )

    async def _publish(
        self,
        state: ClientState,
        account: DeviceAccount,
        roster: GroupRoster,
        current: GroupRoster | None,
    ) -> GroupState:
        """Sign, adopt here (record, server), then tell every old and new member."""
        identity = IdentityKey.from_bytes(b64d(state.identity_key))
        signed = sign_roster(identity, roster)
        check_roster(
            roster, current, pinned=lambda h: pinned_key(state, h), limit=MAX_GROUP_MEMBERS
        )
        await adopt(self.client, state, signed, roster, side="local")
        told = {m.handle for m in roster.members} | {
            m.handle for m in (current.members if current else [])
        }
        payload = GroupPayload(group_id=roster.group_id, roster=signed)
        self.warnings = []
        for handle in sorted(told - {state.handle}):
            # The change is in force here already (and on the record): a member who cannot be
            # told now is named, not a reason to undo it for everyone else.
            try:
                await send_envelope(
                    self.client, state, account, handle, "group_roster", group=payload
                )
            except HotlineError as exc:
                self.warnings.append(f"{handle} was not told: {exc.code}: {exc.detail}")
        return state.groups[roster.group_id]

    # -- messages ----------------------------------------------------------------------------
    async def send(self, group_name: str, text: str) -> MessageEntry:
        """Encrypt ``text`` once with Megolm and send it to every member device.

        Raises:
            UnknownGroup, NotAGroupMember: not a group I am in.
            ForbiddenByPolicy: groups are off.
            DeviceListMismatch: still refused after fetching the device lists again (nothing
                was delivered).
            NotAGroupMember: the server refused (nothing was delivered).
        """
        client = self.client
        await client._ensure_login()
        async with client._tx() as (state, account):
            group = _find(state, group_name, active=True)
            member_limit(state)
            roster = roster_of(group)
            members = {m.handle for m in roster.members}
            # A peer server checks a member's device set only on arrival, after the message
            # left with a key a removed device may hold: remote members' lists are always
            # fetched. Local ones come from the cache; this server refuses a stale set at once.
            fetch = {h for h in members if _domain(h) != _domain(state.handle)}
            refreshed: set[str] = set()
            for attempt in range(SEND_ATTEMPTS):
                warnings: list[str] = []
                targets = await self._targets(state, roster, warnings, fetch)
                refreshed |= fetch
                outbound = self._outbound(state, group, targets)
                await self._share_key(state, account, group, outbound, targets, warnings)
                try:
                    return await self._send_megolm(
                        state, group, roster, outbound, targets, text, warnings
                    )
                except DeviceListMismatch as exc:
                    fetch = _stale(exc, members - refreshed, first=attempt == 0)
                    if not fetch:
                        raise
            raise AssertionError("unreachable: the last attempt fetches nothing new")

    async def _targets(
        self, state: ClientState, roster: GroupRoster, warnings: list[str], fetch: set[str]
    ) -> dict[str, list[DeviceKeys]]:
        """Every member's current devices (verified lists: cached, those in ``fetch`` fetched
        again), without this device."""
        targets: dict[str, list[DeviceKeys]] = {}
        for member in roster.members:
            try:
                refresh = member.handle in fetch
                devices = await devices_of(self.client, state, member.handle, refresh=refresh)
            except HotlineError as exc:
                warnings.append(f"{member.handle} not reached: {exc.code}: {exc.detail}")
                continue
            mine = [d for d in devices if d.device_id != state.device_id]
            if mine:
                targets[member.handle] = mine
        return targets

    def _outbound(
        self, state: ClientState, group: GroupState, targets: dict[str, list[DeviceKeys]]
    ) -> OutboundGroup:
        """The outbound session to use: the current one, or a new one if it must rotate."""
        key = self.client.keystore.pickle_key
        addresses = {f"{h}/{d.device_id}" for h, ds in targets.items() for d in ds}
        now_ms = self.client.now_ms()
        if group.outbound:
            outbound = OutboundGroup.from_pickle(group.outbound, key)
            lost = set(group.shared_with) - addresses
            too_old = now_ms - group.outbound_created_ms > ROTATE_SECONDS * 1000
            if not lost and not too_old and outbound.message_index < ROTATE_MESSAGES:
                return outbound
        outbound = OutboundGroup.generate()
        group.outbound = outbound.pickle(key)
        group.outbound_created_ms = now_ms
        group.shared_with = []
        return outbound

    async def _share_key(
        self,
        state: ClientState,
        account: DeviceAccount,
        group: GroupState,
        outbound: OutboundGroup,
        targets: dict[str, list[DeviceKeys]],
        warnings: list[str],
    ) -> None:
        """Send the session key over Olm to every member device that lacks it."""
        payload = GroupPayload(
            group_id=group.group_id,
            session_id=outbound.session_id,
            session_key=outbound.session_key(),
        )
        for handle in list(targets):
            wanted = [f"{handle}/{d.device_id}" for d in targets[handle]]
            if set(wanted) <= set(group.shared_with):
                continue
            try:
                await send_envelope(self.client, state, account, handle, "group_key", group=payload)
            except HotlineError as exc:
                warnings.append(f"{handle} not reached: {exc.code}: {exc.detail}")
                del targets[handle]
                continue
            group.shared_with += [w for w in wanted if w not in group.shared_with]

    async def _send_megolm(
        self,
        state: ClientState,
        group: GroupState,
        roster: GroupRoster,
        outbound: OutboundGroup,
        targets: dict[str, list[DeviceKeys]],
        text: str,
        warnings: list[str],
    ) -> MessageEntry:
        client = self.client
        message_id = secrets.token_urlsafe(16)
        plain = GroupText(
            v=1,
            group_id=group.group_id,
            message_id=message_id,
            sender=state.handle,
            sender_device=state.device_id,
            sent_at_ms=client.now_ms(),
            roster_version=roster.version,
            text=text,
        )
        plaintext = encode(plain)
        index = outbound.message_index
        body = GroupCiphertext(
            v=1,
            group_id=group.group_id,
            session_id=outbound.session_id,
            ciphertext=b64e(outbound.encrypt(plaintext)),
        )
        group.outbound = outbound.pickle(client.keystore.pickle_key)
        group.seen.append(f"{outbound.session_id}/{index}")
        others = [m.handle for m in roster.members if m.handle != state.handle]
        record_index = -1
        leaf = None
        if state.archive is not None:
            record_id, leaf = build_record(
                state,
                kind="message",
                side="sent",
                now_ms=client.now_ms(),
                sender=state.handle,
                recipients=others,
                conversation=conversation_of(group.group_id),
                message_id=message_id,
                created_at_ms=plain.sent_at_ms,
                body=text,
                envelope=plaintext,
            )
        if not targets:
            if leaf is not None:  # alone in the group: on the record all the same
                state.pending_records.append(
                    PendingRecord(record_id=record_id, leaf=b64e(leaf), message_id=message_id)
                )
        else:
            request = GroupSendRequest(
                group_id=group.group_id,
                message_id=message_id,
                body=b64e(encode(body)),
                recipients=[
                    GroupRecipient(to=h, device_ids=[d.device_id for d in ds])
                    for h, ds in targets.items()
                ],
                record=b64e(leaf) if leaf is not None else None,
                known_tree_size=state.last_head.size if state.last_head is not None else 0,
            )
            reply = await client.server.call(
                "POST", "/v1/groups/messages", request, api.SendResponse
            )
            if reply is not None and reply.receipt is not None and leaf is not None:
                try:
                    record_index = await check_receipt(client.server, state, reply.receipt, leaf)
                except HotlineError as exc:
                    warnings.append(f"{exc.code}: {exc.detail}")
        entry = MessageEntry(
            message_id=message_id,
            conversation=conversation_of(group.group_id),
            sender=state.handle,
            sender_device=state.device_id,
            text=text,
            sent_at_ms=plain.sent_at_ms,
            seq=index,
            status="sent",
            outgoing=True,
            warnings=warnings,
            record_index=record_index,
        )
        state.messages.append(entry)
        return entry


def _domain(handle: str) -> str:
    return handle.rpartition("@")[2]


def _stale(refused: DeviceListMismatch, unfetched: set[str], *, first: bool) -> set[str]:
    """Whose cached device lists to fetch after the server refused a send as addressed to a
    stale device set: first the member it names, then every member not fetched yet during
    this send (empty: nothing left to fetch, so the refusal stands)."""
    named = refused.extra.get("handle")
    if first and named in unfetched:
        return {named}
    return set(unfetched)


def _find(state: ClientState, name: str, *, active: bool = False) -> GroupState:
    group = state.groups.get(name)
    if group is None:
        folded = name.casefold()
        matches = [g for g in state.groups.values() if g.name.casefold().startswith(folded)]
        exact = [g for g in matches if g.name.casefold() == folded]
        if len(exact) == 1 or len(matches) == 1:
            group = (exact or matches)[0]
    if group is None:
        known = ", ".join(sorted(g.name for g in state.groups.values())) or "none yet"
        raise UnknownGroup(f"no single group matches {name!r} (groups: {known})")
    if active and not group.active:
        raise NotAGroupMember(f"you are no longer in {group.name}")
    return group


def _member_handle(roster: GroupRoster, name: str) -> str:
    handles = [m.handle for m in roster.members]
    if name in handles:
        return name
    matches = [h for h in handles if h.startswith(name.casefold())]
    if len(matches) != 1:
        raise NotAGroupMember(f"no single member of {roster.name} matches {name!r}")
    return matches[0]


async def adopt(
    client: HotlineClient,
    state: ClientState,
    signed: Signed,
    roster: GroupRoster,
    *,
    side: RecordSide,
) -> ClientEvent:
    """Put a checked roster in force on this device: state, peers, server, record, event."""
    group = state.groups.get(roster.group_id)
    before = {m.handle for m in roster_of(group).members} if group else set()
    if group is None:
        group = GroupState(
            group_id=roster.group_id,
            name=roster.name,
            roster=signed.payload,
            signature=signed.signature,
            version=roster.version,
        )
        state.groups[roster.group_id] = group
    group.name, group.version = roster.name, roster.version
    group.roster, group.signature = signed.payload, signed.signature
    now = {m.handle for m in roster.members}
    if before - now:
        group.outbound, group.shared_with = "", []  # someone left: the next message rotates
    if state.handle in now:
        group.active = True
        await client.server.call(
            "PUT", "/v1/groups", GroupMembershipUpload(roster=signed), response=None
        )
    else:
        group.active = False
        group.outbound, group.shared_with = "", []
        await client.server.call("DELETE", f"/v1/groups/{roster.group_id}", response=None)
    for member in roster.members:
        if member.handle != state.handle and pinned_key(state, member.handle) is None:
            state.group_peers[member.handle] = _peer(state, member, client.now_ms())
    detail = {
        "group_id": roster.group_id,
        "name": roster.name,
        "version": str(roster.version),
        "action": roster.action,
        "signer": roster.signer,
        "members": ",".join(sorted(now)),
        "admins": ",".join(sorted(roster.admins)),
    }
    queue_record(
        state,
        kind="group",
        side=side,
        now_ms=client.now_ms(),
        sender=roster.signer,
        recipients=sorted(now | before),
        conversation=conversation_of(roster.group_id),
        detail=detail,
    )
    text = f"{roster.name}: {roster.action} by {roster.signer} (v{roster.version}; members: "
    return ClientEvent("group", roster.signer, text + ", ".join(sorted(now)) + ")")


def _peer(state: ClientState, member: GroupMember, now_ms: int) -> ContactState:
    known = state.group_peers.get(member.handle)
    if known is not None and known.identity_key == member.identity_key:
        return known
    return ContactState(
        handle=member.handle,
        display_name=member.handle,
        identity_key=member.identity_key,
        server_url="",
        status="active",
        added_at_ms=now_ms,
    )


__all__ = ["Groups", "adopt", "check_roster", "open_roster", "pinned_key", "roster_of"]
