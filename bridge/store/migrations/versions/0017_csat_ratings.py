"""csat_ratings: customers' ratings (1-5) of the conversations agents resolved, with comments

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "csat_ratings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_message_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("network", sa.String(length=32), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("rated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("commented_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_csat_ratings_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_csat_ratings_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["request_message_id"],
            ["messages.id"],
            name=op.f("fk_csat_ratings_request_message_id_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_csat_ratings")),
        sa.UniqueConstraint("request_message_id", name=op.f("uq_csat_ratings_request_message_id")),
    )
    op.create_index("ix_csat_ratings_asked_at", "csat_ratings", ["asked_at"], unique=False)
    op.create_index(
        op.f("ix_csat_ratings_conversation_id"), "csat_ratings", ["conversation_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_csat_ratings_conversation_id"), table_name="csat_ratings")
    op.drop_index("ix_csat_ratings_asked_at", table_name="csat_ratings")
    op.drop_table("csat_ratings")
