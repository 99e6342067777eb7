"""agent answers: an index from a message to the agents' replies that answer it, so that "was this
comment answered privately?" is a lookup, not a scan of every message

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # agents' replies only: the bot's, one for most inbound messages, would pay for it on every
    # write of the pipeline, and nothing asks for them by the message they answer
    op.execute(
        "CREATE INDEX ix_messages_agent_answers ON messages (in_reply_to_id) "
        "WHERE author_kind = 'agent' AND in_reply_to_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_messages_agent_answers")
