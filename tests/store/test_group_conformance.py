"""Conformance of the small-group half of the store (members' rosters), on every backend."""

from __future__ import annotations

import pytest
from test_conformance import T0, blob, enrol, item

from hotline.store import OutboundItem, Store
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


async def test_group_send_context_reads_every_check_at_once(store: Store) -> None:
    await enrol(store, "potus", "potus-1", "potus-2")
    await enrol(store, "pm", "pm-2", "pm-1")
    await enrol(store, "vp")
    await store.put_peer("ottawa.test", "http://o", b"k1", 1.0)
    members = ["potus", "pm", "vp", "sos@ottawa.test"]
    await store.put_group_membership("potus", GROUP, blob(1), members)
    await store.put_group_membership("pm", GROUP, blob(1), members)
    await store.put_group_membership("vp", GROUP, blob(1), ["vp", "pm"])  # an older roster
    context = await store.group_send_context(
        "potus-1", "potus", GROUP, ["potus", "pm", "vp", "nobody"], ["ottawa.test", "berlin.test"]
    )
    assert context.undelivered == 0
    assert context.roster == frozenset(members)
    assert context.listed_by == {"potus", "pm"}  # vp's own roster does not list potus
    assert context.devices == {
        "potus": ["potus-1", "potus-2"],
        "pm": ["pm-1", "pm-2"],  # ordered by device id
        "vp": ["vp-1"],
    }
    assert context.peers == {"ottawa.test"}

    await store.enqueue(
        message_id="m1",
        sender_handle="potus",
        sender_device="potus-1",
        items=[item("pm-1"), item("pm-2")],
        now=T0,
        outbound=[OutboundItem("ottawa.test", "m1", "potus-1", b"payload")],
    )
    again = await store.group_send_context("potus-1", "potus", GROUP, [], [])
    assert again.undelivered == 3 == await store.count_undelivered("potus-1")
    assert (again.listed_by, again.devices, again.peers) == (frozenset(), {}, frozenset())


async def test_group_send_context_of_a_non_member(store: Store) -> None:
    await enrol(store, "pm")
    await enrol(store, "mallory")
    await store.put_group_membership("pm", GROUP, blob(1), ["pm", "potus"])
    context = await store.group_send_context("mallory-1", "mallory", GROUP, ["pm"], [])
    assert context.roster == frozenset()  # mallory holds no roster of the group
    assert context.listed_by == frozenset()  # and pm's does not list her
    assert context.devices == {"pm": ["pm-1"]}
    other = await store.group_send_context("pm-1", "pm", "h" * 24, ["pm"], [])
    assert other.roster == other.listed_by == frozenset()
