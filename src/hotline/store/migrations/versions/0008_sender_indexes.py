"""Indexes for the per-send backlog count (undelivered items by sender device).

Every send counts the sender device's mailbox items and peer-bound messages not yet taken;
without these indexes each count scanned the whole table, so a send cost grew with every
undelivered message on the server.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Index deliveries and outbound by sender device."""
    op.create_index("ix_deliveries_sender_device", "deliveries", ["sender_device"], unique=False)
    op.create_index("ix_outbound_sender_device", "outbound", ["sender_device"], unique=False)


def downgrade() -> None:
    """Drop the two indexes."""
    op.drop_index("ix_outbound_sender_device", table_name="outbound")
    op.drop_index("ix_deliveries_sender_device", table_name="deliveries")
