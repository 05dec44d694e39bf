"""Group wire structs round-trip; rosters verify as exact bytes; every bad change is refused."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.client.group_roster import check_roster, open_roster, sign_roster
from hotline.crypto.identity import IdentityKey
from hotline.wire.codec import Signed, decode, encode
from hotline.wire.encoding import b64d, b64e
from hotline.wire.errors import (
    BadSignature,
    ForbiddenByPolicy,
    IdentityChanged,
    MalformedInput,
    RosterRefused,
    StaleVersion,
)
from hotline.wire.groups import (
    GroupCiphertext,
    GroupMember,
    GroupPayload,
    GroupRoster,
    GroupText,
)

ADMIN = IdentityKey.generate()
VP = IdentityKey.generate()
PM = IdentityKey.generate()
KEYS = {"potus@wh.test": ADMIN, "vp@wh.test": VP, "pm@ottawa.test": PM}
GID = "summit-group-id-0001"

handles = st.from_regex(r"\A[a-z0-9][a-z0-9._-]{0,20}@[a-z0-9][a-z0-9.-]{0,20}\Z")


def key(identity: IdentityKey) -> str:
    return b64e(identity.public.to_bytes())


def roster(
    members: list[str], *, version: int = 1, signer: str = "potus@wh.test", **changes: object
) -> GroupRoster:
    fields: dict[str, object] = {
        "v": 1,
        "group_id": GID,
        "name": "Summit",
        "version": version,
        "members": [GroupMember(handle=h, identity_key=key(KEYS[h])) for h in members],
        "admins": ["potus@wh.test"],
        "signer": signer,
        "signer_key": key(KEYS[signer]),
        "action": "create" if version == 1 else "add",
        "issued_at": 0,
    }
    fields.update(changes)
    return GroupRoster(**fields)  # type: ignore[arg-type]


def pinned(handle: str) -> str | None:
    """This device (pm) pinned potus as a contact, and itself."""
    return {"potus@wh.test": key(ADMIN), "pm@ottawa.test": key(PM)}.get(handle)


ALL = ["potus@wh.test", "vp@wh.test", "pm@ottawa.test"]
V1 = roster(ALL)


@settings(max_examples=50, deadline=None)
@given(name=st.text(min_size=1, max_size=128), members=st.lists(handles, min_size=1, max_size=50))
def test_roster_round_trips_and_verifies(name: str, members: list[str]) -> None:
    listed = [GroupMember(handle=h, identity_key=key(ADMIN)) for h in dict.fromkeys(members)]
    new = msgspec.structs.replace(V1, name=name, members=listed, admins=[listed[0].handle])
    new = msgspec.structs.replace(new, signer=listed[0].handle, signer_key=key(ADMIN))
    signed = sign_roster(ADMIN, new)
    assert open_roster(decode(encode(signed), Signed)) == new


@settings(max_examples=50, deadline=None)
@given(index=st.integers(min_value=0), bit=st.integers(0, 7))
def test_any_bit_flip_of_a_signed_roster_is_refused(index: int, bit: int) -> None:
    signed = sign_roster(ADMIN, V1)
    payload = bytearray(b64d(signed.payload))
    payload[index % len(payload)] ^= 1 << bit
    with pytest.raises((BadSignature, MalformedInput)):
        open_roster(Signed(payload=b64e(bytes(payload)), signature=signed.signature))


@settings(max_examples=50, deadline=None)
@given(text=st.text(max_size=2000), index=st.integers(0, 2**53), gid=st.just(GID))
def test_group_structs_round_trip(text: str, index: int, gid: str) -> None:
    message = GroupText(
        v=1,
        group_id=gid,
        message_id="m1",
        sender="pm@ottawa.test",
        sender_device="D1",
        sent_at_ms=index,
        roster_version=index,
        text=text,
    )
    ciphertext = GroupCiphertext(v=1, group_id=gid, session_id="s", ciphertext=b64e(b"x"))
    payload = GroupPayload(group_id=gid, roster=sign_roster(ADMIN, V1))
    for struct in (message, ciphertext, payload):
        assert decode(encode(struct), type(struct)) == struct


def test_fifty_one_members_do_not_decode() -> None:
    raw = msgspec.json.decode(encode(V1))
    raw["members"] = [{"handle": f"m{i}@x.test", "identity_key": key(ADMIN)} for i in range(51)]
    with pytest.raises(MalformedInput):
        decode(msgspec.json.encode(raw), GroupRoster)


def test_new_group_only_from_a_contact_admin() -> None:
    check_roster(V1, None, pinned=pinned)
    by_stranger = roster(ALL, signer="vp@wh.test", admins=["vp@wh.test"])
    with pytest.raises(RosterRefused):
        check_roster(by_stranger, None, pinned=pinned)  # vp is no contact of pm


def test_changes_refused_with_typed_errors() -> None:
    with pytest.raises(StaleVersion):
        check_roster(V1, V1, pinned=pinned)  # a replay
    with pytest.raises(StaleVersion):
        check_roster(roster(ALL, version=1), roster(ALL, version=2), pinned=pinned)  # rollback
    with pytest.raises(RosterRefused):  # forged by a member who is no admin
        check_roster(roster(ALL, version=2, signer="vp@wh.test"), V1, pinned=pinned)
    with pytest.raises(RosterRefused):  # a leave that also changes the admins
        leave = roster(ALL[:2], version=2, signer="pm@ottawa.test", action="leave", admins=[])
        check_roster(leave, V1, pinned=pinned)
    potus, _, pm = roster(ALL).members
    vp_with_pm_key = GroupMember(handle="vp@wh.test", identity_key=key(PM))
    swapped = msgspec.structs.replace(roster(ALL, version=2), members=[potus, vp_with_pm_key, pm])
    with pytest.raises(RosterRefused):  # an admin may not swap a member's key
        check_roster(swapped, V1, pinned=pinned)
    impostor = msgspec.structs.replace(
        V1, members=[*V1.members[:2], GroupMember(handle="pm@ottawa.test", identity_key=key(VP))]
    )
    with pytest.raises(IdentityChanged):  # the roster lists me (a contact) with another key
        check_roster(impostor, None, pinned=pinned)
    with pytest.raises(ForbiddenByPolicy):
        check_roster(roster(ALL, version=2), V1, pinned=pinned, limit=2)


def test_a_member_may_sign_its_own_departure() -> None:
    leave = roster(
        ["potus@wh.test", "pm@ottawa.test"], version=2, signer="vp@wh.test", action="leave"
    )
    check_roster(leave, V1, pinned=pinned)
