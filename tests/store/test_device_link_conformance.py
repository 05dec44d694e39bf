"""Conformance of the device-link half of the store (remote enrolment), on every backend."""

from __future__ import annotations

import asyncio

import pytest
from test_conformance import HOUR, T0, blob, device, enrol

from hotline.store import DeviceLinkRow, Store
from hotline.store.base import LINK_RETENTION
from hotline.wire.errors import (
    AlreadyExists,
    LinkExpired,
    LinkInvalid,
    LinkUsed,
    MalformedInput,
    StaleVersion,
)

VERIFIER = b"v" * 32
TTL = 600.0


def link(
    link_id: str = "L1", device_id: str = "pm-2", expires_at: float = T0 + TTL
) -> DeviceLinkRow:
    new = device(device_id)
    return DeviceLinkRow(
        link_id=link_id,
        verifier=VERIFIER,
        device_id=device_id,
        curve25519=new.curve25519,
        ed25519=new.ed25519,
        link_key=b"k" * 32,
        binding=b"b" * 32,
        created_at=T0,
        expires_at=expires_at,
    )


async def approve(store: Store, link_id: str = "L1", *, version: int = 2, now: float = T0) -> None:
    await store.approve_device_link(
        link_id,
        VERIFIER,
        handle="pm",
        bundle=b"sealed bundle",
        device_list=blob(version),
        devices=[device("pm-1"), device("pm-2")],
        now=now,
        collect_until=now + 120,
    )


async def test_link_lifecycle_pending_approved_collected_once(store: Store) -> None:
    await enrol(store, "pm")
    await store.create_device_link(link(), T0)
    opened = await store.open_device_link("L1", VERIFIER, T0 + 1)
    assert (opened.state, opened.device_id, opened.link_key) == ("pending", "pm-2", b"k" * 32)
    assert (await store.collect_device_link("L1", VERIFIER, T0 + 2)).state == "pending"
    await approve(store, now=T0 + 3)
    # Approval listed the device in the same transaction.
    assert [d.device_id for d in await store.list_devices("pm")] == ["pm-1", "pm-2"]
    principal = await store.get_principal("pm")
    assert principal is not None and principal.device_list.version == 2
    with pytest.raises(LinkUsed):
        await store.open_device_link("L1", VERIFIER, T0 + 4)
    with pytest.raises(LinkUsed):  # a replayed approval
        await approve(store, version=3, now=T0 + 4)
    collected = await store.collect_device_link("L1", VERIFIER, T0 + 5)
    assert (collected.state, collected.handle, collected.bundle) == (
        "approved",
        "pm",
        b"sealed bundle",
    )
    with pytest.raises(LinkUsed):  # the bundle is handed out once
        await store.collect_device_link("L1", VERIFIER, T0 + 6)


async def test_wrong_verifier_or_unknown_link_is_invalid_first(store: Store) -> None:
    await enrol(store, "pm")
    await store.create_device_link(link(), T0)
    for link_id, verifier in (("L1", b"w" * 32), ("nope", VERIFIER)):
        with pytest.raises(LinkInvalid):
            await store.open_device_link(link_id, verifier, T0)
        with pytest.raises(LinkInvalid):
            await store.collect_device_link(link_id, verifier, T0)
        with pytest.raises(LinkInvalid):
            await store.approve_device_link(
                link_id,
                verifier,
                handle="pm",
                bundle=b"x",
                device_list=blob(2),
                devices=[device("pm-1"), device("pm-2")],
                now=T0,
                collect_until=T0 + 120,
            )
    # Even for an expired link, a wrong secret learns only "invalid".
    with pytest.raises(LinkInvalid):
        await store.open_device_link("L1", b"w" * 32, T0 + HOUR)
    assert [d.device_id for d in await store.list_devices("pm")] == ["pm-1"]


async def test_expired_link_refused_and_nothing_stored(store: Store) -> None:
    await enrol(store, "pm")
    await store.create_device_link(link(), T0)
    with pytest.raises(LinkExpired):
        await store.open_device_link("L1", VERIFIER, T0 + TTL)
    with pytest.raises(LinkExpired):
        await approve(store, now=T0 + TTL)
    with pytest.raises(LinkExpired):
        await store.collect_device_link("L1", VERIFIER, T0 + TTL)
    assert [d.device_id for d in await store.list_devices("pm")] == ["pm-1"]
    principal = await store.get_principal("pm")
    assert principal is not None and principal.device_list.version == 1


async def test_approved_bundle_collectable_within_window_only(store: Store) -> None:
    await enrol(store, "pm")
    await store.create_device_link(link(), T0)
    await approve(store, now=T0 + TTL - 1)  # approved at the last second: 120 s to collect
    assert (await store.collect_device_link("L1", VERIFIER, T0 + TTL + 60)).bundle is not None
    await store.create_device_link(link("L2", "pm-3"), T0)
    await store.approve_device_link(
        "L2",
        VERIFIER,
        handle="pm",
        bundle=b"x",
        device_list=blob(3),
        devices=[device("pm-1"), device("pm-2"), device("pm-3")],
        now=T0,
        collect_until=T0 + 120,
    )
    with pytest.raises(LinkExpired):
        await store.collect_device_link("L2", VERIFIER, T0 + TTL)


async def test_approval_checks_the_listed_device_and_rolls_back(store: Store) -> None:
    await enrol(store, "pm")
    await store.create_device_link(link(), T0)
    with pytest.raises(MalformedInput):  # the list does not name the linked device
        await store.approve_device_link(
            "L1",
            VERIFIER,
            handle="pm",
            bundle=b"x",
            device_list=blob(2),
            devices=[device("pm-1"), device("pm-3")],
            now=T0,
            collect_until=T0 + 120,
        )
    with pytest.raises(MalformedInput):  # ... or names it with other keys
        await store.approve_device_link(
            "L1",
            VERIFIER,
            handle="pm",
            bundle=b"x",
            device_list=blob(2),
            devices=[device("pm-1"), device("pm-2", tag=b"!")],
            now=T0,
            collect_until=T0 + 120,
        )
    with pytest.raises(StaleVersion):  # the device-list rules apply; the link stays unused
        await approve(store, version=1)
    assert (await store.open_device_link("L1", VERIFIER, T0)).state == "pending"
    assert [d.device_id for d in await store.list_devices("pm")] == ["pm-1"]


async def test_create_refuses_taken_ids_and_forgets_old_links(store: Store) -> None:
    await enrol(store, "pm")
    await store.create_device_link(link(), T0)
    with pytest.raises(AlreadyExists):
        await store.create_device_link(link("L1", "pm-9"), T0)
    with pytest.raises(AlreadyExists):  # a registered device id cannot be linked again
        await store.create_device_link(link("L2", "pm-1"), T0)
    later = T0 + TTL + LINK_RETENTION + 1
    await store.create_device_link(link("L3", "pm-3", expires_at=later + TTL), later)
    with pytest.raises(LinkInvalid):
        await store.open_device_link("L1", VERIFIER, later)


async def test_concurrent_approvals_use_the_link_once(store: Store) -> None:
    await enrol(store, "pm")
    await store.create_device_link(link(), T0)
    results = await asyncio.gather(
        approve(store, version=2), approve(store, version=3), return_exceptions=True
    )
    assert sorted(type(r).__name__ for r in results) == ["LinkUsed", "NoneType"]
    assert (await store.collect_device_link("L1", VERIFIER, T0 + 1)).state == "approved"
