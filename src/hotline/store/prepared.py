"""Statements of the message hot path, built once.

Building an SQLAlchemy Core statement (column comparisons, bind parameters) and computing its
cache key cost more than running it on SQLite: for a three-query read transaction, building
took half of the CPU time (``bench/``). A statement built once at import, with named
:func:`~sqlalchemy.bindparam` values, memoizes its cache key, so each execution only binds the
values and finds the compiled form in the engine's cache. Used for what every message does
(authenticate, check, enqueue, append to the records log, push, acknowledge); the rest of the
store builds its statements inline, which reads better and costs nothing that matters.
"""

from __future__ import annotations

from typing import Any, Final

from sqlalchemy import Table, bindparam, delete, func, select, update
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect

from hotline.store.schema import (
    allow_entries,
    deliveries,
    log_entries,
    log_state,
    sessions,
)
from hotline.store.schema import devices as device_table
from hotline.store.schema import outbound as outbound_table
from hotline.store.schema_delegation import delegations

#: the device of a live session token (params: token_hash, now)
SESSION_DEVICE: Final = (
    select(device_table)
    .join(sessions, sessions.c.device_id == device_table.c.device_id)
    .where(
        sessions.c.token_hash == bindparam("token_hash"), sessions.c.expires_at > bindparam("now")
    )
)

#: mailbox items sent by a device and not yet taken (params: sender_device)
UNDELIVERED_LOCAL: Final = (
    select(func.count())
    .select_from(deliveries)
    .where(deliveries.c.sender_device == bindparam("sender_device"))
)
#: peer-bound messages sent by a device and not yet taken (params: sender_device)
UNDELIVERED_REMOTE: Final = (
    select(func.count())
    .select_from(outbound_table)
    .where(outbound_table.c.sender_device == bindparam("sender_device"))
)

#: whether ``owner`` allows ``member`` (params: owner, member)
ALLOWED: Final = select(allow_entries.c.member).where(
    allow_entries.c.owner == bindparam("owner"), allow_entries.c.member == bindparam("member")
)

#: device ids and owners of some handles (params: handles, a list)
DEVICES_OF: Final = (
    select(device_table.c.device_id, device_table.c.handle)
    .where(device_table.c.handle.in_(bindparam("handles", expanding=True)))
    .order_by(device_table.c.device_id)
)

#: devices by id (params: ids, a list)
DEVICES_BY_ID: Final = select(device_table).where(
    device_table.c.device_id.in_(bindparam("ids", expanding=True))
)
#: the same, holding a key-share lock on them until commit (PostgreSQL; SQLite ignores it)
DEVICES_BY_ID_KEY_SHARE: Final = DEVICES_BY_ID.with_for_update(read=True, key_share=True)
#: the ids of devices whose mailboxes a transaction writes to, locked until commit in id order
#: (``FOR NO KEY UPDATE`` on PostgreSQL; SQLite's single writer already serialises): a
#: delivery's ``seq`` is drawn after the lock, so one device's items commit in ``seq`` order
#: (params: ids, a list)
LOCK_MAILBOXES: Final = (
    select(device_table.c.device_id)
    .where(device_table.c.device_id.in_(bindparam("ids", expanding=True)))
    .order_by(device_table.c.device_id)
    .with_for_update(key_share=True)
)

#: active grants of some principals with their aides' devices (params: principals, now)
ACTIVE_GRANTS: Final = (
    select(
        delegations.c.grant_id,
        delegations.c.principal,
        delegations.c.aide,
        delegations.c.payload,
        device_table.c.device_id,
    )
    .select_from(delegations.outerjoin(device_table, device_table.c.handle == delegations.c.aide))
    .where(
        delegations.c.principal.in_(bindparam("principals", expanding=True)),
        delegations.c.revoked_at.is_(None),
        delegations.c.expires_at > bindparam("now"),
    )
    .order_by(delegations.c.created_at, delegations.c.grant_id, device_table.c.device_id)
)

#: a device's mailbox after a sequence number (params: device_id, after_seq, limit)
PENDING: Final = (
    select(deliveries)
    .where(
        deliveries.c.device_id == bindparam("device_id"),
        deliveries.c.seq > bindparam("after_seq"),
    )
    .order_by(deliveries.c.seq)
    .limit(bindparam("limit"))
)

#: acknowledged mailbox rows of a device (params: device_id, seqs, a list)
ACK: Final = delete(deliveries).where(
    deliveries.c.device_id == bindparam("device_id"),
    deliveries.c.seq.in_(bindparam("seqs", expanding=True)),
)

#: mailbox rows (executemany)
INSERT_DELIVERIES: Final = deliveries.insert()
#: records-log entries (executemany)
INSERT_LOG_ENTRIES: Final = log_entries.insert()

#: a record's log entry (params: record_id)
LOG_ENTRY_OF: Final = select(log_entries.c.idx, log_entries.c.leaf).where(
    log_entries.c.record_id == bindparam("record_id")
)
#: the record's index (params: record_id)
LOG_INDEX_OF: Final = select(log_entries.c.idx).where(
    log_entries.c.record_id == bindparam("record_id")
)
#: take ``count`` log indices: the sequencer row, locked until commit (params: count)
ADVANCE_LOG: Final = (
    update(log_state)
    .where(log_state.c.id == 1)
    .values(size=log_state.c.size + bindparam("count"))
    .returning(log_state.c.size)
)
#: leaf hashes of ``[start, end)`` in index order (params: start, end)
LEAF_HASHES: Final = (
    select(log_entries.c.leaf_hash)
    .where(log_entries.c.idx >= bindparam("start"), log_entries.c.idx < bindparam("end"))
    .order_by(log_entries.c.idx)
)

_insert_if_new: dict[tuple[str, str], Any] = {}


def insert_if_new(table: Table, dialect: str) -> Any:
    """``INSERT … ON CONFLICT DO NOTHING RETURNING <first primary key column>`` for ``table``
    (values as execution parameters), built once per table and dialect."""
    key = (table.name, dialect)
    statement = _insert_if_new.get(key)
    if statement is None:
        first_pk = table.primary_key.columns.values()[0]
        insert = pg_dialect.insert if dialect == "postgresql" else sqlite_dialect.insert
        statement = insert(table).on_conflict_do_nothing().returning(first_pk)
        _insert_if_new[key] = statement
    return statement
