"""The migrations on both backends: up, down, up again, and in step with the models."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.exc import IntegrityError

from bridge.domain import AuthorKind, ConversationState, Direction, Network
from bridge.store.engine import make_engine
from bridge.store.migrate import current_revision, downgrade, upgrade
from bridge.store.models import Base, conversations, customers, identities, messages, utcnow

TABLES = {"customers", "identities", "agents", "conversations", "messages", "dead_letters"}


async def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


async def test_migrations_go_up_down_and_up_again(database_url: str) -> None:
    await upgrade(database_url)
    assert TABLES <= await table_names(database_url)
    assert await current_revision(database_url) == "0001"

    await downgrade(database_url, "base")
    assert not TABLES & await table_names(database_url)
    assert await current_revision(database_url) is None

    await upgrade(database_url)
    assert TABLES <= await table_names(database_url)
    await downgrade(database_url, "base")


async def test_migrated_schema_matches_the_models(migrated_url: str) -> None:
    engine = make_engine(migrated_url)
    async with engine.connect() as conn:
        diff = await conn.run_sync(
            lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
        )
    await engine.dispose()

    assert diff == []


async def insert_conversation(conn: sa.ext.asyncio.AsyncConnection) -> int:
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


@pytest.mark.parametrize(
    "unique",
    [{"network_message_id": "m-1"}, {"idempotency_key": "reply-1"}],
    ids=["network message id", "idempotency key"],
)
async def test_the_database_refuses_a_second_copy(
    migrated_url: str, unique: dict[str, str]
) -> None:
    engine = make_engine(migrated_url)
    async with engine.begin() as conn:
        conversation_id = await insert_conversation(conn)
    row = {
        "conversation_id": conversation_id,
        "network": Network.VK,
        "direction": Direction.INBOUND,
        "author_kind": AuthorKind.CUSTOMER,
        "text": "hi",
        "created_at": utcnow(),
    } | unique
    async with engine.begin() as conn:
        await conn.execute(sa.insert(messages).values(row))
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(sa.insert(messages).values(row))
    await engine.dispose()


def test_migrate_command_applies_and_reverts(tmp_path: os.PathLike[str]) -> None:
    env = os.environ | {
        "SB_CONFIG": os.devnull,
        "SB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/cli.db",
    }
    command = [sys.executable, "-m", "bridge.cli", "migrate"]

    up = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    down = subprocess.run(
        [*command, "--down", "--revision", "base"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )

    assert up.stdout.strip().endswith("database at revision 0001")
    assert down.stdout.strip().endswith("database at revision None")
