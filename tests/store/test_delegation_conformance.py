"""Conformance of the delegation half of the store (aides' grants, blocked devices), on every
backend."""

from __future__ import annotations

import pytest
from test_conformance import HOUR, T0, enrol

from hotline.store import DeliveryItem, Store
from hotline.store.delegation_base import GrantRow
from hotline.wire.errors import AlreadyExists, ForbiddenByPolicy, NotFound


def grant(grant_id: str, aide: str = "chief", expires_at: float = T0 + HOUR) -> GrantRow:
    return GrantRow(
        grant_id=grant_id,
        principal="potus",
        aide=aide,
        payload=b"grant " + grant_id.encode(),
        signature=b"s" * 64,
        expires_at=expires_at,
        created_at=T0,
    )


async def test_grants_replace_revoke_expire_and_limit(store: Store) -> None:
    await store.put_grant(grant("g1"), max_active=2, now=T0)
    await store.put_grant(grant("g2", aide="deputy"), max_active=2, now=T0)
    with pytest.raises(ForbiddenByPolicy):
        await store.put_grant(grant("g3", aide="third"), max_active=2, now=T0)
    with pytest.raises(AlreadyExists):
        await store.put_grant(grant("g1", aide="other"), max_active=8, now=T0)
    # A new grant to the same aide replaces (revokes) the old one: one grant per aide.
    await store.put_grant(grant("g4"), max_active=2, now=T0 + 1)
    assert [g.grant_id for g in await store.grants_to("chief", T0 + 2)] == ["g4"]
    old = await store.get_grant("g1")
    assert old is not None and old.revoked_at == T0 + 1 and old.revocation_payload is None
    revoked = await store.revoke_grant("g4", "potus", b"revocation", b"r" * 64, T0 + 3)
    assert revoked.grant_id == "g4"
    assert await store.grants_to("chief", T0 + 4) == []
    listed = {g.grant_id: g for g in await store.grants_of("potus", T0 + 4)}
    assert listed["g4"].revocation_payload == b"revocation" and listed["g4"].revoked_at == T0 + 3
    assert await store.grants_of("potus", T0 + HOUR) == []  # all expired
    with pytest.raises(NotFound):
        await store.revoke_grant("g2", "someone-else", b"x", b"y", T0)
    assert await store.get_grant("nope") is None


async def test_block_device_drops_it_and_remembers(store: Store) -> None:
    await enrol(store, "pm", "pm-1", "pm-2")
    await store.enqueue(
        message_id="m1",
        sender_handle="pm",
        sender_device="pm-1",
        items=[DeliveryItem("pm-2", "olm", b"\x01x")],
        now=T0,
    )
    assert not await store.block_device("someone", "pm-2", T0)  # not theirs
    assert await store.block_device("pm", "pm-2", T0)
    assert await store.get_device("pm-2") is None
    assert await store.pending("pm-2", 0, 10) == []
    assert await store.is_blocked("pm-2") and not await store.is_blocked("pm-1")
    assert await store.blocked_devices("pm") == ["pm-2"]
    assert not await store.block_device("pm", "pm-2", T0)  # already gone
