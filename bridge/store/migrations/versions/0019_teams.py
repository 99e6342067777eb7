"""teams: teams of agents (capacity, re-assignment, business hours), their members, the routing
rules that send conversations to them, agents' presence; conversations.team_id and assigned_at

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("name_key", sa.String(length=255), nullable=False),
        sa.Column("auto_assign", sa.Boolean(), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("reassign_after_minutes", sa.Integer(), nullable=True),
        sa.Column("time_zone", sa.String(length=64), nullable=True),
        sa.Column("hours", sa.JSON(), nullable=True),
        sa.Column("holidays", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name_key", name=op.f("uq_teams_name_key")),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("last_assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_members_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_team_members_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "agent_id", name=op.f("pk_team_members")),
    )
    op.create_index(op.f("ix_team_members_agent_id"), "team_members", ["agent_id"])
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=32), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("tag", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=32), nullable=True),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("label_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_routing_rules_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["labels.id"],
            name=op.f("fk_routing_rules_label_id_labels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_rules")),
    )
    op.create_table(
        "agent_presence",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["agents.id"],
            name=op.f("fk_agent_presence_agent_id_agents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("agent_id", name=op.f("pk_agent_presence")),
    )
    op.add_column("conversations", sa.Column("team_id", sa.Integer(), nullable=True))
    op.add_column(
        "conversations", sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(op.f("ix_conversations_team_id"), "conversations", ["team_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_conversations_team_id"), table_name="conversations")
    op.execute("ALTER TABLE conversations DROP COLUMN assigned_at")
    op.execute("ALTER TABLE conversations DROP COLUMN team_id")
    op.drop_table("agent_presence")
    op.drop_table("routing_rules")
    op.drop_index(op.f("ix_team_members_agent_id"), table_name="team_members")
    op.drop_table("team_members")
    op.drop_table("teams")
