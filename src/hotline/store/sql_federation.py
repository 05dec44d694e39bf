"""The federation half of :class:`hotline.store.sql.SqlStore` (a mixin): pinned peers, the
replay guard for signed server-to-server requests, the durable outbound queue.

Several workers drain the queue: each peer is leased to one worker at a time (a row of
``outbound_leases`` with an expiry), taken with one upsert whose ``WHERE`` lets it through only
when the lease is free, expired or already the caller's. On PostgreSQL the upsert row-locks the
lease, so two workers racing for a peer serialise and the second sees the first's lease; on
SQLite write transactions exclude each other anyway. A worker that dies stops renewing: its
lease expires and another takes the peer over.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.asyncio import AsyncConnection

from hotline.store.base import OutboundItem, OutboundRow, PeerRow
from hotline.store.queries import insert_if_new
from hotline.store.schema import federation_nonces, outbound, outbound_leases, peers
from hotline.wire.errors import HotlineError, ReplayedRequest


class _HasTx(Protocol):
    def _tx(
        self, *, read_only: bool = False, conflict: HotlineError | None = None
    ) -> AbstractAsyncContextManager[AsyncConnection]: ...


async def queue_in(conn: AsyncConnection, items: list[OutboundItem], now: float) -> None:
    """Queue inside the caller's transaction (``enqueue`` uses it: accept and queue at once)."""
    if items:
        await conn.execute(
            outbound.insert(),
            [
                {
                    "destination": i.destination,
                    "message_id": i.message_id,
                    "sender_device": i.sender_device,
                    "payload": i.payload,
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for i in items
            ],
        )


def _peer(row: Any) -> PeerRow:
    return PeerRow(
        domain=row.domain,
        url=row.url,
        key=bytes(row.key),
        previous_key=None if row.previous_key is None else bytes(row.previous_key),
        previous_until=row.previous_until,
        added_at=float(row.added_at),
    )


async def _batch(conn: AsyncConnection, destination: str, limit: int) -> list[OutboundRow]:
    rows = await conn.execute(
        select(outbound)
        .where(outbound.c.destination == destination)
        .order_by(outbound.c.id)
        .limit(limit)
    )
    return [
        OutboundRow(
            id=int(r.id),
            destination=r.destination,
            message_id=r.message_id,
            sender_device=r.sender_device,
            payload=bytes(r.payload),
            attempts=int(r.attempts),
            created_at=float(r.created_at),
        )
        for r in rows
    ]


class SqlFederationMixin:
    """See :class:`hotline.store.base.FederationStore`."""

    async def put_peer(
        self: _HasTx,
        domain: str,
        url: str,
        key: bytes,
        now: float,
        overlap_until: float | None = None,
    ) -> None:
        async with self._tx() as conn:
            old = (await conn.execute(select(peers).where(peers.c.domain == domain))).first()
            if old is None:
                await conn.execute(
                    peers.insert().values(
                        domain=domain,
                        url=url,
                        key=key,
                        previous_key=None,
                        previous_until=None,
                        added_at=now,
                    )
                )
                return
            values: dict[str, Any] = {"url": url, "key": key}
            if bytes(old.key) != key:
                values |= {"previous_key": bytes(old.key), "previous_until": overlap_until}
            await conn.execute(update(peers).where(peers.c.domain == domain).values(**values))

    async def get_peer(self: _HasTx, domain: str) -> PeerRow | None:
        async with self._tx(read_only=True) as conn:
            row = (await conn.execute(select(peers).where(peers.c.domain == domain))).first()
        return None if row is None else _peer(row)

    async def list_peers(self: _HasTx) -> list[PeerRow]:
        async with self._tx(read_only=True) as conn:
            rows = await conn.execute(select(peers).order_by(peers.c.domain))
            return [_peer(r) for r in rows]

    async def remove_peer(self: _HasTx, domain: str) -> bool:
        async with self._tx() as conn:
            result = await conn.execute(delete(peers).where(peers.c.domain == domain))
            return bool(result.rowcount)

    async def use_nonce(
        self: _HasTx, origin: str, nonce: str, expires_at: float, now: float
    ) -> None:
        async with self._tx() as conn:
            await conn.execute(
                delete(federation_nonces).where(federation_nonces.c.expires_at < now)
            )
            fresh = await insert_if_new(
                conn,
                federation_nonces,
                {"origin": origin, "nonce": nonce, "expires_at": expires_at},
            )
        if not fresh:
            raise ReplayedRequest(f"request nonce from {origin} was already used")

    async def outbound_destinations(self: _HasTx) -> list[str]:
        async with self._tx(read_only=True) as conn:
            rows = await conn.execute(select(outbound.c.destination).distinct())
            return sorted(str(r[0]) for r in rows)

    async def outbound_batch(self: _HasTx, destination: str, limit: int = 100) -> list[OutboundRow]:
        async with self._tx(read_only=True) as conn:
            return await _batch(conn, destination, limit)

    async def lease_outbound(
        self: _HasTx, destination: str, owner: str, now: float, until: float, limit: int = 100
    ) -> list[OutboundRow]:
        async with self._tx() as conn:
            values = {"destination": destination, "owner": owner, "until": until}
            lease = outbound_leases.c
            free = (lease.until <= now) | (lease.owner == owner)
            if conn.dialect.name == "postgresql":
                pg = pg_dialect.insert(outbound_leases).values(**values)
                taken = await conn.execute(
                    pg.on_conflict_do_update(
                        index_elements=[lease.destination],
                        set_={"owner": owner, "until": until},
                        where=free,
                    ).returning(lease.destination)
                )
            else:
                lite = sqlite_dialect.insert(outbound_leases).values(**values)
                taken = await conn.execute(
                    lite.on_conflict_do_update(
                        index_elements=[lease.destination],
                        set_={"owner": owner, "until": until},
                        where=free,
                    ).returning(lease.destination)
                )
            if taken.first() is None:
                return []
            return await _batch(conn, destination, limit)

    async def release_outbound(
        self: _HasTx, destination: str, owner: str, not_before: float = 0.0
    ) -> None:
        async with self._tx() as conn:
            await conn.execute(
                update(outbound_leases)
                .where(
                    outbound_leases.c.destination == destination,
                    outbound_leases.c.owner == owner,
                )
                .values(owner="", until=not_before)
            )

    async def finish_outbound(self: _HasTx, ids: list[int]) -> None:
        if ids:
            async with self._tx() as conn:
                await conn.execute(delete(outbound).where(outbound.c.id.in_(ids)))

    async def retry_outbound(self: _HasTx, ids: list[int], next_attempt_at: float) -> None:
        if ids:
            async with self._tx() as conn:
                await conn.execute(
                    update(outbound)
                    .where(outbound.c.id.in_(ids))
                    .values(attempts=outbound.c.attempts + 1, next_attempt_at=next_attempt_at)
                )
