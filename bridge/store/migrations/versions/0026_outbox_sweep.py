"""outbox sweep: an outgoing message still queued is published again when its first publishing
was lost (the bus down as it was written), and a sender holds it under a lease while sending it,
so that no copy of it is sent twice

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("messages", sa.Column("requeued_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("messages", sa.Column("claimed_by", sa.String(length=64), nullable=True))
    op.add_column("messages", sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True))
    # the queued messages only: a few at any time among all the stored ones, which the sweep
    # of each network reads every few seconds
    op.execute(
        "CREATE INDEX ix_messages_queued ON messages (network, id) WHERE delivery_status = 'queued'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_messages_queued")
    # plain DROP COLUMN (SQLite has it since 3.35): a batch copy of the table would lose the
    # search triggers and the partial indexes on it; none of these is indexed any more
    op.execute("ALTER TABLE messages DROP COLUMN claimed_until")
    op.execute("ALTER TABLE messages DROP COLUMN claimed_by")
    op.execute("ALTER TABLE messages DROP COLUMN requeued_at")
