"""article_changes: who created, changed or deleted each knowledge-base article, and when

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "article_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.String(length=128), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("changes", sa.JSON(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_article_changes_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_changes")),
    )
    op.create_index(
        "ix_article_changes_article_id_id", "article_changes", ["article_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_article_changes_article_id_id", table_name="article_changes")
    op.drop_table("article_changes")
