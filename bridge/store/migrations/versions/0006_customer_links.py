"""customer_links: "same person as ..." links an agent made between customers, for undo

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "customer_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("merged_customer_id", sa.Integer(), nullable=False),
        sa.Column("identity_ids", sa.JSON(), nullable=False),
        sa.Column("conversation_ids", sa.JSON(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_links_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(
            ["merged_customer_id"],
            ["customers.id"],
            name=op.f("fk_customer_links_merged_customer_id_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_customer_links_agent_id_agents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_links")),
    )
    op.create_index(op.f("ix_customer_links_customer_id"), "customer_links", ["customer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_customer_links_customer_id"), table_name="customer_links")
    op.drop_table("customer_links")
