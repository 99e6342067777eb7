"""community_solutions: customers' public answers agents marked as the solution to another
customer's question

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "community_solutions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("question_message_id", sa.Integer(), nullable=False),
        sa.Column("answer_message_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("marked_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_community_solutions_agent_id_agents")
        ),
        sa.ForeignKeyConstraint(
            ["answer_message_id"],
            ["messages.id"],
            name=op.f("fk_community_solutions_answer_message_id_messages"),
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_community_solutions_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["question_message_id"],
            ["messages.id"],
            name=op.f("fk_community_solutions_question_message_id_messages"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_solutions")),
        sa.UniqueConstraint(
            "answer_message_id", name=op.f("uq_community_solutions_answer_message_id")
        ),
    )
    op.create_index(
        "ix_community_solutions_marked_at", "community_solutions", ["marked_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_community_solutions_marked_at", table_name="community_solutions")
    op.drop_table("community_solutions")
