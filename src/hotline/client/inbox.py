"""Handling what arrives in the device's mailbox: contact requests and Olm messages.

Every check that can fail on hostile input turns into a ``warning`` event for the user — the
item is acknowledged and dropped, never crashing the client and never silently accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from hotline.client import channel, delegation_view, group_inbox
from hotline.client.admin_notices import DEVICE_REMOVED, admin_removed
from hotline.client.capture import RECORD_KIND, queue_record
from hotline.client.cards import read_card
from hotline.client.delegation import take_notice
from hotline.client.delegation_view import aide_curve, concerns_delegation
from hotline.client.device_lists import devices_of
from hotline.client.events import ClientEvent
from hotline.client.group_state import peer_state
from hotline.client.message_log import keep_text
from hotline.client.policy_pin import content_class
from hotline.client.state import ClientState, PendingRequest
from hotline.client.transcript import conversation_id
from hotline.crypto.olm import DeviceAccount, OlmMessage
from hotline.wire import api
from hotline.wire.codec import decode
from hotline.wire.encoding import b64d
from hotline.wire.envelope import Envelope
from hotline.wire.errors import HotlineError, MalformedInput

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient

MAX_SEEN = 10_000
#: mailbox kinds of Olm messages and the content class the sender declared for each
DECLARED = {"olm": "message", "olm:call": "call", "olm:control": "control"}
_STATUS_RANK = {"sending": 0, "sent": 1, "delivered": 2, "read": 3}


class _Notice(msgspec.Struct, frozen=True):
    sender: str
    card: str
    invite_id: str


async def handle_item(
    client: HotlineClient,
    state: ClientState,
    account: DeviceAccount,
    item: api.InboxItem,
    receipts: dict[str, list[str]],
) -> list[ClientEvent]:
    try:
        if item.kind == "contact_request":
            return await _contact_request(client, state, account, item)
        if item.kind in DECLARED:
            # A re-push of an item already processed (its ack was lost with the connection):
            # its Olm message key is used up, so recognise it before trying to decrypt.
            # (Only items processed are remembered: dropped ones are refused again, loudly.)
            delivery = f"{item.sender_device}/{item.message_id}"
            if delivery in state.seen_deliveries:
                return []
            events = await _olm(client, state, account, item, receipts)
            if not any(e.kind == "warning" for e in events):  # dropped items are not "seen"
                state.seen_deliveries.append(delivery)
                del state.seen_deliveries[:-MAX_SEEN]
            return events
        if item.kind == "megolm":
            return await group_inbox.handle_megolm(client, state, item)
        if item.kind == "bounce":
            return _bounce(state, item)
        if item.kind == DEVICE_REMOVED:
            return await admin_removed(client, state, item)
        return [ClientEvent("warning", item.sender_handle, f"unknown item kind {item.kind!r}")]
    except HotlineError as exc:
        return [
            ClientEvent(
                "warning",
                item.sender_handle,
                f"dropped an item from {item.sender_handle}: {exc.code}: {exc.detail}",
            )
        ]


async def _contact_request(
    client: HotlineClient, state: ClientState, account: DeviceAccount, item: api.InboxItem
) -> list[ClientEvent]:
    notice = decode(b64d(item.body), _Notice, what="contact request")
    card = read_card(notice.card, client.clock())
    if card.payload.handle != item.sender_handle:
        return [
            ClientEvent(
                "warning",
                item.sender_handle,
                "contact request carries someone else's card; refused",
            )
        ]
    invite = state.invites.get(notice.invite_id)
    if invite is None or invite.revoked or invite.expires_at <= client.clock():
        return [
            ClientEvent(
                "warning",
                item.sender_handle,
                "contact request used a revoked or expired card; refused",
            )
        ]
    request = PendingRequest(
        sender=item.sender_handle,
        card=notice.card,
        invite_id=notice.invite_id,
        received_at_ms=client.now_ms(),
    )
    if not state.settings.auto_accept:
        state.pending_requests.append(request)
        return [
            ClientEvent(
                "contact_request",
                item.sender_handle,
                f"{card.payload.display_name} asks to connect",
            )
        ]
    contact = await client._accept(state, account, request)
    return [ClientEvent("contact_added", contact.handle, contact.display_name)]


async def _sender_curve(
    client: HotlineClient, state: ClientState, handle: str, device_id: str
) -> bytes | None:
    """The sender device's Curve25519 key from its verified device list, if it is listed."""
    own = handle == state.handle
    contact = peer_state(state.contacts, state.group_peers, handle)
    if not own and contact is None:
        return await aide_curve(client, state, handle, device_id)  # someone's aide, or nobody
    if not own and (contact is None or contact.status == "removed"):
        return None
    devices = state.own_devices if own else contact.devices if contact else []
    found = next((d for d in devices if d.device_id == device_id), None)
    if found is None:
        devices = await devices_of(client, state, handle, refresh=True)
        found = next((d for d in devices if d.device_id == device_id), None)
    return b64d(found.curve25519) if found else None


async def _olm(
    client: HotlineClient,
    state: ClientState,
    account: DeviceAccount,
    item: api.InboxItem,
    receipts: dict[str, list[str]],
) -> list[ClientEvent]:
    sender, device = item.sender_handle, item.sender_device
    curve = await _sender_curve(client, state, sender, device)
    if curve is None:
        return [ClientEvent("warning", sender, f"message from {sender}, not a contact: dropped")]
    plaintext = channel.decrypt_from(
        state, account, client.sessions, sender, device, curve, decode_olm(item)
    )
    envelope = decode_envelope(plaintext)
    delegated = concerns_delegation(state, envelope)  # checked by delegation_view itself
    problem = _misdeclared(item, envelope) or (
        "" if delegated else group_inbox.refusal(state, envelope)
    )
    if problem:
        return [ClientEvent("warning", sender, problem)]
    if envelope.message_id in state.seen_message_ids:
        return []
    state.seen_message_ids.append(envelope.message_id)
    del state.seen_message_ids[:-10_000]
    if delegated:
        if envelope.kind == "delegation":
            return take_notice(client, state, envelope)
        return await delegation_view.receive(
            client, state, envelope, plaintext, receipts, item.created_at
        )
    if envelope.kind == "text":
        return _text(state, envelope, plaintext, receipts, client.now_ms())
    if envelope.kind == "receipt" and envelope.receipt is not None:
        return _receipt(state, envelope)
    if envelope.kind in group_inbox.GROUP_KINDS:
        return await group_inbox.handle_envelope(client, state, envelope)
    if envelope.kind == "sas":
        return await client.sas.handle(state, account, envelope)
    if envelope.kind == "call":
        if client.calls is None:
            return [ClientEvent("warning", sender, "a call signal arrived; calls are not enabled")]
        return await client.calls.handle(state, account, envelope)
    return await _contact_notice(client, state, envelope, plaintext)


def _misdeclared(item: api.InboxItem, envelope: Envelope) -> str:
    """Why an envelope must be dropped before anything else looks at it ("" if it is fine)."""
    if DECLARED[item.kind] != content_class(envelope.kind):
        # The sender declared one class to pass the server's policy check and sent another.
        return (
            f"a {envelope.kind} envelope declared as {DECLARED[item.kind]} "
            "(policy evasion): dropped"
        )
    if envelope.sender != item.sender_handle or envelope.sender_device != item.sender_device:
        return "message claims another sender inside; dropped"
    return ""


async def _contact_notice(
    client: HotlineClient, state: ClientState, envelope: Envelope, plaintext: bytes
) -> list[ClientEvent]:
    sender = envelope.sender
    contact = state.contacts.get(sender)
    if contact is None:
        return []
    if envelope.kind in ("contact_accepted", "contact_removed"):
        queue_record(
            state,
            kind=RECORD_KIND[envelope.kind],
            side="received",
            now_ms=client.now_ms(),
            sender=sender,
            recipients=[state.handle],
            conversation=conversation_id(sender, state.handle),
            message_id=envelope.message_id,
            created_at_ms=envelope.sent_at_ms,
            envelope=plaintext,
        )
    if envelope.kind == "contact_accepted":
        contact.status = "active"
        return [ClientEvent("contact_added", sender, contact.display_name)]
    if envelope.kind == "contact_removed":
        contact.status = "removed"
        await client._upload_allowlist(state)
        return [ClientEvent("contact_removed", sender, contact.display_name)]
    return []


def _text(
    state: ClientState,
    envelope: Envelope,
    plaintext: bytes,
    receipts: dict[str, list[str]],
    now_ms: int,
) -> list[ClientEvent]:
    own_copy = envelope.sender == state.handle
    peer = envelope.recipient if own_copy else envelope.sender
    if not own_copy and envelope.recipient != state.handle:
        return [ClientEvent("warning", envelope.sender, "message addressed to someone else")]
    conversation = conversation_id(state.handle, peer)
    events = keep_text(
        state, envelope, plaintext, conversation=conversation, peer=peer, outgoing=own_copy
    )
    if not events or events[0].kind != "message":
        return events
    if not own_copy:
        receipts.setdefault(envelope.sender, []).append(envelope.message_id)
        queue_record(
            state,
            kind="message",
            side="received",
            now_ms=now_ms,
            sender=envelope.sender,
            recipients=[envelope.recipient],
            conversation=conversation,
            message_id=envelope.message_id,
            created_at_ms=envelope.sent_at_ms,
            body=envelope.text,
            envelope=plaintext,
        )
    return events


def _receipt(state: ClientState, envelope: Envelope) -> list[ClientEvent]:
    assert envelope.receipt is not None
    kind = envelope.receipt.kind
    ids = set(envelope.receipt.message_ids)
    updated = 0
    for message in state.messages:
        if (
            message.outgoing
            and message.message_id in ids
            and _STATUS_RANK.get(message.status, 0) < _STATUS_RANK[kind]
        ):
            message.status = kind
            updated += 1
    peer = envelope.recipient if envelope.sender == state.handle else envelope.sender
    return [ClientEvent("receipt", peer, kind, seq=updated)] if updated else []


class _Bounce(msgspec.Struct, frozen=True):
    message_id: str
    to: str
    code: str
    detail: str


def _bounce(state: ClientState, item: api.InboxItem) -> list[ClientEvent]:
    """A peer server refused a message that waited in our server's queue: say so, loudly."""
    bounce = decode(b64d(item.body), _Bounce, what="bounce")
    for message in state.messages:
        if message.message_id == bounce.message_id and message.outgoing:
            message.status = "failed"
            message.warnings.append(f"{bounce.code}: {bounce.detail}")
    return [
        ClientEvent(
            "warning",
            bounce.to,
            f"message {bounce.message_id} was refused by {item.sender_handle}: "
            f"{bounce.code}: {bounce.detail}",
            message_id=bounce.message_id,
        )
    ]


def decode_olm(item: api.InboxItem) -> OlmMessage:
    """The Olm message in a mailbox item's body. Raises: MalformedInput (empty)."""
    raw = b64d(item.body)
    if not raw:
        raise MalformedInput("empty ciphertext")
    return OlmMessage(raw[0], raw[1:])


def decode_envelope(plaintext: bytes) -> Envelope:
    """An envelope from decrypted bytes. Raises: MalformedInput."""
    return decode(plaintext, Envelope, what="envelope")
