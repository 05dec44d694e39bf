"""The relational schema of the home server's store (SQLAlchemy Core).

This metadata is the single source of truth that the Alembic migrations under
``hotline/store/migrations`` must reproduce exactly; ``tests/store`` checks that the migrated
database compares equal to it. Types are portable between SQLite and PostgreSQL: bytes are
``LargeBinary`` (BLOB / BYTEA), times are ``Double`` POSIX seconds supplied by the caller.

Why some choices:

* ``deliveries.seq`` is the global delivery order clients page through with ``after_seq``. On
  SQLite the table is ``AUTOINCREMENT`` so a sequence number is never reused after the newest
  rows are acknowledged and deleted (plain ``INTEGER PRIMARY KEY`` would reuse ``max + 1``).
* ``one_time_keys`` rows stay after they are claimed (``claimed`` is set) so that a key id can
  never be published twice (Olm one-time keys are single use).
* ``messages`` rows outlive their deliveries: they make ``enqueue`` idempotent per
  ``(sender_device, message_id)``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
)

#: Integer that autoincrements on both backends (SQLite only does so for ``INTEGER``).
AUTO_ID = BigInteger().with_variant(Integer(), "sqlite")

#: Stable constraint names so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

_DEVICE_FK = "devices.device_id"

enrolments = Table(
    "enrolments",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("name", String, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("used_at", Double, nullable=True),
)

principals = Table(
    "principals",
    metadata,
    Column("handle", String, primary_key=True),
    Column("display_name", String, nullable=False),
    Column("identity_key", LargeBinary, nullable=False, unique=True),
    Column("created_at", Double, nullable=False),
    Column("device_list_version", BigInteger, nullable=False),
    Column("device_list_payload", LargeBinary, nullable=False),
    Column("device_list_signature", LargeBinary, nullable=False),
    Column("allowlist_version", BigInteger, nullable=True),
    Column("allowlist_payload", LargeBinary, nullable=True),
    Column("allowlist_signature", LargeBinary, nullable=True),
)

devices = Table(
    "devices",
    metadata,
    Column("device_id", String, primary_key=True),
    Column("handle", String, ForeignKey("principals.handle"), nullable=False, index=True),
    Column("curve25519", LargeBinary, nullable=False),
    Column("ed25519", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
)

one_time_keys = Table(
    "one_time_keys",
    metadata,
    Column("device_id", String, ForeignKey(_DEVICE_FK), primary_key=True),
    Column("key_id", String, primary_key=True),
    Column("key", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    # Per-device publication order; claims take the lowest unclaimed one first.
    Column("published_seq", BigInteger, nullable=False),
    Column("claimed", Boolean, nullable=False),
    Index("ix_one_time_keys_claim_order", "device_id", "claimed", "published_seq"),
)

fallback_keys = Table(
    "fallback_keys",
    metadata,
    Column("device_id", String, ForeignKey(_DEVICE_FK), primary_key=True),
    Column("key_id", String, nullable=False),
    Column("key", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
)

challenges = Table(
    "challenges",
    metadata,
    Column("challenge", LargeBinary, primary_key=True),
    Column("device_id", String, ForeignKey(_DEVICE_FK), nullable=False, index=True),
    Column("expires_at", Double, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", LargeBinary, primary_key=True),
    Column("device_id", String, ForeignKey(_DEVICE_FK), nullable=False, index=True),
    Column("expires_at", Double, nullable=False),
)

allow_entries = Table(
    "allow_entries",
    metadata,
    Column("owner", String, ForeignKey("principals.handle"), primary_key=True),
    # No foreign key: members may be principals of a federated peer server.
    Column("member", String, primary_key=True),
)

invites = Table(
    "invites",
    metadata,
    Column("invite_id", String, primary_key=True),
    Column("handle", String, ForeignKey("principals.handle"), nullable=False, index=True),
    Column("verifier", LargeBinary, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("revoked", Boolean, nullable=False),
)

messages = Table(
    "messages",
    metadata,
    # No foreign key: the sender may be a remote device or one removed since.
    Column("sender_device", String, primary_key=True),
    Column("message_id", String, primary_key=True),
    Column("created_at", Double, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("seq", AUTO_ID, primary_key=True, autoincrement=True),
    Column("message_id", String, nullable=False),
    Column("device_id", String, ForeignKey(_DEVICE_FK), nullable=False),
    Column("kind", String, nullable=False),
    Column("sender_handle", String, nullable=False),
    Column("sender_device", String, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
    Index("ix_deliveries_device_seq", "device_id", "seq"),
    # every send counts its sender's undelivered items (the backlog limit)
    Index("ix_deliveries_sender_device", "sender_device"),
    sqlite_autoincrement=True,
)

# -- the records log (RFC 9162 leaves; see hotline.records) ----------------------------------
log_entries = Table(
    "log_entries",
    metadata,
    # 0-based leaf index, assigned by the sequencer row below in the appending transaction.
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("record_id", String, nullable=False, unique=True),
    Column("leaf", LargeBinary, nullable=False),
    Column("leaf_hash", LargeBinary, nullable=False),
    Column("device_id", String, nullable=False),
    Column("created_at", Double, nullable=False),
)

#: One row (id = 1): the log size. ``UPDATE ... SET size = size + n RETURNING size`` is the
#: sequencer: it serialises appenders on both backends and hands out gap-free indices.
log_state = Table(
    "log_state",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("size", BigInteger, nullable=False),
)

tree_heads = Table(
    "tree_heads",
    metadata,
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("head", LargeBinary, nullable=False),
    Column("signature", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
)

# -- federation -------------------------------------------------------------------------------
#: Operator-pinned peer servers. ``previous_key`` stays valid until ``previous_until`` so a peer
#: can rotate its key without an outage.
peers = Table(
    "peers",
    metadata,
    Column("domain", String, primary_key=True),
    Column("url", String, nullable=False),
    Column("key", LargeBinary, nullable=False),
    Column("previous_key", LargeBinary, nullable=True),
    Column("previous_until", Double, nullable=True),
    Column("added_at", Double, nullable=False),
)

#: Nonces of signed server-to-server requests seen inside the timestamp window (replay guard).
federation_nonces = Table(
    "federation_nonces",
    metadata,
    Column("origin", String, primary_key=True),
    Column("nonce", String, primary_key=True),
    Column("expires_at", Double, nullable=False, index=True),
)

#: Durable queue of messages for peer servers, filled in the transaction that accepted them.
outbound = Table(
    "outbound",
    metadata,
    Column("id", AUTO_ID, primary_key=True, autoincrement=True),
    Column("destination", String, nullable=False),
    Column("message_id", String, nullable=False),
    Column("sender_device", String, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Double, nullable=False),
    Column("created_at", Double, nullable=False),
    Index("ix_outbound_destination_id", "destination", "id"),
    Index("ix_outbound_sender_device", "sender_device"),
    sqlite_autoincrement=True,
)

#: Which worker drains which peer (one at a time, so a peer gets its messages in order), and
#: until when: a lease that is not renewed expires, so a dead worker leaves nothing stuck. A
#: peer that is down is backed off by leasing it to nobody (``owner`` empty) until the retry.
outbound_leases = Table(
    "outbound_leases",
    metadata,
    Column("destination", String, primary_key=True),
    Column("owner", String, nullable=False),
    Column("until", Double, nullable=False),
)

# -- device links (hotline.client.enrolment) -------------------------------------------------
#: A new device waiting for an existing one to approve it. Only public keys, the SHA-256 of the
#: link's auth value and (after approval, until collected) the sealed bundle are stored.
device_links = Table(
    "device_links",
    metadata,
    Column("link_id", String, primary_key=True),
    Column("verifier", LargeBinary, nullable=False),
    Column("device_id", String, nullable=False),
    Column("curve25519", LargeBinary, nullable=False),
    Column("ed25519", LargeBinary, nullable=False),
    Column("link_key", LargeBinary, nullable=False),
    Column("binding", LargeBinary, nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False, index=True),
    Column("state", String, nullable=False),
    Column("handle", String, nullable=True),
    Column("bundle", LargeBinary, nullable=True),
)

# -- small groups (hotline.server.routes_groups) ---------------------------------------------
#: The roster of each group a local principal is in, as that principal last uploaded it (its
#: own declaration, like the allowlist): the server relays group traffic to ``owner`` only from
#: the members listed here. ``version`` only goes up.
group_memberships = Table(
    "group_memberships",
    metadata,
    Column("owner", String, ForeignKey("principals.handle"), primary_key=True),
    Column("group_id", String, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("roster_payload", LargeBinary, nullable=False),
    Column("roster_signature", LargeBinary, nullable=False),
)

group_members = Table(
    "group_members",
    metadata,
    Column("owner", String, ForeignKey("principals.handle"), primary_key=True),
    Column("group_id", String, primary_key=True),
    # No foreign key: members may be principals of a federated peer server.
    Column("member", String, primary_key=True),
    Index("ix_group_members_owner_member", "owner", "member"),
)
