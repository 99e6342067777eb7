"""kept_files.size: the bytes of each kept file, so that a storage quota is checked by a sum over
a small column instead of reading every file

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("kept_files") as batch:
        batch.add_column(sa.Column("size", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute("UPDATE kept_files SET size = length(content)")


def downgrade() -> None:
    with op.batch_alter_table("kept_files") as batch:
        batch.drop_column("size")
