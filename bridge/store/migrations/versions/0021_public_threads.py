"""public threads: conversations.public, post_text, post_url; messages.author_identity_id,
reply_to_network_id, deleted_at; identities.allows_private

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "conversations",
        sa.Column("public", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    op.add_column("conversations", sa.Column("post_text", sa.Text(), nullable=True))
    op.add_column("conversations", sa.Column("post_url", sa.String(length=1024), nullable=True))
    op.add_column("messages", sa.Column("author_identity_id", sa.Integer(), nullable=True))
    op.add_column(
        "messages", sa.Column("reply_to_network_id", sa.String(length=128), nullable=True)
    )
    op.add_column("messages", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("identities", sa.Column("allows_private", sa.Boolean(), nullable=True))


def downgrade() -> None:
    # plain DROP COLUMN: SQLite has it since 3.35, and none of these is indexed or constrained
    op.execute("ALTER TABLE identities DROP COLUMN allows_private")
    op.execute("ALTER TABLE messages DROP COLUMN deleted_at")
    op.execute("ALTER TABLE messages DROP COLUMN reply_to_network_id")
    op.execute("ALTER TABLE messages DROP COLUMN author_identity_id")
    op.execute("ALTER TABLE conversations DROP COLUMN post_url")
    op.execute("ALTER TABLE conversations DROP COLUMN post_text")
    op.execute("ALTER TABLE conversations DROP COLUMN public")
