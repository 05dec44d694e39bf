"""Federation: pinned peers, replay-guard nonces, the durable outbound queue.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    """Create the federation tables."""
    op.create_table(
        "peers",
        sa.Column("domain", sa.String(), nullable=False),
        sa.Column("url", sa.String(), nullable=False),
        sa.Column("key", sa.LargeBinary(), nullable=False),
        sa.Column("previous_key", sa.LargeBinary(), nullable=True),
        sa.Column("previous_until", sa.Double(), nullable=True),
        sa.Column("added_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("domain", name="pk_peers"),
    )
    op.create_table(
        "federation_nonces",
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("nonce", sa.String(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("origin", "nonce", name="pk_federation_nonces"),
    )
    op.create_index(
        "ix_federation_nonces_expires_at", "federation_nonces", ["expires_at"], unique=False
    )
    op.create_table(
        "outbound",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("message_id", sa.String(), nullable=False),
        sa.Column("sender_device", sa.String(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_outbound"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_outbound_destination_id", "outbound", ["destination", "id"], unique=False)


def downgrade() -> None:
    """Drop the federation tables."""
    op.drop_table("outbound")
    op.drop_table("federation_nonces")
    op.drop_table("peers")
