"""Alembic environment: the caller (bridge.store.migrate) hands over an open connection."""

from __future__ import annotations

from alembic import context

from bridge.store.models import Base, made_by_migration_only

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `supportbridge migrate` (bridge.store.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
    include_name=lambda name, kind, _parents: not made_by_migration_only(name or ""),
)
with context.begin_transaction():
    context.run_migrations()
