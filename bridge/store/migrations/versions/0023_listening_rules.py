"""listening rules: routing_rules.words and urgent; conversations.priority, by which the open
views list urgent threads first (their order's index leads with it)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("routing_rules", sa.Column("words", sa.Text(), nullable=True))
    op.add_column(
        "routing_rules",
        sa.Column("urgent", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column(
        "conversations",
        sa.Column("priority", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
    )
    _open_order("priority DESC, ")


def _open_order(lead: str) -> None:
    op.execute("DROP INDEX ix_conversations_open_order")
    op.execute(
        "CREATE INDEX ix_conversations_open_order ON conversations "
        f"({lead}coalesce(awaiting_since, last_message_at), id) "
        "WHERE state IN ('bot', 'waiting', 'assigned')"
    )


def downgrade() -> None:
    _open_order("")
    # plain DROP COLUMN: SQLite has it since 3.35, and none is indexed any more or constrained
    op.execute("ALTER TABLE conversations DROP COLUMN priority")
    op.execute("ALTER TABLE routing_rules DROP COLUMN urgent")
    op.execute("ALTER TABLE routing_rules DROP COLUMN words")
