"""Queries shared by :class:`hotline.store.sql.SqlStore` methods.

Each runs inside the caller's transaction (it never begins or commits) and raises typed
:mod:`hotline.wire.errors` errors. The row locks taken here only matter on PostgreSQL;
SQLite ignores ``FOR UPDATE`` (its write transactions already exclude each other).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Row, Table, delete, false, func, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from hotline.store import prepared
from hotline.store.base import AideGrant, DeviceRow, PrincipalRow, SignedBlob
from hotline.store.schema import (
    challenges,
    deliveries,
    fallback_keys,
    one_time_keys,
    principals,
    sessions,
)
from hotline.store.schema import devices as device_table
from hotline.wire.errors import (
    AlreadyExists,
    MalformedInput,
    StaleVersion,
    UnknownDevice,
    UnknownPrincipal,
)


def cause_name(exc: BaseException) -> str:
    """Exception type names only: messages may quote stored values."""
    orig = getattr(exc, "orig", None)
    return type(exc).__name__ if orig is None else f"{type(exc).__name__}/{type(orig).__name__}"


def require_owner(rows: Iterable[DeviceRow], handle: str) -> None:
    if any(row.handle != handle for row in rows):
        raise MalformedInput("device belongs to another handle than the one named")


def require_newer(version: int, stored: int) -> None:
    if version <= stored:
        raise StaleVersion(stored=stored, got=version)


async def lock_principal(conn: AsyncConnection, handle: str, *, key_share: bool = False) -> Any:
    """The principal's version columns, row-locked until commit (PostgreSQL).

    ``key_share`` only keeps the row from being deleted; otherwise it is locked for update.

    Raises:
        UnknownPrincipal: no such handle.
    """
    query = select(principals.c.device_list_version, principals.c.allowlist_version).where(
        principals.c.handle == handle
    )
    if key_share:
        query = query.with_for_update(read=True, key_share=True)
    else:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None:
        raise UnknownPrincipal(handle=handle)
    return row


async def lock_device(conn: AsyncConnection, device_id: str) -> None:
    """Keep ``device_id`` from being removed until commit (PostgreSQL ``FOR KEY SHARE``).

    Raises:
        UnknownDevice: no such device.
    """
    found = await devices_by_id(conn, [device_id], key_share=True)
    if not found:
        raise UnknownDevice(device_id=device_id)


async def devices_by_id(
    conn: AsyncConnection, device_ids: Iterable[str], *, key_share: bool = False
) -> dict[str, DeviceRow]:
    ids = sorted(set(device_ids))
    if not ids:
        return {}
    query = prepared.DEVICES_BY_ID_KEY_SHARE if key_share else prepared.DEVICES_BY_ID
    return {row.device_id: device_row(row) for row in await conn.execute(query, {"ids": ids})}


async def remove_devices(conn: AsyncConnection, device_ids: set[str]) -> None:
    """Delete devices with everything that references them (dependants first)."""
    if not device_ids:
        return
    ids = sorted(device_ids)
    for table in (one_time_keys, fallback_keys, challenges, sessions, deliveries):
        await conn.execute(delete(table).where(table.c.device_id.in_(ids)))
    await conn.execute(delete(device_table).where(device_table.c.device_id.in_(ids)))


async def count_unclaimed(conn: AsyncConnection, device_id: str) -> int:
    count = await conn.scalar(
        select(func.count())
        .select_from(one_time_keys)
        .where(one_time_keys.c.device_id == device_id, one_time_keys.c.claimed == false())
    )
    return int(count or 0)


async def upsert(conn: AsyncConnection, table: Table, row: Mapping[str, Any], *, key: str) -> None:
    """Insert ``row`` or overwrite the row with the same ``key`` (no unique-violation race)."""
    changes = {name: value for name, value in row.items() if name != key}
    if conn.dialect.name == "postgresql":
        pg = pg_dialect.insert(table).values(**row)
        await conn.execute(pg.on_conflict_do_update(index_elements=[key], set_=changes))
    else:
        lite = sqlite_dialect.insert(table).values(**row)
        await conn.execute(lite.on_conflict_do_update(index_elements=[key], set_=changes))


async def insert_if_new(conn: AsyncConnection, table: Table, row: Mapping[str, Any]) -> bool:
    """Insert ``row`` unless its primary key exists; True if inserted.

    ``ON CONFLICT DO NOTHING`` rather than catching the violation, which would abort a
    PostgreSQL transaction.
    """
    inserted = await conn.execute(prepared.insert_if_new(table, conn.dialect.name), dict(row))
    return inserted.first() is not None


async def count_undelivered(conn: AsyncConnection, sender_device: str) -> int:
    """Mailbox items and queued peer messages sent by ``sender_device``, not yet taken."""
    params = {"sender_device": sender_device}
    local = await conn.scalar(prepared.UNDELIVERED_LOCAL, params)
    remote = await conn.scalar(prepared.UNDELIVERED_REMOTE, params)
    return int(local or 0) + int(remote or 0)


def device_values(device: DeviceRow) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "handle": device.handle,
        "curve25519": device.curve25519,
        "ed25519": device.ed25519,
        "created_at": device.created_at,
    }


def device_row(row: Row[Any]) -> DeviceRow:
    return DeviceRow(
        device_id=row.device_id,
        handle=row.handle,
        curve25519=bytes(row.curve25519),
        ed25519=bytes(row.ed25519),
        created_at=float(row.created_at),
    )


def principal_row(row: Row[Any]) -> PrincipalRow:
    allowlist = None
    if row.allowlist_version is not None:
        allowlist = SignedBlob(
            version=int(row.allowlist_version),
            payload=bytes(row.allowlist_payload),
            signature=bytes(row.allowlist_signature),
        )
    return PrincipalRow(
        handle=row.handle,
        display_name=row.display_name,
        identity_key=bytes(row.identity_key),
        created_at=float(row.created_at),
        device_list=SignedBlob(
            version=int(row.device_list_version),
            payload=bytes(row.device_list_payload),
            signature=bytes(row.device_list_signature),
        ),
        allowlist=allowlist,
    )


async def replace_device_list_in(
    conn: AsyncConnection, handle: str, device_list: SignedBlob, devices: list[DeviceRow]
) -> None:
    """``SqlStore.set_device_list`` inside the caller's transaction (approving a device link
    uses it: the link is used and the device listed at once)."""
    require_owner(devices, handle)
    wanted = {device.device_id: device for device in devices}
    if len(wanted) != len(devices):
        raise MalformedInput("device id listed twice")
    stored = await lock_principal(conn, handle)
    require_newer(device_list.version, stored.device_list_version)
    current = await devices_by_id(conn, wanted)
    for row in current.values():
        mine = wanted[row.device_id]
        if row.handle != handle or (row.curve25519, row.ed25519) != (
            mine.curve25519,
            mine.ed25519,
        ):
            raise AlreadyExists("device id already registered", device_id=row.device_id)
    owned = await conn.execute(
        select(device_table.c.device_id).where(device_table.c.handle == handle)
    )
    await remove_devices(conn, set(owned.scalars()) - wanted.keys())
    added = [device_values(d) for d in devices if d.device_id not in current]
    if added:
        await conn.execute(device_table.insert(), added)
    await conn.execute(
        update(principals)
        .where(principals.c.handle == handle)
        .values(
            device_list_version=device_list.version,
            device_list_payload=device_list.payload,
            device_list_signature=device_list.signature,
        )
    )


async def active_grants_with_devices(
    conn: AsyncConnection, principals: set[str], now: float
) -> list[AideGrant]:
    """Unexpired, unrevoked grants of ``principals`` with each aide's current devices (an
    aide without a device is listed with none), oldest grant first."""
    rows = await conn.execute(
        prepared.ACTIVE_GRANTS, {"principals": sorted(principals), "now": now}
    )
    found: dict[str, tuple[str, str, bytes, list[str]]] = {}
    for row in rows:
        _, _, _, devices = found.setdefault(
            row.grant_id, (row.principal, row.aide, bytes(row.payload), [])
        )
        if row.device_id is not None:
            devices.append(row.device_id)
    return [AideGrant(p, a, payload, tuple(d)) for p, a, payload, d in found.values()]
