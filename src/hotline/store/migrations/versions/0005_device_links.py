"""Device links: a new device waiting to be approved by an existing one (remote enrolment).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the device-link table."""
    op.create_table(
        "device_links",
        sa.Column("link_id", sa.String(), nullable=False),
        sa.Column("verifier", sa.LargeBinary(), nullable=False),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("curve25519", sa.LargeBinary(), nullable=False),
        sa.Column("ed25519", sa.LargeBinary(), nullable=False),
        sa.Column("link_key", sa.LargeBinary(), nullable=False),
        sa.Column("binding", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("handle", sa.String(), nullable=True),
        sa.Column("bundle", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("link_id", name="pk_device_links"),
    )
    op.create_index("ix_device_links_expires_at", "device_links", ["expires_at"], unique=False)


def downgrade() -> None:
    """Drop the device-link table."""
    op.drop_index("ix_device_links_expires_at", table_name="device_links")
    op.drop_table("device_links")
