"""The migrations on both backends: up, down, up again, and in step with the models."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import AuthorKind, ConversationState, Direction, Network
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.migrate import alembic_config, current_revision, downgrade, upgrade
from bridge.store.models import (
    Base,
    conversation_merges,
    conversations,
    customers,
    identities,
    made_by_migration_only,
    messages,
    utcnow,
)
from tests.factories import comment, entries, inbound, permission

TABLES = set(Base.metadata.tables)
HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


async def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names())
            return {name for name in names if not made_by_migration_only(name)}
    finally:
        await engine.dispose()


async def schema_diff(url: str, metadata: sa.MetaData) -> list[Any]:
    """What autogenerate would write to bring the database to `metadata` (as env.py compares)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return list(
                await conn.run_sync(
                    lambda sync: compare_metadata(
                        MigrationContext.configure(
                            sync,
                            opts={"compare_type": True, "include_name": _models_only},
                        ),
                        metadata,
                    )
                )
            )
    finally:
        await engine.dispose()


def _models_only(name: str | None, kind: str, _parents: object) -> bool:
    return not made_by_migration_only(name or "")


@pytest.fixture
async def emptied_url(database_url: str) -> AsyncIterator[str]:
    """The empty database, reverted to base afterwards even when the test fails half-way."""
    yield database_url
    await downgrade(database_url, "base")


async def test_migrations_go_up_to_head_down_to_base_and_up_again(emptied_url: str) -> None:
    await upgrade(emptied_url)
    assert await table_names(emptied_url) == TABLES | {"alembic_version"}
    assert await current_revision(emptied_url) == HEAD

    await downgrade(emptied_url, "base")
    assert await table_names(emptied_url) <= {"alembic_version"}
    assert await current_revision(emptied_url) is None

    await upgrade(emptied_url)
    assert await table_names(emptied_url) == TABLES | {"alembic_version"}
    assert await current_revision(emptied_url) == HEAD


async def test_a_database_holding_conversations_goes_down_to_base_and_up_again(
    emptied_url: str, memory_bus: MemoryBus, settings: Settings
) -> None:
    await upgrade(emptied_url)
    engine = make_engine(emptied_url)
    try:
        pipeline = Pipeline(engine, memory_bus, settings, responder=None)
        await pipeline.handle(
            entries(
                inbound(1, 1, "где мой заказ?"),
                comment("wall-1_5", 2, 10, "Есть размер M?"),
                comment("wall-1_5", 3, 11, "Есть, я брал", reply_to=10),
                permission(2, allows=False),
            )
        )
        await pipeline.handle(entries(comment("wall-1_5", 2, 10, "Есть размер L?", kind="edit")))
    finally:
        await engine.dispose()

    await downgrade(emptied_url, "base")
    assert await table_names(emptied_url) <= {"alembic_version"}
    await upgrade(emptied_url)
    assert await current_revision(emptied_url) == HEAD


async def test_a_database_holding_a_merged_conversation_goes_down_to_0024_and_up_again(
    emptied_url: str, memory_bus: MemoryBus, settings: Settings
) -> None:
    await upgrade(emptied_url)
    engine = make_engine(emptied_url)
    try:
        pipeline = Pipeline(engine, memory_bus, settings, responder=None)
        await pipeline.handle(entries(inbound(501, 1, "hello", network=Network.FACEBOOK)))
        async with engine.begin() as conn:
            into = (await conn.execute(sa.select(conversations.c.id))).scalar_one()
            await conn.execute(
                sa.insert(conversation_merges).values(
                    conversation_id=into + 1, into_id=into, merged_at=utcnow()
                )
            )
    finally:
        await engine.dispose()

    await downgrade(emptied_url, "0024")
    assert "conversation_merges" not in await table_names(emptied_url)
    await upgrade(emptied_url)
    assert "conversation_merges" in await table_names(emptied_url)
    assert await current_revision(emptied_url) == HEAD


async def test_a_database_holding_a_claimed_reply_goes_down_to_0025_and_up_again(
    emptied_url: str, memory_bus: MemoryBus, settings: Settings
) -> None:
    await upgrade(emptied_url)
    engine = make_engine(emptied_url)
    try:
        await Pipeline(engine, memory_bus, settings, responder=None).handle(
            entries(inbound(1, 1, "hello"))
        )
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(messages)
                .where(messages.c.direction == Direction.OUTBOUND)
                .values(requeued_at=utcnow(), claimed_by="a sender", claimed_until=utcnow())
            )
    finally:
        await engine.dispose()

    await downgrade(emptied_url, "0025")
    assert await current_revision(emptied_url) == "0025"
    await upgrade(emptied_url)
    assert await current_revision(emptied_url) == HEAD
    engine = make_engine(emptied_url)
    try:
        async with engine.connect() as conn:
            reply = (
                await conn.execute(
                    sa.select(messages.c.delivery_status, messages.c.claimed_by).where(
                        messages.c.direction == Direction.OUTBOUND
                    )
                )
            ).one()
    finally:
        await engine.dispose()
    assert tuple(reply) == ("queued", None), "kept queued, no longer claimed by anyone"


async def test_migrated_schema_matches_the_models(migrated_url: str) -> None:
    assert await schema_diff(migrated_url, Base.metadata) == []


def drifted(change: str) -> sa.MetaData:
    """A copy of the models with one change the migrations do not have."""
    metadata = sa.MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    table = metadata.tables["messages"]
    if change == "column length":
        table.c.network_message_id.type = sa.String(64)
    elif change == "nullable":
        table.c.text.nullable = True
    elif change == "unique constraint":
        (unique,) = (
            c
            for c in table.constraints
            if isinstance(c, sa.UniqueConstraint) and "network_message_id" in c.columns
        )
        table.constraints.remove(unique)
    elif change == "new column":
        table.append_column(sa.Column("extra", sa.Integer))
    return metadata


@pytest.mark.parametrize("change", ["column length", "nullable", "unique constraint", "new column"])
async def test_the_schema_comparison_notices_a_drift(migrated_url: str, change: str) -> None:
    assert await schema_diff(migrated_url, drifted(change)) != []


async def insert_conversation(conn: AsyncConnection) -> int:
    now = utcnow()
    customer_id = (
        await conn.execute(sa.insert(customers).values(created_at=now).returning(customers.c.id))
    ).scalar_one()
    identity_id = (
        await conn.execute(
            sa.insert(identities)
            .values(
                customer_id=customer_id, network=Network.VK, external_user_id="1", created_at=now
            )
            .returning(identities.c.id)
        )
    ).scalar_one()
    return int(
        (
            await conn.execute(
                sa.insert(conversations)
                .values(
                    network=Network.VK,
                    chat_id="1",
                    customer_id=customer_id,
                    identity_id=identity_id,
                    state=ConversationState.BOT,
                    created_at=now,
                    last_message_at=now,
                )
                .returning(conversations.c.id)
            )
        ).scalar_one()
    )


@pytest.fixture
async def message_row(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.begin() as conn:
        conversation_id = await insert_conversation(conn)
    return {
        "conversation_id": conversation_id,
        "network": Network.VK,
        "direction": Direction.INBOUND,
        "author_kind": AuthorKind.CUSTOMER,
        "text": "hi",
        "created_at": utcnow(),
    }


async def insert_messages(engine: AsyncEngine, *rows: dict[str, Any]) -> None:
    for row in rows:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(messages).values(row))


@pytest.mark.parametrize(
    "unique",
    [{"network_message_id": "m-1"}, {"idempotency_key": "reply-1"}],
    ids=["network message id", "idempotency key"],
)
async def test_the_database_refuses_a_second_copy(
    engine: AsyncEngine, message_row: dict[str, Any], unique: dict[str, str]
) -> None:
    await insert_messages(engine, message_row | unique)

    with pytest.raises(IntegrityError):
        await insert_messages(engine, message_row | unique)


async def test_the_same_message_id_on_another_network_is_a_different_message(
    engine: AsyncEngine, message_row: dict[str, Any]
) -> None:
    first = message_row | {"network_message_id": "m-1"}

    await insert_messages(engine, first, first | {"network": Network.TELEGRAM})


async def test_messages_without_a_network_id_or_key_do_not_collide(
    engine: AsyncEngine, message_row: dict[str, Any]
) -> None:
    outbound = message_row | {"direction": Direction.OUTBOUND, "author_kind": AuthorKind.BOT}

    await insert_messages(engine, outbound, outbound)


def migrate_command(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SB_")} | {
        "SB_CONFIG": os.devnull,
        "SB_DATABASE_URL": url,
    }
    return subprocess.run(
        [Path(sys.executable).with_name("supportbridge"), "migrate", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_migrate_command_applies_and_reverts(emptied_url: str) -> None:
    up = migrate_command(emptied_url)
    assert up.returncode == 0, up.stderr
    assert up.stdout.strip().endswith(f"database at revision {HEAD}")
    assert asyncio.run(table_names(emptied_url)) == TABLES | {"alembic_version"}

    down = migrate_command(emptied_url, "--down", "--revision", "base")
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip().endswith("database at revision None")
    assert asyncio.run(table_names(emptied_url)) <= {"alembic_version"}


def test_migrate_command_refuses_an_unknown_revision_in_one_line(emptied_url: str) -> None:
    result = migrate_command(emptied_url, "--revision", "nonsense")

    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "supportbridge: migrate: Can't locate revision identified by 'nonsense'"
    )
    assert "Traceback" not in result.stderr
