"""api_tokens.scope, expires_at and revoked_at; sign_in_attempts (the sign-in throttle); the
sessions and tokens of agents disabled before now are ended, as disabling now does

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_tokens",
        sa.Column("scope", sa.String(length=16), server_default="full", nullable=False),
    )
    op.add_column("api_tokens", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_tokens", sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "sign_in_attempts",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_attempt", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_sign_in_attempts")),
    )
    op.create_index(op.f("ix_sign_in_attempts_last_attempt"), "sign_in_attempts", ["last_attempt"])
    # Re-enabling an agent must not bring back what they had before they were disabled.
    disabled = "agent_id IN (SELECT id FROM agents WHERE NOT active)"
    op.execute(f"DELETE FROM web_sessions WHERE {disabled}")
    op.execute(
        sa.text(f"UPDATE api_tokens SET revoked_at = :now WHERE {disabled}").bindparams(
            now=dt.datetime.now(dt.UTC)
        )
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_sign_in_attempts_last_attempt"), table_name="sign_in_attempts")
    op.drop_table("sign_in_attempts")
    op.execute("ALTER TABLE api_tokens DROP COLUMN revoked_at")
    op.execute("ALTER TABLE api_tokens DROP COLUMN expires_at")
    op.execute("ALTER TABLE api_tokens DROP COLUMN scope")
