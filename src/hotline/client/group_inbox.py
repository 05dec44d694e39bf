"""Receiving group traffic: signed rosters and Megolm keys over Olm, and Megolm messages.

Hostile input becomes a typed error, which ``client.inbox`` turns into a ``warning`` event;
nothing is stored from a message that fails a check. Megolm accepts replays, so a message is
taken once per ``(session id, message index)``; a later copy is dropped.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from hotline.client.capture import queue_record
from hotline.client.events import ClientEvent
from hotline.client.group_roster import check_roster, open_roster
from hotline.client.group_state import MAX_SEEN, GroupState, InboundSessionState, conversation_of
from hotline.client.groups import adopt, member_limit, pinned_key, roster_of
from hotline.client.state import ClientState, MessageEntry
from hotline.crypto.megolm import InboundGroup
from hotline.wire import api
from hotline.wire.codec import decode
from hotline.wire.encoding import b64d
from hotline.wire.envelope import Envelope
from hotline.wire.errors import DecryptionFailed, MalformedInput, NotAGroupMember, RosterRefused
from hotline.wire.groups import GroupCiphertext, GroupText

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient

log = logging.getLogger("hotline.client.groups")
GROUP_KINDS = ("group_roster", "group_key")


def refusal(state: ClientState, envelope: Envelope) -> str:
    """Why an Olm envelope from a co-member who is not a contact must be dropped ("" if fine):
    a group makes its members reachable for group traffic only."""
    sender = envelope.sender
    contact = state.contacts.get(sender)
    if sender == state.handle or envelope.kind in GROUP_KINDS:
        return ""
    if contact is not None and contact.status != "removed":
        return ""
    return f"a {envelope.kind} from {sender}, who is not a contact (only a group member): dropped"


async def handle_envelope(
    client: HotlineClient, state: ClientState, envelope: Envelope
) -> list[ClientEvent]:
    """A ``group_roster`` or ``group_key`` envelope (already decrypted and checked by Olm).

    Raises:
        MalformedInput, BadSignature, RosterRefused, StaleVersion, IdentityChanged,
        ForbiddenByPolicy, NotAGroupMember: see :func:`client.group_roster.check_roster`.
    """
    payload = envelope.group
    if payload is None:
        raise MalformedInput(f"a {envelope.kind} envelope without its group part")
    if envelope.kind == "group_roster":
        if payload.roster is None:
            raise MalformedInput("a roster envelope without a roster")
        roster = open_roster(payload.roster)
        if roster.group_id != payload.group_id or roster.signer != envelope.sender:
            raise RosterRefused("a roster relayed by someone other than its signer")
        group = state.groups.get(roster.group_id)
        if group is not None and group.roster == payload.roster.payload:
            return []  # another copy (e.g. to each of my devices, or a re-send)
        current = roster_of(group) if group is not None else None
        if current is None and state.handle not in {m.handle for m in roster.members}:
            raise NotAGroupMember("a roster of a group you are not in")
        check_roster(
            roster, current, pinned=lambda h: pinned_key(state, h), limit=member_limit(state)
        )
        return [await adopt(client, state, payload.roster, roster, side="received")]
    _take_key(client, state, envelope)
    return []


def _take_key(client: HotlineClient, state: ClientState, envelope: Envelope) -> None:
    payload = envelope.group
    assert payload is not None
    group = _member_group(state, payload.group_id, envelope.sender)
    inbound = InboundGroup.from_session_key(payload.session_key)
    if inbound.session_id != payload.session_id:
        raise MalformedInput("the session key does not match its session id")
    known = group.inbound.get(inbound.session_id)
    if known is not None:
        if (known.sender, known.sender_device) != (envelope.sender, envelope.sender_device):
            raise RosterRefused("a group session key claimed by a second device")
        return  # keep the copy that knows the earliest index
    group.inbound[inbound.session_id] = InboundSessionState(
        sender=envelope.sender,
        sender_device=envelope.sender_device,
        pickle=inbound.pickle(client.keystore.pickle_key),
    )


def _member_group(state: ClientState, group_id: str, sender: str) -> GroupState:
    group = state.groups.get(group_id)
    if group is None or not group.active:
        raise NotAGroupMember("group traffic for a group you are not in")
    if sender not in {m.handle for m in roster_of(group).members}:
        raise NotAGroupMember(f"{sender} is not a member of {group.name}")
    return group


async def handle_megolm(
    client: HotlineClient, state: ClientState, item: api.InboxItem
) -> list[ClientEvent]:
    """A Megolm group message from the mailbox.

    Raises:
        NotAGroupMember: for a group I am not in, or from a non-member.
        DecryptionFailed: no key for it from that device (e.g. sent after my device was
            removed), or it does not decrypt.
    """
    body = decode(b64d(item.body), GroupCiphertext, what="group message")
    group = _member_group(state, body.group_id, item.sender_handle)
    session = group.inbound.get(body.session_id)
    if session is None or (session.sender, session.sender_device) != (
        item.sender_handle,
        item.sender_device,
    ):
        raise DecryptionFailed()
    inbound = InboundGroup.from_pickle(session.pickle, client.keystore.pickle_key)
    decrypted = inbound.decrypt(b64d(body.ciphertext, field="ciphertext"))
    seen = f"{body.session_id}/{decrypted.message_index}"
    if seen in group.seen:
        log.info("replayed group message dropped (index %d)", decrypted.message_index)
        return []
    text = decode(decrypted.plaintext, GroupText, what="group text")
    if (text.group_id, text.sender, text.sender_device) != (
        group.group_id,
        item.sender_handle,
        item.sender_device,
    ):
        raise MalformedInput("a group message that claims another sender or group inside")
    group.seen.append(seen)
    del group.seen[:-MAX_SEEN]
    return [_take_text(client, state, group, text, decrypted.plaintext, decrypted.message_index)]


def _take_text(
    client: HotlineClient,
    state: ClientState,
    group: GroupState,
    text: GroupText,
    plaintext: bytes,
    index: int,
) -> ClientEvent:
    own = text.sender == state.handle
    conversation = conversation_of(group.group_id)
    state.messages.append(
        MessageEntry(
            message_id=text.message_id,
            conversation=conversation,
            sender=text.sender,
            sender_device=text.sender_device,
            text=text.text,
            sent_at_ms=text.sent_at_ms,
            seq=index,
            status="sent" if own else "received",
            outgoing=own,
        )
    )
    if not own:
        members = [m.handle for m in roster_of(group).members if m.handle != text.sender]
        queue_record(
            state,
            kind="message",
            side="received",
            now_ms=client.now_ms(),
            sender=text.sender,
            recipients=members,
            conversation=conversation,
            message_id=text.message_id,
            created_at_ms=text.sent_at_ms,
            body=text.text,
            envelope=plaintext,
        )
    return ClientEvent("group", text.sender, text.text, text.message_id, index, outgoing=own)
