"""Signing and checking group rosters (sans I/O).

A roster change is accepted only if (see docs/architecture.md, "Small groups"):

* it verifies under the signer key it carries, and that key is the one this device pinned for
  the signer: from the current roster, or (for a group this device does not know yet) from the
  signer's contact card — one joins a group only on the word of a contact;
* the signer is a current admin, or the change is that member's own departure (it removes
  exactly the signer and changes nothing else);
* the version is higher than the one in force (never a rollback or a replay);
* it keeps the identity key of every member who stays, and lists every contact of this device
  with the key pinned for them;
* it has at most the organisation policy's ``max_group_members`` (the protocol's ceiling of 50
  is a decoding limit).
"""

from __future__ import annotations

from collections.abc import Callable

from hotline.crypto.identity import IdentityKey, IdentityPublicKey
from hotline.wire.codec import Signed, decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import (
    ForbiddenByPolicy,
    IdentityChanged,
    MalformedInput,
    RosterRefused,
    StaleVersion,
)
from hotline.wire.groups import MAX_GROUP_MEMBERS, ROSTER_DOMAIN, GroupRoster


def sign_roster(identity: IdentityKey, roster: GroupRoster) -> Signed:
    """Sign the exact encoded bytes of ``roster`` (its ``signer_key`` must be ours)."""
    if b64d(roster.signer_key) != identity.public.to_bytes():
        raise ValueError("signer_key is not the signing identity's key")
    payload = encode(roster)
    return Signed(payload=b64e(payload), signature=b64e(identity.sign(ROSTER_DOMAIN, payload)))


def open_roster(signed: Signed) -> GroupRoster:
    """Decode a roster and verify it under the signer key it carries (who that is, is for
    :func:`check_roster` to judge).

    Raises:
        MalformedInput: not a roster (e.g. more than 50 members), or inconsistent.
        BadSignature: the signature does not verify.
    """
    payload = b64d(signed.payload, field="roster")
    roster = decode(payload, GroupRoster, what="group roster")
    IdentityPublicKey.from_bytes(b64d(roster.signer_key)).verify(
        ROSTER_DOMAIN, payload, b64d(signed.signature, field="signature")
    )
    handles = [m.handle for m in roster.members]
    if len(set(handles)) != len(handles):
        raise MalformedInput("a member is listed twice")
    if not set(roster.admins) <= set(handles):
        raise MalformedInput("an admin is not a member")
    return roster


def _keys(roster: GroupRoster) -> dict[str, str]:
    return {m.handle: m.identity_key for m in roster.members}


def check_roster(
    new: GroupRoster,
    current: GroupRoster | None,
    *,
    pinned: Callable[[str], str | None],
    limit: int = MAX_GROUP_MEMBERS,
) -> None:
    """Judge a verified roster against the one in force (None: a group new to this device).

    ``pinned(handle)`` is the identity key this device pinned for a contact (or itself), None
    for a stranger.

    Raises:
        RosterRefused: not signed by a current admin (or the leaver), or a change its signer
            may not make.
        StaleVersion: not newer than the roster in force.
        IdentityChanged: a member's key is not the one pinned for them.
        ForbiddenByPolicy: more members than the organisation allows.
    """
    if len(new.members) > limit:
        raise ForbiddenByPolicy(
            f"{len(new.members)} group members; your organisation allows at most {limit}",
            rule="max_group_members",
        )
    for handle, key in _keys(new).items():
        known = pinned(handle)
        if known is not None and known != key:
            raise IdentityChanged(f"the roster lists {handle} with another identity key")
    if current is None:
        if new.signer not in new.admins or pinned(new.signer) != new.signer_key:
            raise RosterRefused("a new group must come from one of your contacts, as its admin")
        return
    if new.group_id != current.group_id:
        raise MalformedInput("roster of another group")
    if new.version <= current.version:
        raise StaleVersion(
            f"roster version {new.version} is not newer than {current.version}",
            stored=current.version,
            got=new.version,
        )
    before = _keys(current)
    if before.get(new.signer) != new.signer_key:
        raise RosterRefused(f"{new.signer} is not a member of this group with that key")
    for handle, key in _keys(new).items():
        if handle in before and before[handle] != key:
            raise RosterRefused(f"the roster changes {handle}'s identity key")
    if new.signer in current.admins:
        return
    leaving = (
        new.action == "leave"
        and new.name == current.name
        and [m for m in current.members if m.handle != new.signer] == list(new.members)
        and [a for a in current.admins if a != new.signer] == list(new.admins)
    )
    if not leaving:
        raise RosterRefused(f"{new.signer} is not an admin of this group")
