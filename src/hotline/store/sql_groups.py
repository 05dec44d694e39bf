"""The small-group half of :class:`hotline.store.sql.SqlStore` (a mixin): each local member's
copy of the rosters of the groups it is in (:mod:`hotline.server.routes_groups`).

A membership is the member's own declaration, uploaded by its device after the device verified
the roster's signature: like the allowlist, it says from whom the server may relay traffic to
that member. The version only goes up (checked with the row locked, in one transaction).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from hotline.store import queries as q
from hotline.store.base import GroupSendContext, SignedBlob
from hotline.store.schema import devices, group_members, group_memberships, peers
from hotline.wire.errors import HotlineError, StaleVersion, UnknownPrincipal


class _HasTx(Protocol):
    def _tx(
        self, *, read_only: bool = False, conflict: HotlineError | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection]: ...


class SqlGroupMixin:
    """See :class:`hotline.store.base.GroupStore`."""

    async def put_group_membership(
        self: _HasTx, owner: str, group_id: str, roster: SignedBlob, members: list[str]
    ) -> None:
        """Store ``owner``'s copy of a group roster and its members (replacing an older one).

        Raises:
            UnknownPrincipal: ``owner`` is not a local principal.
            StaleVersion: an older version than the stored one (the same version is a no-op
                replacement, so a retried upload is harmless).
        """
        async with self._tx(conflict=UnknownPrincipal()) as conn:
            await q.lock_principal(conn, owner)
            key = (group_memberships.c.owner == owner) & (group_memberships.c.group_id == group_id)
            stored = await conn.scalar(select(group_memberships.c.version).where(key))
            if stored is not None and roster.version < int(stored):
                raise StaleVersion(stored=int(stored), got=roster.version)
            await conn.execute(delete(group_memberships).where(key))
            await conn.execute(
                delete(group_members).where(
                    (group_members.c.owner == owner) & (group_members.c.group_id == group_id)
                )
            )
            await conn.execute(
                group_memberships.insert().values(
                    owner=owner,
                    group_id=group_id,
                    version=roster.version,
                    roster_payload=roster.payload,
                    roster_signature=roster.signature,
                )
            )
            await conn.execute(
                group_members.insert(),
                [{"owner": owner, "group_id": group_id, "member": m} for m in sorted(set(members))],
            )

    async def drop_group_membership(self: _HasTx, owner: str, group_id: str) -> bool:
        """Forget ``owner``'s membership of a group; False if there was none."""
        async with self._tx() as conn:
            await conn.execute(
                delete(group_members).where(
                    (group_members.c.owner == owner) & (group_members.c.group_id == group_id)
                )
            )
            result = await conn.execute(
                delete(group_memberships).where(
                    (group_memberships.c.owner == owner)
                    & (group_memberships.c.group_id == group_id)
                )
            )
            return bool(result.rowcount)

    async def group_membership(self: _HasTx, owner: str, group_id: str) -> SignedBlob | None:
        """``owner``'s stored roster of a group, or None."""
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(
                    select(group_memberships).where(
                        (group_memberships.c.owner == owner)
                        & (group_memberships.c.group_id == group_id)
                    )
                )
            ).first()
        if row is None:
            return None
        return SignedBlob(int(row.version), bytes(row.roster_payload), bytes(row.roster_signature))

    async def is_group_member(self: _HasTx, owner: str, group_id: str, member: str) -> bool:
        """Whether ``member`` is on ``owner``'s stored roster of ``group_id``."""
        async with self._tx(read_only=True) as conn:
            found = await conn.scalar(
                select(group_members.c.member).where(
                    group_members.c.owner == owner,
                    group_members.c.group_id == group_id,
                    group_members.c.member == member,
                )
            )
        return found is not None

    async def shares_group(self: _HasTx, owner: str, member: str) -> bool:
        """Whether ``member`` is on any of ``owner``'s stored group rosters."""
        async with self._tx(read_only=True) as conn:
            found = await conn.scalar(
                select(group_members.c.member)
                .where(group_members.c.owner == owner, group_members.c.member == member)
                .limit(1)
            )
        return found is not None

    async def group_send_context(
        self: _HasTx,
        sender_device: str,
        sender_handle: str,
        group_id: str,
        local_members: list[str],
        peer_domains: list[str],
    ) -> GroupSendContext:
        """See :meth:`hotline.store.base.GroupStore.group_send_context` (one read transaction)."""
        local = set(local_members)
        of_group = group_members.c.group_id == group_id
        async with self._tx(read_only=True) as conn:
            undelivered = await q.count_undelivered(conn, sender_device)
            roster = await conn.scalars(
                select(group_members.c.member).where(
                    of_group, group_members.c.owner == sender_handle
                )
            )
            listed_by = await conn.scalars(
                select(group_members.c.owner).where(
                    of_group,
                    group_members.c.owner.in_(local),
                    group_members.c.member == sender_handle,
                )
            )
            rows = await conn.execute(
                select(devices.c.device_id, devices.c.handle)
                .where(devices.c.handle.in_(local))
                .order_by(devices.c.device_id)
            )
            by_member: dict[str, list[str]] = {}
            for row in rows:
                by_member.setdefault(row.handle, []).append(row.device_id)
            pinned = await conn.scalars(
                select(peers.c.domain).where(peers.c.domain.in_(set(peer_domains)))
            )
            return GroupSendContext(
                undelivered=undelivered,
                roster=frozenset(roster),
                listed_by=frozenset(listed_by),
                devices=by_member,
                peers=frozenset(pinned),
            )
