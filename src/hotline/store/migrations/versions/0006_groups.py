"""Small groups: each local member's copy of a group's signed roster and its member handles.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the group membership tables."""
    op.create_table(
        "group_memberships",
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("roster_payload", sa.LargeBinary(), nullable=False),
        sa.Column("roster_signature", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner"], ["principals.handle"], name="fk_group_memberships_owner_principals"
        ),
        sa.PrimaryKeyConstraint("owner", "group_id", name="pk_group_memberships"),
    )
    op.create_table(
        "group_members",
        sa.Column("owner", sa.String(), nullable=False),
        sa.Column("group_id", sa.String(), nullable=False),
        sa.Column("member", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner"], ["principals.handle"], name="fk_group_members_owner_principals"
        ),
        sa.PrimaryKeyConstraint("owner", "group_id", "member", name="pk_group_members"),
    )
    op.create_index(
        "ix_group_members_owner_member", "group_members", ["owner", "member"], unique=False
    )


def downgrade() -> None:
    """Drop the group membership tables."""
    op.drop_index("ix_group_members_owner_member", table_name="group_members")
    op.drop_table("group_members")
    op.drop_table("group_memberships")
