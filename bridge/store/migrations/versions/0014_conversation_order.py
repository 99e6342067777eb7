"""conversation order: the inbox's views read their first page from an index in their own order
instead of sorting every conversation of the view

Open views: longest waiting first (when the customer started waiting, else their last message),
then the id. Resolved: latest resolved first. Partial, so that a desk of a million resolved
conversations and forty waiting ones walks only the open ones.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_conversations_open_order ON conversations "
        "(coalesce(awaiting_since, last_message_at), id) "
        "WHERE state IN ('bot', 'waiting', 'assigned')"
    )
    op.execute(
        "CREATE INDEX ix_conversations_resolved_order ON conversations "
        "(coalesce(resolved_at, last_message_at) DESC, id DESC) WHERE state = 'resolved'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_conversations_resolved_order")
    op.execute("DROP INDEX ix_conversations_open_order")
