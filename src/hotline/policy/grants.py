"""Signing and checking delegation grants and their revocations (both ends use this).

A grant is checked over the exact bytes received, against the principal identity key the
verifier already trusts (the pinned one on a client, the registered one on the server): a grant
signed by anyone else, the aide included, is refused with ``bad_signature``.
"""

from __future__ import annotations

from hotline.crypto.identity import IdentityKey, IdentityPublicKey
from hotline.wire.codec import Signed, decode, encode
from hotline.wire.delegation import (
    DOMAIN_GRANT,
    DOMAIN_REVOCATION,
    DelegationGrant,
    DelegationRevocation,
    Right,
)
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import MalformedInput, NotDelegated

MAX_SIGNED = 4 * 1024


def sign_grant(identity: IdentityKey, grant: DelegationGrant) -> Signed:
    payload = encode(grant)
    return Signed(payload=b64e(payload), signature=b64e(identity.sign(DOMAIN_GRANT, payload)))


def sign_revocation(identity: IdentityKey, revocation: DelegationRevocation) -> Signed:
    payload = encode(revocation)
    return Signed(payload=b64e(payload), signature=b64e(identity.sign(DOMAIN_REVOCATION, payload)))


def _verified(signed: Signed, identity_key: bytes, domain: bytes) -> bytes:
    payload = b64d(signed.payload, field="payload", max_len=MAX_SIGNED)
    IdentityPublicKey.from_bytes(identity_key).verify(
        domain, payload, b64d(signed.signature, field="signature")
    )
    return payload


def open_grant(signed: Signed, principal_identity_key: bytes, principal: str) -> DelegationGrant:
    """Verify a grant of ``principal`` against its trusted identity key.

    Raises:
        BadSignature: not signed by that key (forged, or signed by the aide itself).
        MalformedInput: well signed but for another principal or key.
    """
    payload = _verified(signed, principal_identity_key, DOMAIN_GRANT)
    grant = decode(payload, DelegationGrant, max_size=MAX_SIGNED, what="delegation grant")
    if grant.principal != principal or b64d(grant.principal_identity_key) != principal_identity_key:
        raise MalformedInput(f"the grant is not {principal}'s")
    if grant.aide == grant.principal:
        raise MalformedInput("a principal cannot be their own aide")
    return grant


def open_revocation(
    signed: Signed, principal_identity_key: bytes, principal: str
) -> DelegationRevocation:
    """Raises: BadSignature, MalformedInput (as :func:`open_grant`)."""
    payload = _verified(signed, principal_identity_key, DOMAIN_REVOCATION)
    revocation = decode(
        payload, DelegationRevocation, max_size=MAX_SIGNED, what="delegation revocation"
    )
    if revocation.principal != principal:
        raise MalformedInput(f"the revocation is not {principal}'s")
    return revocation


def check_active(
    grant: DelegationGrant | None, *, aide: str, right: Right, now: float, revoked: bool = False
) -> DelegationGrant:
    """The grant, if it lets ``aide`` use ``right`` at ``now``.

    Raises:
        NotDelegated: no grant, another aide, the right is missing, expired or revoked.
    """
    if grant is None or grant.aide != aide:
        raise NotDelegated(f"{aide} holds no grant for this")
    if revoked:
        raise NotDelegated(f"{grant.principal} revoked the grant to {aide}")
    if right not in grant.rights:
        raise NotDelegated(f"the grant to {aide} does not include {right!r}")
    if now >= grant.expires_at:
        raise NotDelegated(f"the grant from {grant.principal} to {aide} has expired")
    return grant


__all__ = ["check_active", "open_grant", "open_revocation", "sign_grant", "sign_revocation"]
