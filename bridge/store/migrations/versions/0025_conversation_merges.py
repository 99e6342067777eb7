"""conversation_merges: a private conversation merged into the one its person already had (a
Messenger private reply names their PSID), so that its address leads there

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation_merges",
        sa.Column("conversation_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("into_id", sa.Integer(), nullable=False),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["into_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_merges_into_id_conversations"),
        ),
        sa.PrimaryKeyConstraint("conversation_id", name=op.f("pk_conversation_merges")),
    )
    op.create_index(
        op.f("ix_conversation_merges_into_id"), "conversation_merges", ["into_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_conversation_merges_into_id"), table_name="conversation_merges")
    op.drop_table("conversation_merges")
