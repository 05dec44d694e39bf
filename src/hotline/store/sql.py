"""The SQL implementation of :class:`hotline.store.base.Store` (SQLite and PostgreSQL).

One class, :class:`SqlStore`, over SQLAlchemy Core 2 async: ``sqlite+aiosqlite`` by default,
``postgresql+asyncpg`` for stateless workers sharing one database (open it with
:func:`hotline.store.engine.open_store`). Every public method runs in exactly one transaction
(``engine.begin()``); any database or driver exception is translated at this boundary into a
typed :mod:`hotline.wire.errors` error with ``raise ... from exc`` (STYLE.md §8), unexpected
ones into :class:`~hotline.wire.errors.StorageError`.

Concurrency:

* SQLite has a single writer. Write transactions start with ``BEGIN IMMEDIATE`` so they take
  the write lock up front (a deferred transaction that reads, then writes, can fail with
  ``SQLITE_BUSY`` instead of waiting); ``busy_timeout`` makes contenders wait. The writers
  of one process first queue on an ``asyncio.Lock`` (FIFO), so only other processes ever
  wait in SQLite's busy handler, which is not fair. Read-only methods use a deferred
  ``BEGIN`` and, thanks to WAL, never block writers.
* PostgreSQL runs at READ COMMITTED. Versioned updates lock the principal row
  (``FOR UPDATE``); rows that reference a device lock it with ``FOR KEY SHARE`` so a
  concurrent removal cannot orphan them; one-time key claims use ``FOR UPDATE SKIP LOCKED``
  so concurrent claimers never get the same key and never wait on each other.

Nothing secret is logged: engines hide SQL parameters and failures log only exception types.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

from sqlalchemy import delete, false, func, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hotline.store import prepared
from hotline.store import queries as q
from hotline.store.base import (
    ClaimedKey,
    DeliveryItem,
    DeliveryRow,
    DeviceRow,
    Enqueued,
    HeadSigner,
    InviteRow,
    LogLeaf,
    OutboundItem,
    PrincipalRow,
    SendContext,
    SignedBlob,
)
from hotline.store.schema import (
    allow_entries,
    challenges,
    enrolments,
    fallback_keys,
    invites,
    messages,
    one_time_keys,
    principals,
    sessions,
)
from hotline.store.schema import devices as device_table
from hotline.store.sql_delegation import SqlDelegationMixin
from hotline.store.sql_device_links import SqlDeviceLinkMixin
from hotline.store.sql_federation import SqlFederationMixin, queue_in
from hotline.store.sql_groups import SqlGroupMixin
from hotline.store.sql_log import SqlLogMixin, append_in, sign_head_in, tail_in
from hotline.wire.errors import (
    AlreadyExists,
    ChallengeInvalid,
    EnrolmentInvalid,
    HotlineError,
    InviteInvalid,
    NoKeysAvailable,
    OneTimeKeyReused,
    StorageError,
    UnknownDevice,
)

if TYPE_CHECKING:
    from hotline.store.base import Store

__all__ = ["READ_ONLY_OPTION", "SqlStore"]

_log = logging.getLogger(__name__)

#: Execution option marking an engine whose transactions only read (SQLite: deferred BEGIN).
READ_ONLY_OPTION: Final = "hotline_read_only"


# -- the store ---------------------------------------------------------------------------
class SqlStore(
    SqlLogMixin, SqlFederationMixin, SqlDeviceLinkMixin, SqlGroupMixin, SqlDelegationMixin
):
    """:class:`~hotline.store.base.Store` over an SQLAlchemy async engine.

    Build it with :func:`hotline.store.open_store` (which migrates); call :meth:`close` when
    done.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        """Wrap an engine whose database is already migrated to head."""
        self._engine = engine
        self._reader = engine.execution_options(**{READ_ONLY_OPTION: True})
        # SQLite has one writer, and its busy handler is not fair: under many concurrent
        # writers (a loaded server) one can sleep-poll past busy_timeout and fail with
        # "database is locked" while others keep taking the lock. Writers of this process
        # queue here first (FIFO), so BEGIN IMMEDIATE waits only for other processes.
        self._sqlite_writers = asyncio.Lock() if engine.dialect.name == "sqlite" else None

    @property
    def engine(self) -> AsyncEngine:
        """The underlying engine (for operational tooling and tests)."""
        return self._engine

    async def close(self) -> None:
        """Close every pooled connection."""
        await self._engine.dispose()

    @asynccontextmanager
    async def _tx(
        self, *, read_only: bool = False, conflict: HotlineError | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """One transaction; translate database exceptions into typed errors.

        Args:
            read_only: the block only reads (SQLite then uses a deferred ``BEGIN``).
            conflict: raised when a constraint is violated (the transaction is rolled back).
        """
        engine = self._reader if read_only else self._engine
        queue = None if read_only else self._sqlite_writers
        try:
            async with queue or contextlib.nullcontext(), engine.begin() as conn:
                yield conn
        except IntegrityError as exc:
            if conflict is None:
                _log.warning("unexpected constraint violation: %s", q.cause_name(exc))
                raise StorageError("the database refused a write") from exc
            raise conflict from exc
        except (SQLAlchemyError, OSError) as exc:
            _log.warning("storage failure: %s", q.cause_name(exc))
            raise StorageError() from exc

    # -- enrolment and principals --------------------------------------------------------
    async def create_enrolment(self, token_hash: bytes, name: str, expires_at: float) -> None:
        """Record an admin-issued enrolment token (only its SHA-256 is stored).

        ``name`` is the handle the token may enrol (see :meth:`create_principal`).

        Raises:
            AlreadyExists: the same token hash is already recorded.
        """
        async with self._tx(conflict=AlreadyExists("enrolment token already recorded")) as conn:
            await conn.execute(
                enrolments.insert().values(
                    token_hash=token_hash, name=name, expires_at=expires_at, used_at=None
                )
            )

    async def create_principal(
        self,
        *,
        token_hash: bytes,
        handle: str,
        display_name: str,
        identity_key: bytes,
        device: DeviceRow,
        device_list: SignedBlob,
        now: float,
    ) -> None:
        """Consume the enrolment token and create principal + first device atomically.

        Raises:
            EnrolmentInvalid: token unknown, used, expired at ``now``, or issued for another
                handle (a token only enrols the handle it was created for).
            AlreadyExists: handle, identity key or device id already registered (the token
                is then not consumed).
            MalformedInput: ``device.handle`` is not ``handle``.
        """
        q.require_owner([device], handle)
        conflict = AlreadyExists("handle, identity key or device id already registered")
        async with self._tx(conflict=conflict) as conn:
            consumed = await conn.execute(
                update(enrolments)
                .where(
                    enrolments.c.token_hash == token_hash,
                    enrolments.c.name == handle,
                    enrolments.c.used_at.is_(None),
                    enrolments.c.expires_at > now,
                )
                .values(used_at=now)
            )
            if consumed.rowcount != 1:
                raise EnrolmentInvalid()
            await conn.execute(
                principals.insert().values(
                    handle=handle,
                    display_name=display_name,
                    identity_key=identity_key,
                    created_at=now,
                    device_list_version=device_list.version,
                    device_list_payload=device_list.payload,
                    device_list_signature=device_list.signature,
                )
            )
            await conn.execute(device_table.insert().values(q.device_values(device)))

    async def get_principal(self, handle: str) -> PrincipalRow | None:
        """The principal registered as ``handle``, else None."""
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(select(principals).where(principals.c.handle == handle))
            ).first()
        return None if row is None else q.principal_row(row)

    async def get_device(self, device_id: str) -> DeviceRow | None:
        """The device registered as ``device_id``, else None."""
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(
                    select(device_table).where(device_table.c.device_id == device_id)
                )
            ).first()
        return None if row is None else q.device_row(row)

    async def list_devices(self, handle: str) -> list[DeviceRow]:
        """Current devices of ``handle`` ordered by device_id (empty if unknown)."""
        async with self._tx(read_only=True) as conn:
            rows = await conn.execute(
                select(device_table)
                .where(device_table.c.handle == handle)
                .order_by(device_table.c.device_id)
            )
            return [q.device_row(row) for row in rows]

    async def set_device_list(
        self, handle: str, device_list: SignedBlob, devices: list[DeviceRow]
    ) -> None:
        """Replace the device set with ``devices`` and store the signed list.

        Devices no longer listed are removed with their keys, challenges, sessions and
        mailbox. Devices already present keep their stored row.

        Raises:
            UnknownPrincipal: no such handle.
            StaleVersion: ``device_list.version`` not greater than the stored one.
            AlreadyExists: a listed device id belongs to another principal, or is already
                registered with other keys.
            MalformedInput: a row's ``handle`` is not ``handle``, or a device id is repeated.
        """
        conflict = AlreadyExists("device id already registered")
        async with self._tx(conflict=conflict) as conn:
            await q.replace_device_list_in(conn, handle, device_list, devices)

    # -- keys ----------------------------------------------------------------------------
    async def put_one_time_keys(self, device_id: str, keys: list[tuple[str, bytes, bytes]]) -> int:
        """Publish ``(key_id, key, signature)`` triples; returns unclaimed count after.

        Keys are claimed in the order published (list order within one call).

        Raises:
            OneTimeKeyReused: a key id was published before (claimed or not), or appears twice
                in ``keys``. Nothing stored.
            UnknownDevice: no such device.
        """
        key_ids = [key_id for key_id, _, _ in keys]
        if len(set(key_ids)) != len(key_ids):
            raise OneTimeKeyReused("key id repeated in one upload")
        async with self._tx(conflict=OneTimeKeyReused()) as conn:
            await q.lock_device(conn, device_id)
            if key_ids:
                seen = await conn.execute(
                    select(one_time_keys.c.key_id).where(
                        one_time_keys.c.device_id == device_id,
                        one_time_keys.c.key_id.in_(key_ids),
                    )
                )
                reused = sorted(seen.scalars())
                if reused:
                    raise OneTimeKeyReused(key_ids=reused)
                last = await conn.scalar(
                    select(func.coalesce(func.max(one_time_keys.c.published_seq), 0)).where(
                        one_time_keys.c.device_id == device_id
                    )
                )
                first = int(last or 0) + 1
                await conn.execute(
                    one_time_keys.insert(),
                    [
                        {
                            "device_id": device_id,
                            "key_id": key_id,
                            "key": key,
                            "signature": signature,
                            "published_seq": first + offset,
                            "claimed": False,
                        }
                        for offset, (key_id, key, signature) in enumerate(keys)
                    ],
                )
            return await q.count_unclaimed(conn, device_id)

    async def set_fallback_key(
        self, device_id: str, key_id: str, key: bytes, signature: bytes
    ) -> None:
        """Store (or replace) the device's fallback key.

        Raises:
            UnknownDevice: no such device.
        """
        async with self._tx() as conn:
            await q.lock_device(conn, device_id)
            row = {"device_id": device_id, "key_id": key_id, "key": key, "signature": signature}
            await q.upsert(conn, fallback_keys, row, key="device_id")

    async def claim_key(self, device_id: str) -> ClaimedKey:
        """Atomically claim the oldest unclaimed one-time key, else return the fallback key.

        The fallback key is not consumed: it is returned until replaced.

        Raises:
            NoKeysAvailable: neither exists (also for an unknown device).
        """
        otk = one_time_keys.c
        oldest = (
            select(otk.key_id)
            .where(otk.device_id == device_id, otk.claimed == false())
            .order_by(otk.published_seq, otk.key_id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        claim = (
            update(one_time_keys)
            .where(otk.device_id == device_id, otk.key_id == oldest, otk.claimed == false())
            .values(claimed=True)
            .returning(otk.key_id, otk.key, otk.signature)
        )
        async with self._tx() as conn:
            row = (await conn.execute(claim)).first()
            fallback = False
            if row is None:
                fallback = True
                row = (
                    await conn.execute(
                        select(
                            fallback_keys.c.key_id, fallback_keys.c.key, fallback_keys.c.signature
                        ).where(fallback_keys.c.device_id == device_id)
                    )
                ).first()
        if row is None:
            raise NoKeysAvailable(device_id=device_id)
        return ClaimedKey(
            device_id=device_id,
            key_id=row.key_id,
            key=bytes(row.key),
            signature=bytes(row.signature),
            fallback=fallback,
        )

    async def count_one_time_keys(self, device_id: str) -> int:
        """Unclaimed one-time keys of ``device_id`` (0 if unknown)."""
        async with self._tx(read_only=True) as conn:
            return await q.count_unclaimed(conn, device_id)

    # -- authentication ------------------------------------------------------------------
    async def create_challenge(self, challenge: bytes, device_id: str, expires_at: float) -> None:
        """Record a one-time auth challenge for ``device_id``.

        Raises:
            UnknownDevice: no such device.
            AlreadyExists: the same challenge bytes are already outstanding.
        """
        async with self._tx(conflict=AlreadyExists("challenge already issued")) as conn:
            await q.lock_device(conn, device_id)
            await conn.execute(
                challenges.insert().values(
                    challenge=challenge, device_id=device_id, expires_at=expires_at
                )
            )

    async def consume_challenge(self, challenge: bytes, device_id: str, now: float) -> None:
        """Delete the challenge; it can be used once.

        An expired challenge is deleted too. A challenge presented for another device is left
        alone (the rightful device can still use it).

        Raises:
            ChallengeInvalid: unknown, for another device, expired or already used.
        """
        async with self._tx() as conn:
            expires_at = await conn.scalar(
                delete(challenges)
                .where(challenges.c.challenge == challenge, challenges.c.device_id == device_id)
                .returning(challenges.c.expires_at)
            )
        # Raised after the commit so an expired challenge stays deleted.
        if expires_at is None or expires_at <= now:
            raise ChallengeInvalid()

    async def create_session(self, token_hash: bytes, device_id: str, expires_at: float) -> None:
        """Record a session token (by SHA-256) bound to ``device_id``.

        Raises:
            UnknownDevice: no such device.
            AlreadyExists: the token hash is already recorded.
        """
        async with self._tx(conflict=AlreadyExists("session token already recorded")) as conn:
            await q.lock_device(conn, device_id)
            await conn.execute(
                sessions.insert().values(
                    token_hash=token_hash, device_id=device_id, expires_at=expires_at
                )
            )

    async def session_device(self, token_hash: bytes, now: float) -> str | None:
        """Device id of a live session token (by SHA-256), else None."""
        async with self._tx(read_only=True) as conn:
            device_id = await conn.scalar(
                select(sessions.c.device_id).where(
                    sessions.c.token_hash == token_hash, sessions.c.expires_at > now
                )
            )
        return None if device_id is None else str(device_id)

    async def session_caller(self, token_hash: bytes, now: float) -> DeviceRow | None:
        """The device of a live session token, in one query (the hot path of every request)."""
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(prepared.SESSION_DEVICE, {"token_hash": token_hash, "now": now})
            ).first()
        return None if row is None else q.device_row(row)

    # -- allowlist and invites -----------------------------------------------------------
    async def set_allowlist(self, handle: str, allowlist: SignedBlob, members: list[str]) -> None:
        """Store the signed allowlist and its member handles (replacing the previous ones).

        Raises:
            UnknownPrincipal: no such handle.
            StaleVersion: version not greater than the stored one.
        """
        async with self._tx() as conn:
            stored = await q.lock_principal(conn, handle)
            if stored.allowlist_version is not None:
                q.require_newer(allowlist.version, stored.allowlist_version)
            await conn.execute(delete(allow_entries).where(allow_entries.c.owner == handle))
            unique = sorted(set(members))
            if unique:
                await conn.execute(
                    allow_entries.insert(), [{"owner": handle, "member": m} for m in unique]
                )
            await conn.execute(
                update(principals)
                .where(principals.c.handle == handle)
                .values(
                    allowlist_version=allowlist.version,
                    allowlist_payload=allowlist.payload,
                    allowlist_signature=allowlist.signature,
                )
            )

    async def is_allowed(self, owner: str, member: str) -> bool:
        """Whether ``member`` is on ``owner``'s stored allowlist."""
        async with self._tx(read_only=True) as conn:
            found = await conn.scalar(
                select(allow_entries.c.member).where(
                    allow_entries.c.owner == owner, allow_entries.c.member == member
                )
            )
        return found is not None

    async def put_invite(self, invite: InviteRow) -> None:
        """Store a new invite of ``invite.handle``.

        Raises:
            AlreadyExists: invite id taken.
            UnknownPrincipal: no such handle.
        """
        async with self._tx(conflict=AlreadyExists("invite id taken")) as conn:
            await q.lock_principal(conn, invite.handle, key_share=True)
            await conn.execute(
                invites.insert().values(
                    invite_id=invite.invite_id,
                    handle=invite.handle,
                    verifier=invite.verifier,
                    expires_at=invite.expires_at,
                    revoked=invite.revoked,
                )
            )

    async def revoke_invite(self, handle: str, invite_id: str) -> None:
        """Mark the invite revoked (idempotent).

        Raises:
            InviteInvalid: no such invite of ``handle``.
        """
        async with self._tx() as conn:
            result = await conn.execute(
                update(invites)
                .where(invites.c.invite_id == invite_id, invites.c.handle == handle)
                .values(revoked=True)
            )
            if result.rowcount != 1:
                raise InviteInvalid()

    async def get_invite(self, invite_id: str) -> InviteRow | None:
        """The invite ``invite_id`` (revoked or expired ones included), else None."""
        async with self._tx(read_only=True) as conn:
            row = (
                await conn.execute(select(invites).where(invites.c.invite_id == invite_id))
            ).first()
        if row is None:
            return None
        return InviteRow(
            invite_id=row.invite_id,
            handle=row.handle,
            verifier=bytes(row.verifier),
            expires_at=float(row.expires_at),
            revoked=bool(row.revoked),
        )

    # -- mailbox -------------------------------------------------------------------------
    async def enqueue(
        self,
        *,
        message_id: str,
        sender_handle: str,
        sender_device: str,
        items: list[DeliveryItem],
        now: float,
        record: LogLeaf | None = None,
        outbound: list[OutboundItem] | None = None,
    ) -> bool:
        """Put ``items`` in their devices' mailboxes; False if ``message_id`` was seen before.

        Idempotent by ``(sender_device, message_id)``: a retried send stores nothing new.
        Items get increasing ``seq`` in list order.

        Raises:
            UnknownDevice: an item names a device that is not registered (nothing stored,
                the message id is not remembered).
        """
        message = (message_id, sender_handle, sender_device)
        async with self._tx(conflict=UnknownDevice()) as conn:
            stored, _ = await self._enqueue_in(conn, message, items, now, record, outbound)
        return stored

    async def enqueue_message(
        self,
        *,
        message_id: str,
        sender_handle: str,
        sender_device: str,
        items: list[DeliveryItem],
        now: float,
        record: LogLeaf | None = None,
        outbound: list[OutboundItem] | None = None,
        tail_from: int = 0,
        sign_head: HeadSigner | None = None,
    ) -> Enqueued:
        """:meth:`enqueue` answering with the record's index and the log tail (one transaction).

        Raises:
            UnknownDevice: an item names an unregistered device (nothing stored).
            AlreadyExists: the record id is in the log with different bytes (nothing stored).
        """
        message = (message_id, sender_handle, sender_device)
        async with self._tx(conflict=UnknownDevice()) as conn:
            stored, index = await self._enqueue_in(conn, message, items, now, record, outbound)
            if record is None:
                return Enqueued(stored, None, None)
            if not stored:
                found = await conn.scalar(prepared.LOG_INDEX_OF, {"record_id": record.record_id})
                return Enqueued(False, None if found is None else int(found), None)
            assert index is not None
            tail = await tail_in(conn, tail_from, index + 1, ([index], [record]))
            return Enqueued(True, index, tail, await sign_head_in(conn, tail, sign_head))

    async def _enqueue_in(
        self,
        conn: AsyncConnection,
        message: tuple[str, str, str],
        items: list[DeliveryItem],
        now: float,
        record: LogLeaf | None,
        outbound: list[OutboundItem] | None,
    ) -> tuple[bool, int | None]:
        """The body of both enqueues: ``(stored, index of the record)``."""
        message_id, sender_handle, sender_device = message
        first_time = await q.insert_if_new(
            conn,
            messages,
            {"sender_device": sender_device, "message_id": message_id, "created_at": now},
        )
        if not first_time:
            return False, None
        # Lock the recipients' mailboxes first (always in the same order: no deadlock between
        # two sends): the websocket push reads a mailbox past the last seq it pushed, so a
        # lower seq must never commit after a higher one for the same device.
        targets = {item.device_id for item in items}
        if targets:
            found = await conn.scalars(prepared.LOCK_MAILBOXES, {"ids": sorted(targets)})
            missing = targets - set(found)
            if missing:
                raise UnknownDevice(device_ids=sorted(missing))
        index = (await append_in(conn, [record], now))[0] if record is not None else None
        await queue_in(conn, outbound or [], now)
        if items:
            await conn.execute(
                prepared.INSERT_DELIVERIES,
                [
                    {
                        "message_id": message_id,
                        "device_id": item.device_id,
                        "kind": item.kind,
                        "sender_handle": sender_handle,
                        "sender_device": sender_device,
                        "body": item.body,
                        "created_at": now,
                    }
                    for item in items
                ],
            )
        return True, index

    async def send_context(
        self,
        sender_device: str,
        sender_handle: str,
        to: str,
        now: float,
        on_behalf_of: str | None = None,
    ) -> SendContext:
        """Undelivered count, allowlist check, the device sets and the active grants (with
        their aides' devices) of every principal concerned, in one read transaction."""
        writer = on_behalf_of or sender_handle
        handles = {to, sender_handle, writer}
        async with self._tx(read_only=True) as conn:
            undelivered = await q.count_undelivered(conn, sender_device)
            allowed = to == writer or (
                await conn.scalar(prepared.ALLOWED, {"owner": to, "member": writer}) is not None
            )
            rows = await conn.execute(prepared.DEVICES_OF, {"handles": sorted(handles)})
            owners = [(row.device_id, row.handle) for row in rows]
            grants = await q.active_grants_with_devices(conn, handles, now)
        return SendContext(
            undelivered=undelivered,
            allowed=allowed,
            recipient_devices=[d for d, h in owners if h == to],
            sender_devices=[d for d, h in owners if h == sender_handle],
            grants=grants,
            principal_devices=[d for d, h in owners if on_behalf_of and h == on_behalf_of],
        )

    async def pending(
        self, device_id: str, after_seq: int = 0, limit: int = 100
    ) -> list[DeliveryRow]:
        """Mailbox rows of ``device_id`` with ``seq > after_seq``, oldest first.

        At most ``limit`` rows; ``limit < 1`` returns none.
        """
        if limit < 1:
            return []
        async with self._tx(read_only=True) as conn:
            rows = await conn.execute(
                prepared.PENDING, {"device_id": device_id, "after_seq": after_seq, "limit": limit}
            )
            return [
                DeliveryRow(
                    seq=int(row.seq),
                    message_id=row.message_id,
                    device_id=row.device_id,
                    kind=row.kind,
                    sender_handle=row.sender_handle,
                    sender_device=row.sender_device,
                    body=bytes(row.body),
                    created_at=float(row.created_at),
                )
                for row in rows
            ]

    async def count_undelivered(self, sender_device: str) -> int:
        async with self._tx(read_only=True) as conn:
            return await q.count_undelivered(conn, sender_device)

    async def ack_many(self, acks: list[tuple[str, list[int]]]) -> int:
        """:meth:`ack` for several devices in one transaction; returns the count deleted."""
        deleted = 0
        async with self._tx() as conn:
            for device_id, seqs in acks:
                if seqs:
                    result = await conn.execute(
                        prepared.ACK, {"device_id": device_id, "seqs": sorted(set(seqs))}
                    )
                    deleted += int(result.rowcount)
        return deleted

    async def ack(self, device_id: str, seqs: list[int]) -> int:
        """Delete those rows of ``device_id``'s mailbox (ciphertext gone); returns count deleted.

        Sequence numbers of other devices or already deleted are ignored.
        """
        if not seqs:
            return 0
        async with self._tx() as conn:
            result = await conn.execute(
                prepared.ACK, {"device_id": device_id, "seqs": sorted(set(seqs))}
            )
            return int(result.rowcount)


if TYPE_CHECKING:

    def _conforms(store: SqlStore) -> Store:
        """Let mypy prove that :class:`SqlStore` implements the protocol."""
        return store
