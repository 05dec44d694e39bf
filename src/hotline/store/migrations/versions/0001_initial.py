"""Initial schema: enrolment, principals, devices, keys, auth, allowlists, invites, mailbox.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Frozen copy of :mod:`hotline.store.schema` at this revision (migrations never import the live
metadata, so later schema edits need a new revision).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create every table of the first release."""
    op.create_table(
        "enrolments",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("used_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("token_hash", name="pk_enrolments"),
    )
    op.create_table(
        "principals",
        sa.Column("handle", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.Column("identity_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("device_list_version", sa.BigInteger(), nullable=False),
        sa.Column("device_list_payload", sa.LargeBinary(), nullable=False),
        sa.Column("device_list_signature", sa.LargeBinary(), nullable=False),
        sa.Column("allowlist_version", sa.BigInteger(), nullable=True),
        sa.Column("allowlist_payload", sa.LargeBinary(), nullable=True),
        sa.Column("allowlist_signature", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("handle", name="pk_principals"),
        sa.UniqueConstraint("identity_key", name="uq_principals_identity_key"),
    )
    op.create_table(
        "devices",
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("handle", sa.String(), nullable=False),
        sa.Column("curve25519", sa.LargeBinary(), nullable=False),
        sa.Column("ed25519", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["handle"], ["principals.handle"], name="fk_devices_handle_principals"
        ),
        sa.PrimaryKeyConstraint("device_id", name="pk_devices"),
    )
    op.create_index("ix_devices_handle", "devices", ["handle"])
    op.create_table(
        "one_time_keys",
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("published_seq", sa.BigInteger(), nullable=False),
        sa.Column("claimed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.device_id"], name="fk_one_time_keys_device_id_devices"
        ),
        sa.PrimaryKeyConstraint("device_id", "key_id", name="pk_one_time_keys"),
    )
    op.create_index(
        "ix_one_time_keys_claim_order",
        "one_time_keys",
        ["device_id", "claimed", "published_seq"],
    )
    op.create_table(
        "fallback_keys",
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("key_id", sa.String(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.device_id"], name="fk_fallback_keys_device_id_devices"
        ),
        sa.PrimaryKeyConstraint("device_id", name="pk_fallback_keys"),
    )
    op.create_table(
        "challenges",
        sa.Column("challenge", sa.LargeBinary(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.device_id"], name="fk_challenges_device_id_devices"
        ),
        sa.PrimaryKeyConstraint("challenge", name="pk_challenges"),
    )
    op.create_index("ix_challenges_device_id", "challenges", ["device_id"])
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.LargeBinary(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.device_id"], name="fk_sessions_device_id_devices"
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_sessions"),
    )
    op.create_index("ix_sessions_device_id", "sessions", ["device_id"])
    op.create_table(
        "allow_entries",
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("member", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner"], ["principals.handle"], name="fk_allow_entries_owner_principals"
        ),
        sa.PrimaryKeyConstraint("owner", "member", name="pk_allow_entries"),
    )
    op.create_table(
        "invites",
        sa.Column("invite_id", sa.String(), nullable=False),
        sa.Column("handle", sa.String(), nullable=False),
        sa.Column("verifier", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["handle"], ["principals.handle"], name="fk_invites_handle_principals"
        ),
        sa.PrimaryKeyConstraint("invite_id", name="pk_invites"),
    )
    op.create_index("ix_invites_handle", "invites", ["handle"])
    op.create_table(
        "messages",
        sa.Column("sender_device", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("sender_device", "message_id", name="pk_messages"),
    )
    op.create_table(
        "deliveries",
        sa.Column("seq", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("sender_handle", sa.String(), nullable=False),
        sa.Column("sender_device", sa.String(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"], ["devices.device_id"], name="fk_deliveries_device_id_devices"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_deliveries"),
        # Never reuse a seq on SQLite once the newest rows are acknowledged and deleted.
        sqlite_autoincrement=True,
    )
    op.create_index("ix_deliveries_device_seq", "deliveries", ["device_id", "seq"])


def downgrade() -> None:
    """Drop every table, dependants first."""
    for table in (
        "deliveries",
        "messages",
        "invites",
        "allow_entries",
        "sessions",
        "challenges",
        "fallback_keys",
        "one_time_keys",
        "devices",
        "principals",
        "enrolments",
    ):
        op.drop_table(table)
