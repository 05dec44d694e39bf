"""Small groups: the signed roster, the key share and the Megolm-carried group message.

A group's membership is a :class:`GroupRoster` signed as exact bytes (domain
``hotline/v1/group-roster``) by the identity key of one of its current admins, or by a member
signing its own departure. Every change is a new roster whose ``version`` only goes up.

Group messages are Megolm (vodozemac ``GroupSession``) ciphertexts of a :class:`GroupText`;
the session key travels to every member device over Olm inside an envelope of kind
``group_key`` (:class:`GroupPayload`), never through the server in the clear.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from hotline.wire.codec import Counter, Handle, Ident, Key32, Name, Signed, Version

#: hard ceiling of a group's size (the organisation policy may set a lower one)
MAX_GROUP_MEMBERS = 50
ROSTER_DOMAIN = b"hotline/v1/group-roster"
#: a Megolm message carries at most this much ciphertext (text is capped at 16 KiB)
MAX_MEGOLM = 48 * 1024

GroupId = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{16,64}$")]
RosterAction = Literal["create", "add", "remove", "leave", "rename"]


class Frozen(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Base for group structs."""


class GroupMember(Frozen, frozen=True):
    handle: Handle
    #: the member's identity key (base64url), pinned by whoever signs the roster
    identity_key: Key32


class GroupRoster(Frozen, frozen=True):
    """Who is in a group, signed by ``signer`` (an admin, or a member leaving)."""

    v: Version
    group_id: GroupId
    name: Name
    version: Annotated[int, msgspec.Meta(ge=1, le=2**53)]
    members: Annotated[list[GroupMember], msgspec.Meta(min_length=1, max_length=MAX_GROUP_MEMBERS)]
    #: may become empty when the last admin leaves (the roster is then frozen)
    admins: Annotated[list[Handle], msgspec.Meta(max_length=MAX_GROUP_MEMBERS)]
    signer: Handle
    #: the signer's identity key: the roster verifies on its own, and every receiver checks
    #: this key against the one it pinned (a current admin's, or the leaver's)
    signer_key: Key32
    action: RosterAction
    issued_at: Counter


class GroupPayload(Frozen, frozen=True):
    """The group part of an Olm envelope: a signed roster, or a Megolm session key."""

    group_id: GroupId
    roster: Signed | None = None
    session_id: Annotated[str, msgspec.Meta(max_length=128)] = ""
    #: the exported Megolm session key (base64 as vodozemac prints it); only in ``group_key``
    session_key: Annotated[str, msgspec.Meta(max_length=1024)] = ""


class GroupText(Frozen, frozen=True):
    """The plaintext of one Megolm group message."""

    v: Version
    group_id: GroupId
    message_id: Ident
    sender: Handle
    sender_device: Ident
    sent_at_ms: Counter
    roster_version: Counter
    text: Annotated[str, msgspec.Meta(max_length=16 * 1024)]


class GroupCiphertext(Frozen, frozen=True):
    """What a member device's mailbox holds for a group message (kind ``megolm``)."""

    v: Version
    group_id: GroupId
    session_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    ciphertext: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]*$", max_length=MAX_MEGOLM)]


class GroupRecipient(Frozen, frozen=True):
    to: Handle
    device_ids: Annotated[list[Ident], msgspec.Meta(min_length=1, max_length=16)]


class GroupSendRequest(Frozen, frozen=True):
    """``POST /v1/groups/messages``: one Megolm ciphertext for every member device."""

    group_id: GroupId
    message_id: Ident
    #: exact JSON of a :class:`GroupCiphertext`, base64url
    body: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]*$", max_length=2 * MAX_MEGOLM)]
    recipients: Annotated[
        list[GroupRecipient], msgspec.Meta(min_length=1, max_length=MAX_GROUP_MEMBERS)
    ]
    #: the sender's one sealed record of the message (base64url), when the server archives
    record: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]*$", max_length=140_000)] | None = (
        None
    )
    known_tree_size: Counter = 0


class GroupMembershipUpload(Frozen, frozen=True):
    """``PUT /v1/groups``: the caller joins (or follows a change of) a group."""

    roster: Signed


__all__ = [
    "MAX_GROUP_MEMBERS",
    "ROSTER_DOMAIN",
    "GroupCiphertext",
    "GroupId",
    "GroupMember",
    "GroupMembershipUpload",
    "GroupPayload",
    "GroupRecipient",
    "GroupRoster",
    "GroupSendRequest",
    "GroupText",
]
