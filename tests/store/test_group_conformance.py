"""Conformance of the small-group half of the store (members' rosters), on every backend."""

from __future__ import annotations

import pytest
from test_conformance import blob, enrol

from hotline.store import Store
from hotline.wire.errors import StaleVersion, UnknownPrincipal

GROUP = "g" * 24


async def test_membership_is_per_owner_and_per_group(store: Store) -> None:
    await enrol(store, "pm")
    await enrol(store, "potus")
    await store.put_group_membership("pm", GROUP, blob(1, b"roster"), ["pm", "potus", "vp@x"])
    assert await store.is_group_member("pm", GROUP, "vp@x")
    assert not await store.is_group_member("potus", GROUP, "vp@x")  # potus did not upload
    assert not await store.is_group_member("pm", "h" * 24, "vp@x")
    assert await store.shares_group("pm", "vp@x")
    assert not await store.shares_group("pm", "stranger")
    stored = await store.group_membership("pm", GROUP)
    assert stored is not None and (stored.version, stored.payload) == (1, b"roster/1")


async def test_membership_version_never_goes_down(store: Store) -> None:
    await enrol(store, "pm")
    await store.put_group_membership("pm", GROUP, blob(2), ["pm", "vp"])
    with pytest.raises(StaleVersion):
        await store.put_group_membership("pm", GROUP, blob(1), ["pm", "vp", "mallory"])
    assert not await store.is_group_member("pm", GROUP, "mallory")  # nothing stored
    await store.put_group_membership("pm", GROUP, blob(2), ["pm", "vp"])  # a retry is harmless
    await store.put_group_membership("pm", GROUP, blob(3), ["pm"])  # vp removed
    assert not await store.is_group_member("pm", GROUP, "vp")
    assert not await store.shares_group("pm", "vp")


async def test_drop_membership_and_unknown_owner(store: Store) -> None:
    await enrol(store, "pm")
    await store.put_group_membership("pm", GROUP, blob(1), ["pm", "vp"])
    assert await store.drop_group_membership("pm", GROUP)
    assert not await store.drop_group_membership("pm", GROUP)
    assert await store.group_membership("pm", GROUP) is None
    assert not await store.is_group_member("pm", GROUP, "vp")
    with pytest.raises(UnknownPrincipal):
        await store.put_group_membership("nobody", GROUP, blob(1), ["nobody"])
