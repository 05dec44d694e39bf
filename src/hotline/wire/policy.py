"""The organisation's device policy: what features are on, the limits, and the records banner.

An organisation (a government) signs its policy with its Ed25519 organisation key, kept
offline like the custodian's. The signed bytes travel as :class:`hotline.wire.codec.Signed`
(domain ``hotline/v1/policy``); the home server publishes them and clients verify them against
the organisation key they pinned, refusing a policy whose ``version`` is lower than one seen
before (a downgrade). Both ends enforce it: the client does not offer what policy forbids, and
the server refuses it (``forbidden_by_policy``).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from hotline.wire.codec import Version

POLICY_DOMAIN = b"hotline/v1/policy"

#: what kind of content a message carries, declared to the server so it can enforce policy on
#: ciphertext; the recipient's device checks the declaration against the decrypted envelope
ContentClass = Literal["message", "call", "control"]


class Attachments(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    allowed: bool = False
    max_bytes: Annotated[int, msgspec.Meta(ge=0, le=2**31)] = 0
    types: Annotated[list[str], msgspec.Meta(max_length=64)] = msgspec.field(default_factory=list)


class Features(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    voice_calls: bool = True
    call_recording: Literal["required", "optional", "off"] = "off"
    attachments: Attachments = msgspec.field(default_factory=Attachments)
    link_previews: bool = False
    forwarding: bool = False
    copy_export: bool = False
    #: always off where a records law applies (the server refuses a policy that turns it on)
    disappearing_messages: bool = False
    #: small group conversations (``hotline group``)
    groups: bool = True


class RecordsBinding(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The custodian keys the organisation authorises to receive its records.

    A home server's records policy is signed only by the server's own log key; naming the
    custodian here, under the offline organisation key, lets every device refuse a server that
    substitutes its own key for the custodian's (threat model row 12).
    """

    #: fingerprints as ``hotline archive init`` prints them (more than one during a rotation)
    custodian_fingerprints: Annotated[
        list[Annotated[str, msgspec.Meta(min_length=39, max_length=39)]],
        msgspec.Meta(min_length=1, max_length=8),
    ]


class Aides(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Delegation to aides (``hotline aides grant``): whether allowed, how many, how long."""

    allowed: bool = True
    max_aides: Annotated[int, msgspec.Meta(ge=0, le=8)] = 2
    max_grant_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 90


class Policy(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    v: Version
    organisation: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    version: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    issued_at: Annotated[int, msgspec.Meta(ge=0)]
    features: Features = msgspec.field(default_factory=Features)
    max_contacts: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 200
    max_devices: Annotated[int, msgspec.Meta(ge=1, le=16)] = 4
    #: most principals in one group (the protocol's ceiling is 50)
    max_group_members: Annotated[int, msgspec.Meta(ge=2, le=50)] = 50
    card_validity_days: Annotated[int, msgspec.Meta(ge=1, le=3650)] = 90
    contact_approval: Literal["principal", "aide"] = "principal"
    records_banner: Annotated[str, msgspec.Meta(max_length=1024)] = ""
    records: RecordsBinding | None = None
    aides: Aides = msgspec.field(default_factory=Aides)
