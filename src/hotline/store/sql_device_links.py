"""The device-link half of :class:`hotline.store.sql.SqlStore` (a mixin): new devices waiting
for an existing device of their principal to approve them (:mod:`hotline.client.enrolment`).

Every check of a link (verifier, state, expiry) and its state change run in one transaction
with the row locked (``FOR UPDATE`` on PostgreSQL; SQLite write transactions exclude each
other), so a link is approved and collected at most once even under concurrent requests.
"""

from __future__ import annotations

import hmac
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hotline.store import queries as q
from hotline.store.base import LINK_RETENTION, DeviceLinkRow, DeviceRow, SignedBlob
from hotline.store.schema import device_links
from hotline.store.schema import devices as device_table
from hotline.wire.errors import (
    AlreadyExists,
    HotlineError,
    LinkExpired,
    LinkInvalid,
    LinkUsed,
    MalformedInput,
)


class _HasTx(Protocol):
    def _tx(
        self, *, read_only: bool = False, conflict: HotlineError | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection]: ...


def _link(row: Any) -> DeviceLinkRow:
    return DeviceLinkRow(
        link_id=row.link_id,
        verifier=bytes(row.verifier),
        device_id=row.device_id,
        curve25519=bytes(row.curve25519),
        ed25519=bytes(row.ed25519),
        link_key=bytes(row.link_key),
        binding=bytes(row.binding),
        created_at=float(row.created_at),
        expires_at=float(row.expires_at),
        state=row.state,
        handle=row.handle,
        bundle=None if row.bundle is None else bytes(row.bundle),
    )


async def _locked(
    conn: AsyncConnection, link_id: str, verifier: bytes, *, lock: bool
) -> DeviceLinkRow:
    """The link if ``verifier`` matches. Raises: LinkInvalid (one answer for both causes)."""
    query = select(device_links).where(device_links.c.link_id == link_id)
    if lock:
        query = query.with_for_update()
    row = (await conn.execute(query)).first()
    if row is None or not hmac.compare_digest(bytes(row.verifier), verifier):
        raise LinkInvalid("no such device link, or the code's secret is wrong")
    return _link(row)


def _require_pending(link: DeviceLinkRow, now: float) -> None:
    if link.state != "pending":
        raise LinkUsed("this device link was already approved; start again on the new device")
    if now >= link.expires_at:
        raise LinkExpired("this device link expired; start again on the new device")


class SqlDeviceLinkMixin:
    """See :class:`hotline.store.base.DeviceLinkStore`."""

    async def create_device_link(self: _HasTx, link: DeviceLinkRow, now: float) -> None:
        conflict = AlreadyExists("device link id already taken")
        async with self._tx(conflict=conflict) as conn:
            await conn.execute(
                delete(device_links).where(device_links.c.expires_at < now - LINK_RETENTION)
            )
            taken = await conn.scalar(
                select(device_table.c.device_id).where(device_table.c.device_id == link.device_id)
            )
            if taken is not None:
                raise AlreadyExists("device id already registered", device_id=link.device_id)
            await conn.execute(
                device_links.insert().values(
                    link_id=link.link_id,
                    verifier=link.verifier,
                    device_id=link.device_id,
                    curve25519=link.curve25519,
                    ed25519=link.ed25519,
                    link_key=link.link_key,
                    binding=link.binding,
                    created_at=link.created_at,
                    expires_at=link.expires_at,
                    state="pending",
                    handle=None,
                    bundle=None,
                )
            )

    async def open_device_link(
        self: _HasTx, link_id: str, verifier: bytes, now: float
    ) -> DeviceLinkRow:
        async with self._tx(read_only=True) as conn:
            link = await _locked(conn, link_id, verifier, lock=False)
        _require_pending(link, now)
        return link

    async def approve_device_link(
        self: _HasTx,
        link_id: str,
        verifier: bytes,
        *,
        handle: str,
        bundle: bytes,
        device_list: SignedBlob,
        devices: list[DeviceRow],
        now: float,
        collect_until: float,
    ) -> None:
        conflict = AlreadyExists("device id already registered")
        async with self._tx(conflict=conflict) as conn:
            link = await _locked(conn, link_id, verifier, lock=True)
            _require_pending(link, now)
            listed = {d.device_id: d for d in devices}.get(link.device_id)
            if listed is None or (listed.curve25519, listed.ed25519) != (
                link.curve25519,
                link.ed25519,
            ):
                raise MalformedInput("the device list must name the linked device with its keys")
            await q.replace_device_list_in(conn, handle, device_list, devices)
            await conn.execute(
                update(device_links)
                .where(device_links.c.link_id == link_id)
                .values(
                    state="approved",
                    handle=handle,
                    bundle=bundle,
                    expires_at=max(link.expires_at, collect_until),
                )
            )

    async def collect_device_link(
        self: _HasTx, link_id: str, verifier: bytes, now: float
    ) -> DeviceLinkRow:
        async with self._tx() as conn:
            link = await _locked(conn, link_id, verifier, lock=True)
            if link.state == "collected":
                raise LinkUsed("this device link's bundle was already collected")
            if now >= link.expires_at:
                raise LinkExpired("this device link expired; start again on the new device")
            if link.state == "approved":
                await conn.execute(
                    update(device_links)
                    .where(device_links.c.link_id == link_id)
                    .values(state="collected", bundle=None)
                )
        return link
