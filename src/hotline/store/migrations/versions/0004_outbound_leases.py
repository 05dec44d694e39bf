"""Outbound leases: several workers drain the federation queue without sending a row twice.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the per-peer lease table."""
    op.create_table(
        "outbound_leases",
        sa.Column("destination", sa.String(), nullable=False),
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("until", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("destination", name="pk_outbound_leases"),
    )


def downgrade() -> None:
    """Drop the per-peer lease table."""
    op.drop_table("outbound_leases")
