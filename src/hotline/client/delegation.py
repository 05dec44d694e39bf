"""Aides and delegation, on the principal's and on the aide's devices.

The principal (``hotline aides grant``) signs a :class:`~hotline.wire.delegation.DelegationGrant`
for an aide who is already a contact (so the aide's identity key is pinned), publishes it on its
home server (which checks it and the organisation's policy), records it in the archive, and
tells the aide end to end with a ``delegation`` envelope carrying the grant and the pinned keys
of the principal's counterparts. The aide then receives the principal's conversations ("read")
and may answer a counterpart for the principal ("answer"): the envelope and the send request
name the principal and the grant; the server and the counterpart's device both check it
(:mod:`hotline.server.delegation`, :mod:`hotline.client.delegation_view`). Revoking signs a
revocation, publishes it, records it, and tells the aide.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING

from hotline.client import policy_pin
from hotline.client.capture import flush_records
from hotline.client.delegation_state import HeldDelegation, IssuedGrant
from hotline.client.delegation_view import fetch_aides
from hotline.client.events import ClientEvent
from hotline.client.sending import send_envelope
from hotline.client.state import ClientState, ContactState, MessageEntry
from hotline.crypto.identity import IdentityKey
from hotline.policy.grants import (
    check_active,
    open_grant,
    open_revocation,
    sign_grant,
    sign_revocation,
)
from hotline.wire.codec import Signed, decode, encode
from hotline.wire.delegation import (
    MAX_PINS,
    ContactPin,
    DelegationGrant,
    DelegationNotice,
    DelegationRevocation,
    GrantUpload,
    RevocationUpload,
    Right,
)
from hotline.wire.encoding import b64d, b64e
from hotline.wire.envelope import Envelope
from hotline.wire.errors import (
    ForbiddenByPolicy,
    MalformedInput,
    NotAContact,
    NotDelegated,
    UnknownContact,
)

if TYPE_CHECKING:
    from hotline.client.device import HotlineClient

DEFAULT_DAYS = 30.0


def _check_policy(state: ClientState, seconds: float, active: int) -> None:
    """The client does not offer what the signed policy forbids. Raises: ForbiddenByPolicy."""
    policy = policy_pin.current(state)
    if policy is None:
        return
    if not policy.aides.allowed or policy.aides.max_aides == 0:
        raise ForbiddenByPolicy("your organisation's policy allows no aides", rule="aides.allowed")
    if active >= policy.aides.max_aides:
        raise ForbiddenByPolicy(
            f"your organisation's policy allows at most {policy.aides.max_aides} aides",
            rule="aides.max_aides",
        )
    if seconds > policy.aides.max_grant_days * 86400:
        raise ForbiddenByPolicy(
            f"a grant may last at most {policy.aides.max_grant_days} days",
            rule="aides.max_grant_days",
        )


def _pins(state: ClientState, aide: str) -> list[ContactPin]:
    return [
        ContactPin(
            handle=c.handle,
            display_name=c.display_name[:128],
            identity_key=c.identity_key,
            server_url=c.server_url[:512],
        )
        for c in sorted(state.contacts.values(), key=lambda c: c.handle)
        if c.status == "active" and c.handle != aide
    ][:MAX_PINS]


async def grant_aide(
    client: HotlineClient,
    name: str,
    *,
    days: float = DEFAULT_DAYS,
    rights: tuple[Right, ...] = ("read", "answer"),
    seconds: float | None = None,
) -> IssuedGrant:
    """Let the contact ``name`` read and answer for me until the grant expires.

    Raises:
        UnknownContact, NotAContact: the aide is not an active contact (pin them first).
        ForbiddenByPolicy: the organisation's policy forbids it (refused by the server too).
        MalformedInput: the aide is not an account of my own home server.
    """
    await client._ensure_login()
    aide = client.contact(name)
    if aide.status != "active":
        raise NotAContact(f"{aide.handle} must be an active contact to become your aide")
    lifetime = seconds if seconds is not None else days * 86400
    async with client._tx() as (state, account):
        active = [g for g in state.issued_grants.values() if _live(g, client.clock())]
        _check_policy(state, lifetime, len([g for g in active if g.aide != aide.handle]))
        identity = IdentityKey.from_bytes(b64d(state.identity_key))
        now = int(client.clock())
        grant = DelegationGrant(
            v=1,
            grant_id=secrets.token_urlsafe(12),
            principal=state.handle,
            principal_identity_key=b64e(identity.public.to_bytes()),
            aide=aide.handle,
            aide_identity_key=aide.identity_key,
            rights=list(rights),
            issued_at=now,
            expires_at=int(now + lifetime),
        )
        signed = sign_grant(identity, grant)
        await client.server.call("POST", "/v1/delegations", GrantUpload(grant=signed))
        issued = IssuedGrant(
            aide=aide.handle,
            grant_id=grant.grant_id,
            rights=list(rights),
            expires_at=grant.expires_at,
            grant=b64e(encode(signed)),
        )
        state.issued_grants[aide.handle] = issued
        client._local_record(
            state,
            "delegation",
            [aide.handle],
            event="granted",
            grant_id=grant.grant_id,
            rights=",".join(rights),
            expires_at=str(grant.expires_at),
        )
        notice = DelegationNotice(grant=signed, contacts=_pins(state, aide.handle))
        await send_envelope(client, state, account, aide.handle, "delegation", delegation=notice)
        await fetch_aides(client, state, state.handle)
        await flush_records(client.server, state)
    return issued


def _live(grant: IssuedGrant, now: float) -> bool:
    return not grant.revoked and grant.expires_at > now


async def revoke_aide(client: HotlineClient, name: str) -> IssuedGrant:
    """End the grant to ``name`` at once (server, archive and the aide's devices are told).

    Raises: UnknownContact (no grant to that aide).
    """
    await client._ensure_login()
    async with client._tx() as (state, account):
        issued = next(
            (g for h, g in state.issued_grants.items() if h == name or h.startswith(name + "@")),
            None,
        )
        if issued is None or issued.revoked:
            raise UnknownContact(f"no active grant to {name}")
        identity = IdentityKey.from_bytes(b64d(state.identity_key))
        revocation = DelegationRevocation(
            v=1,
            grant_id=issued.grant_id,
            principal=state.handle,
            aide=issued.aide,
            revoked_at=int(client.clock()),
        )
        signed = sign_revocation(identity, revocation)
        await client.server.call(
            "POST", "/v1/delegations/revoke", RevocationUpload(revocation=signed)
        )
        issued.revoked = True
        client._local_record(
            state, "delegation", [issued.aide], event="revoked", grant_id=issued.grant_id
        )
        await fetch_aides(client, state, state.handle)
        notice = DelegationNotice(revocation=signed)
        # If the aide left, the server and counterparts refuse the grant all the same.
        with contextlib.suppress(NotAContact, UnknownContact):
            await send_envelope(
                client, state, account, issued.aide, "delegation", delegation=notice
            )
        await flush_records(client.server, state)
    return issued


def list_aides(client: HotlineClient) -> list[IssuedGrant]:
    """Grants I gave, newest state (revoked and expired ones included)."""
    return sorted(client.keystore.load().issued_grants.values(), key=lambda g: g.aide)


def held_delegations(client: HotlineClient) -> list[HeldDelegation]:
    """Principals I act for (as an aide)."""
    return sorted(client.keystore.load().delegations.values(), key=lambda d: d.principal)


def take_notice(client: HotlineClient, state: ClientState, envelope: Envelope) -> list[ClientEvent]:
    """On the aide's device: a grant or revocation from a principal, checked against the
    principal identity key pinned as a contact. Raises: NotDelegated, BadSignature."""
    principal = envelope.sender
    notice = envelope.delegation
    if principal == state.handle and notice is not None:
        _own_copy(state, notice)  # my other device granted or revoked: keep the list in step
        return []
    contact = state.contacts.get(principal)
    if notice is None or contact is None or contact.status != "active":
        raise NotDelegated(f"a delegation notice from {principal}, who is not a contact")
    pinned = b64d(contact.identity_key)
    if notice.revocation is not None:
        revocation = open_revocation(notice.revocation, pinned, principal)
        held = state.delegations.get(principal)
        if held is not None and held.grant_id == revocation.grant_id:
            del state.delegations[principal]
        return [ClientEvent("contact_removed", principal, "you no longer act for them")]
    if notice.grant is None:
        raise MalformedInput("an empty delegation notice")
    grant = open_grant(notice.grant, pinned, principal)
    own_key = b64e(IdentityKey.from_bytes(b64d(state.identity_key)).public.to_bytes())
    if grant.aide != state.handle or grant.aide_identity_key != own_key:
        raise NotDelegated("a grant for someone else")
    state.delegations[principal] = HeldDelegation(
        principal=principal,
        grant_id=grant.grant_id,
        rights=list(grant.rights),
        expires_at=grant.expires_at,
        grant=b64e(encode(notice.grant)),
    )
    for pin in notice.contacts:
        if pin.handle == state.handle or pin.handle in state.contacts:
            continue  # my own contacts keep the key I pinned myself
        state.contacts[pin.handle] = ContactState(
            handle=pin.handle,
            display_name=pin.display_name,
            identity_key=pin.identity_key,
            server_url=pin.server_url,
            status="delegated",
            added_at_ms=client.now_ms(),
        )
    rights = " and ".join(grant.rights)
    return [ClientEvent("contact_added", principal, f"you may now {rights} for them")]


def _own_copy(state: ClientState, notice: DelegationNotice) -> None:
    own_key = IdentityKey.from_bytes(b64d(state.identity_key)).public.to_bytes()
    if notice.grant is not None:
        grant = open_grant(notice.grant, own_key, state.handle)
        state.issued_grants[grant.aide] = IssuedGrant(
            aide=grant.aide,
            grant_id=grant.grant_id,
            rights=list(grant.rights),
            expires_at=grant.expires_at,
            grant=b64e(encode(notice.grant)),
        )
    if notice.revocation is not None:
        revocation = open_revocation(notice.revocation, own_key, state.handle)
        issued = state.issued_grants.get(revocation.aide)
        if issued is not None and issued.grant_id == revocation.grant_id:
            issued.revoked = True


def _held(client: HotlineClient, state: ClientState, principal: str) -> HeldDelegation:
    """Raises: NotDelegated unless I hold a live grant of ``principal`` to answer."""
    held = state.delegations.get(principal)
    if held is None:
        raise NotDelegated(f"you do not act for {principal}")
    grant = decode(b64d(held.grant), Signed)
    contact = state.contacts[principal]
    opened = open_grant(grant, b64d(contact.identity_key), principal)
    check_active(opened, aide=state.handle, right="answer", now=client.clock())
    return held


async def answer_for(
    client: HotlineClient, principal: str, counterpart: str, text: str
) -> MessageEntry:
    """As an aide, write to a counterpart of ``principal`` for them (labelled as mine).

    Raises:
        NotDelegated: no live grant to answer (refused by the server and the counterpart too).
        UnknownContact: the counterpart is not one of the principal's (as they told me).
    """
    await client._ensure_login()
    async with client._tx() as (state, account):
        held = _held(client, state, principal)
        if counterpart not in state.contacts or counterpart == principal:
            raise UnknownContact(f"{counterpart} is not a counterpart of {principal}")
        entry = await send_envelope(
            client, state, account, counterpart, "text", text=text, acting_for=held
        )
    assert entry is not None
    return entry


__all__ = [
    "answer_for",
    "grant_aide",
    "held_delegations",
    "list_aides",
    "revoke_aide",
    "take_notice",
]
