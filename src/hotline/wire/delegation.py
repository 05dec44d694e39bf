"""Aides and delegation: a principal's signed grant letting an aide read and answer for them.

A :class:`DelegationGrant` is signed by the principal's identity key as exact bytes in the
``hotline/v1/delegation-grant`` domain; a :class:`DelegationRevocation` likewise in
``hotline/v1/delegation-revocation``. Both travel as :class:`hotline.wire.codec.Signed`. The
principal's home server publishes the active grants next to the principal's device list
(:class:`PublishedGrant`, with the aide's own signed device list), so a counterpart's client can
check the grant against the principal identity key it pinned and the aide's devices against the
aide identity key the grant names. A message an aide sends for the principal carries
``on_behalf_of`` and ``grant_id`` in its envelope (and ``on_behalf_of`` in the send request, so
the server can check the grant too).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from hotline.wire.codec import Counter, Handle, Ident, Key32, Signed, Version

DOMAIN_GRANT = b"hotline/v1/delegation-grant"
DOMAIN_REVOCATION = b"hotline/v1/delegation-revocation"

#: what an aide may do: ``read`` (receive the principal's conversations) and ``answer`` (send
#: in the principal's conversations, labelled as the aide's)
Right = Literal["read", "answer"]
#: the most aides one principal may have at once whatever the policy says
MAX_AIDES = 8
#: the most contact pins a principal hands an aide in one notice
MAX_PINS = 200


class DelegationGrant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The principal lets ``aide`` read and/or answer in their conversations until expiry."""

    v: Version
    grant_id: Ident
    principal: Handle
    principal_identity_key: Key32
    aide: Handle
    aide_identity_key: Key32
    rights: Annotated[list[Right], msgspec.Meta(min_length=1, max_length=2)]
    issued_at: Counter
    expires_at: Counter


class DelegationRevocation(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The principal ends grant ``grant_id`` (signed by the same identity key)."""

    v: Version
    grant_id: Ident
    principal: Handle
    aide: Handle
    revoked_at: Counter


class PublishedGrant(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """An active grant as the principal's server publishes it, with the aide's device list."""

    grant: Signed
    aide_device_list: Signed


class DelegationsResponse(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``GET /v1/principals/{handle}/delegations``: the active grants and known revocations."""

    handle: Handle
    grants: Annotated[list[PublishedGrant], msgspec.Meta(max_length=MAX_AIDES)]
    revocations: Annotated[list[Signed], msgspec.Meta(max_length=256)] = msgspec.field(
        default_factory=list
    )


class GrantUpload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /v1/delegations``: a principal publishes a grant it signed."""

    grant: Signed


class RevocationUpload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``POST /v1/delegations/revoke``: a principal publishes a revocation it signed."""

    revocation: Signed


class ContactPin(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A counterpart of the principal as the principal pinned it (so the aide pins the same)."""

    handle: Handle
    display_name: Annotated[str, msgspec.Meta(max_length=128)]
    identity_key: Key32
    server_url: Annotated[str, msgspec.Meta(max_length=512)]


class DelegationNotice(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """What the principal's device tells the aide end to end: the grant (or its revocation)
    and the counterparts' pinned identity keys, so the aide can read and answer them."""

    grant: Signed | None = None
    revocation: Signed | None = None
    contacts: Annotated[list[ContactPin], msgspec.Meta(max_length=MAX_PINS)] = msgspec.field(
        default_factory=list
    )


__all__ = [
    "DOMAIN_GRANT",
    "DOMAIN_REVOCATION",
    "MAX_AIDES",
    "ContactPin",
    "DelegationGrant",
    "DelegationNotice",
    "DelegationRevocation",
    "DelegationsResponse",
    "GrantUpload",
    "PublishedGrant",
    "RevocationUpload",
    "Right",
]
