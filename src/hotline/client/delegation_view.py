"""Delegation as other devices see it: the verified aides of a principal, who a message must
also reach (the aides' devices), and how delegated messages are received and labelled.

A counterpart's device fetches a principal's published grants, checks each grant against the
principal identity key it pinned and the aide's devices against the aide identity key the grant
names, and only then encrypts for the aide ("read") or accepts the aide's message for the
principal ("answer"), labelled "sent by <aide> for <principal>". A grant it cannot verify, that
expired or that the principal revoked makes an aide's message ``not_delegated``: dropped, loudly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hotline.client import channel
from hotline.client.capture import queue_record
from hotline.client.cards import open_device_list
from hotline.client.delegation_state import AidesOf, AideView
from hotline.client.device_lists import claim_sessions, pinned_identity
from hotline.client.events import ClientEvent
from hotline.client.message_log import keep_text
from hotline.client.state import ClientState, MessageEntry
from hotline.client.transcript import conversation_id
from hotline.crypto.olm import DeviceAccount
from hotline.policy.grants import open_grant, open_revocation
from hotline.wire.delegation import DelegationsResponse, Right
from hotline.wire.encoding import b64d
from hotline.wire.envelope import Envelope
from hotline.wire.errors import (
    HotlineError,
    NotDelegated,
)
from hotline.wire.lists import DeviceKeys

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient


def label(entry: MessageEntry) -> str:  # the same words as message_log.keep_text
    """What the user is shown for who wrote a message ("" for an ordinary one)."""
    return f"sent by {entry.sender} for {entry.on_behalf_of}" if entry.on_behalf_of else ""


async def fetch_aides(client: HotlineClient, state: ClientState, handle: str) -> AidesOf:
    """Fetch ``handle``'s published grants and keep those that verify (forged ones are not
    aides; revoked and expired ones neither). Raises: NotAContact."""
    reply = await client.server.call(
        "GET", f"/v1/principals/{handle}/delegations", response=DelegationsResponse
    )
    assert reply is not None
    pinned = pinned_identity(state, handle)
    previous = state.aides_of.get(handle)
    revoked = set(previous.revoked if previous else [])
    for signed in reply.revocations:
        try:
            revoked.add(open_revocation(signed, pinned, handle).grant_id)
        except HotlineError:
            continue
    aides: list[AideView] = []
    for published in reply.grants:
        try:
            grant = open_grant(published.grant, pinned, handle)
            if grant.grant_id in revoked:
                continue
            devices = open_device_list(
                published.aide_device_list, b64d(grant.aide_identity_key), grant.aide
            )
        except HotlineError:
            continue
        aides.append(
            AideView(
                aide=grant.aide,
                aide_identity_key=grant.aide_identity_key,
                grant_id=grant.grant_id,
                rights=list(grant.rights),
                expires_at=grant.expires_at,
                devices=list(devices.devices),
            )
        )
    result = AidesOf(aides=aides, revoked=sorted(revoked)[-256:])
    state.aides_of[handle] = result
    return result


async def aide_targets(
    client: HotlineClient,
    state: ClientState,
    account: DeviceAccount,
    handles: list[str],
    *,
    refresh: bool,
) -> list[tuple[str, DeviceKeys]]:
    """The devices of the ``read`` aides of ``handles``, each with an Olm session ready."""
    targets: list[tuple[str, DeviceKeys]] = []
    for handle in handles:
        view = state.aides_of.get(handle)
        if view is None or refresh:
            try:
                view = await fetch_aides(client, state, handle)
            except HotlineError:
                # Not visible (yet), or the peer is down: its server refuses a message that
                # misses an aide's device, and the send is retried with a fresh view.
                if view is None:
                    continue
        for aide in view.aides:
            if "read" not in aide.rights or aide.expires_at <= client.clock():
                continue
            devices = [d for d in aide.devices if d.device_id != state.device_id]
            missing = [d for d in devices if not channel.has_session(state, aide.aide, d.device_id)]
            if missing:
                await claim_sessions(client, state, account, aide.aide, missing)
            targets += [(aide.aide, d) for d in devices]
    return targets


async def aide_curve(
    client: HotlineClient, state: ClientState, handle: str, device_id: str
) -> bytes | None:
    """The Curve25519 key of a device of someone's verified aide (None: not an aide's)."""

    def find() -> bytes | None:
        for view in state.aides_of.values():
            for aide in view.aides:
                if aide.aide != handle:
                    continue
                for device in aide.devices:
                    if device.device_id == device_id:
                        return b64d(device.curve25519)
        return None

    found = find()
    if found is not None:
        return found
    domain = handle.rpartition("@")[2]
    principals = [
        c.handle
        for c in state.contacts.values()
        if c.status == "active" and c.handle.rpartition("@")[2] == domain
    ]
    for principal in principals:
        try:
            await fetch_aides(client, state, principal)
        except HotlineError:
            continue
    return find()


async def verified_aide(
    client: HotlineClient,
    state: ClientState,
    principal: str,
    aide: str,
    grant_id: str,
    right: Right,
    at: float | None = None,
) -> AideView:
    """The aide's verified grant from ``principal`` allowing ``right`` at time ``at`` (default
    now), fetched again once if not cached. A revoked grant is refused whatever the time.

    Raises: NotDelegated."""
    when = client.clock() if at is None else at
    for attempt in range(2):
        view = state.aides_of.get(principal)
        if attempt or view is None:
            try:
                view = await fetch_aides(client, state, principal)
            except HotlineError as exc:
                raise NotDelegated(f"the grants of {principal} cannot be checked") from exc
        if grant_id in view.revoked:
            raise NotDelegated(f"{principal} revoked the grant to {aide}")
        for found in view.aides:
            if (
                found.aide == aide
                and found.grant_id == grant_id
                and right in found.rights
                and found.expires_at > when
            ):
                return found
    raise NotDelegated(f"{aide} holds no valid grant of {principal} to {right} for them")


def concerns_delegation(state: ClientState, envelope: Envelope) -> bool:
    """Whether an envelope is an aide's, a grant notice, or a copy of a principal's
    conversation (neither from nor to this principal)."""
    return (
        envelope.on_behalf_of is not None
        or envelope.kind == "delegation"
        or state.handle not in (envelope.sender, envelope.recipient)
    )


async def receive(
    client: HotlineClient,
    state: ClientState,
    envelope: Envelope,
    plaintext: bytes,
    receipts: dict[str, list[str]],
    relayed_at: float,
) -> list[ClientEvent]:
    """Handle an envelope :func:`concerns_delegation` selected (not a ``delegation`` notice).

    ``relayed_at`` is when the server accepted it (the mailbox item's time): an aide's message
    relayed while the grant was live stays valid after expiry (the sender's own clock is not
    trusted for this)."""
    if envelope.on_behalf_of is not None:
        return await _on_behalf(client, state, envelope, plaintext, receipts, relayed_at)
    if envelope.kind != "text":
        return []  # a receipt or signal of the principal's: the aide has nothing to do with it
    held = next(
        (
            state.delegations[h]
            for h in (envelope.sender, envelope.recipient)
            if h in state.delegations
        ),
        None,
    )
    if held is None or "read" not in held.rights or held.expires_at <= client.clock():
        return [ClientEvent("warning", envelope.sender, "message addressed to someone else")]
    principal = held.principal
    other = envelope.recipient if envelope.sender == principal else envelope.sender
    conversation = conversation_id(principal, other)
    return keep_text(
        state, envelope, plaintext, conversation=conversation, peer=other, outgoing=False
    )


async def _on_behalf(
    client: HotlineClient,
    state: ClientState,
    envelope: Envelope,
    plaintext: bytes,
    receipts: dict[str, list[str]],
    relayed_at: float,
) -> list[ClientEvent]:
    principal = envelope.on_behalf_of or ""
    aide, counterpart = envelope.sender, envelope.recipient
    if envelope.kind != "text" or envelope.grant_id is None:
        return [ClientEvent("warning", aide, "an aide may only send text for a principal")]
    conversation = conversation_id(principal, counterpart)
    if counterpart == state.handle:
        contact = state.contacts.get(principal)
        if contact is None or contact.status != "active":
            raise NotDelegated(f"{aide} writes for {principal}, who is not a contact")
        await verified_aide(client, state, principal, aide, envelope.grant_id, "answer", relayed_at)
        events = keep_text(
            state, envelope, plaintext, conversation=conversation, peer=principal, outgoing=False
        )
        if events and events[0].kind == "message":
            receipts.setdefault(principal, []).append(envelope.message_id)
            queue_record(
                state,
                kind="message",
                side="received",
                now_ms=client.now_ms(),
                sender=aide,
                recipients=[counterpart],
                conversation=conversation,
                message_id=envelope.message_id,
                created_at_ms=envelope.sent_at_ms,
                body=envelope.text,
                envelope=plaintext,
                detail={"on_behalf_of": principal, "grant_id": envelope.grant_id},
            )
        return events
    if principal == state.handle:
        await verified_aide(client, state, principal, aide, envelope.grant_id, "answer", relayed_at)
        return keep_text(
            state, envelope, plaintext, conversation=conversation, peer=counterpart, outgoing=True
        )
    if principal in state.delegations:  # my own other device, or a fellow aide
        return keep_text(
            state, envelope, plaintext, conversation=conversation, peer=counterpart, outgoing=True
        )
    return [ClientEvent("warning", aide, "a message for a principal I do not act for")]


__all__ = [
    "aide_curve",
    "aide_targets",
    "concerns_delegation",
    "fetch_aides",
    "label",
    "receive",
    "verified_aide",
]
