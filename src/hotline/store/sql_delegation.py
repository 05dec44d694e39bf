"""The delegation half of :class:`hotline.store.sql.SqlStore` (a mixin): aides' grants and
devices the administrator removed (:mod:`hotline.store.delegation_base`)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sqlalchemy import and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hotline.store import queries as q
from hotline.store.delegation_base import GrantRow
from hotline.store.schema import devices as device_table
from hotline.store.schema_delegation import blocked_devices, delegations
from hotline.wire.errors import AlreadyExists, ForbiddenByPolicy, HotlineError, NotFound


class _HasTx(Protocol):
    def _tx(
        self, *, read_only: bool = False, conflict: HotlineError | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection]: ...


def _grant(row: Any) -> GrantRow:
    return GrantRow(
        grant_id=row.grant_id,
        principal=row.principal,
        aide=row.aide,
        payload=bytes(row.payload),
        signature=bytes(row.signature),
        expires_at=float(row.expires_at),
        created_at=float(row.created_at),
        revoked_at=None if row.revoked_at is None else float(row.revoked_at),
        revocation_payload=None
        if row.revocation_payload is None
        else bytes(row.revocation_payload),
        revocation_signature=(
            None if row.revocation_signature is None else bytes(row.revocation_signature)
        ),
    )


def _active(now: float) -> Any:
    return and_(delegations.c.revoked_at.is_(None), delegations.c.expires_at > now)


class SqlDelegationMixin:
    """See :class:`hotline.store.delegation_base.DelegationStore`."""

    async def put_grant(self: _HasTx, grant: GrantRow, *, max_active: int, now: float) -> None:
        async with self._tx(conflict=AlreadyExists("grant id already taken")) as conn:
            await conn.execute(
                update(delegations)
                .where(
                    delegations.c.principal == grant.principal,
                    delegations.c.aide == grant.aide,
                    delegations.c.revoked_at.is_(None),
                )
                .values(revoked_at=now)
            )
            active = await conn.scalar(
                select(func.count())
                .select_from(delegations)
                .where(delegations.c.principal == grant.principal, _active(now))
            )
            if int(active or 0) >= max_active:
                raise ForbiddenByPolicy(
                    f"{grant.principal} already has {active} aides; at most {max_active}",
                    rule="max_aides",
                )
            await conn.execute(
                delegations.insert().values(
                    grant_id=grant.grant_id,
                    principal=grant.principal,
                    aide=grant.aide,
                    payload=grant.payload,
                    signature=grant.signature,
                    expires_at=grant.expires_at,
                    created_at=now,
                )
            )

    async def revoke_grant(
        self: _HasTx, grant_id: str, principal: str, payload: bytes, signature: bytes, now: float
    ) -> GrantRow:
        async with self._tx() as conn:
            row = (
                await conn.execute(
                    select(delegations).where(
                        delegations.c.grant_id == grant_id, delegations.c.principal == principal
                    )
                )
            ).first()
            if row is None:
                raise NotFound(f"{principal} has no grant {grant_id}")
            await conn.execute(
                update(delegations)
                .where(delegations.c.grant_id == grant_id)
                .values(
                    revoked_at=row.revoked_at if row.revoked_at is not None else now,
                    revocation_payload=payload,
                    revocation_signature=signature,
                )
            )
            return _grant(row)

    async def get_grant(self: _HasTx, grant_id: str) -> GrantRow | None:
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(select(delegations).where(delegations.c.grant_id == grant_id))
            ).first()
        return None if row is None else _grant(row)

    async def grants_of(self: _HasTx, principal: str, now: float) -> list[GrantRow]:
        async with self._tx(read_only=True) as conn:
            rows = await conn.execute(
                select(delegations)
                .where(delegations.c.principal == principal, delegations.c.expires_at > now)
                .order_by(delegations.c.created_at, delegations.c.grant_id)
            )
            return [_grant(r) for r in rows]

    async def grants_to(self: _HasTx, aide: str, now: float) -> list[GrantRow]:
        async with self._tx(read_only=True) as conn:
            rows = await conn.execute(
                select(delegations)
                .where(delegations.c.aide == aide, _active(now))
                .order_by(delegations.c.grant_id)
            )
            return [_grant(r) for r in rows]

    async def block_device(self: _HasTx, handle: str, device_id: str, now: float) -> bool:
        async with self._tx() as conn:
            owner = await conn.scalar(
                select(device_table.c.handle).where(device_table.c.device_id == device_id)
            )
            if owner != handle:
                return False
            await q.remove_devices(conn, {device_id})
            await q.upsert(
                conn,
                blocked_devices,
                {"device_id": device_id, "handle": handle, "blocked_at": now},
                key="device_id",
            )
            return True

    async def blocked_devices(self: _HasTx, handle: str) -> list[str]:
        async with self._tx(read_only=True) as conn:
            rows = await conn.execute(
                select(blocked_devices.c.device_id)
                .where(blocked_devices.c.handle == handle)
                .order_by(blocked_devices.c.device_id)
            )
            return list(rows.scalars())

    async def is_blocked(self: _HasTx, device_id: str) -> bool:
        async with self._tx(read_only=True) as conn:
            found = await conn.scalar(
                select(blocked_devices.c.device_id).where(blocked_devices.c.device_id == device_id)
            )
        return found is not None


__all__ = ["SqlDelegationMixin"]
