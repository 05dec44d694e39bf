"""Delegation grants (aides) and devices blocked by the administrator.

Revision ID: 0007
Revises: 0005 (0006 comes from a parallel branch; on merge this revises 0006)
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the delegation and blocked-device tables."""
    op.create_table(
        "delegations",
        sa.Column("grant_id", sa.String(), nullable=False),
        sa.Column("principal", sa.String(), nullable=False),
        sa.Column("aide", sa.String(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.Column("revocation_payload", sa.LargeBinary(), nullable=True),
        sa.Column("revocation_signature", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("grant_id", name="pk_delegations"),
    )
    op.create_index("ix_delegations_principal", "delegations", ["principal"], unique=False)
    op.create_index("ix_delegations_aide", "delegations", ["aide"], unique=False)
    op.create_table(
        "blocked_devices",
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("handle", sa.String(), nullable=False),
        sa.Column("blocked_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("device_id", name="pk_blocked_devices"),
    )
    op.create_index("ix_blocked_devices_handle", "blocked_devices", ["handle"], unique=False)


def downgrade() -> None:
    """Drop the delegation and blocked-device tables."""
    op.drop_index("ix_blocked_devices_handle", table_name="blocked_devices")
    op.drop_table("blocked_devices")
    op.drop_index("ix_delegations_aide", table_name="delegations")
    op.drop_index("ix_delegations_principal", table_name="delegations")
    op.drop_table("delegations")
