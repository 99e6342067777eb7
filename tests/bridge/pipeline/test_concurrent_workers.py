"""Two core workers storing the same new person and chat at once (a shard changing hands, or one
person writing in chats of two shards) on PostgreSQL: one of each is made, and nothing is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.pipeline.ingest import ingest
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.models import conversations, customers, identities, messages, utcnow
from tests.factories import entries, inbound

pytestmark = pytest.mark.postgres


@pytest.fixture
async def engines(postgres_url: str) -> AsyncIterator[tuple[AsyncEngine, AsyncEngine]]:
    first, second = make_engine(postgres_url), make_engine(postgres_url)
    yield first, second
    await first.dispose()
    await second.dispose()


async def count(engine: AsyncEngine, table: sa.Table) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(table))).scalar_one())


async def waits_for_a_lock(engine: AsyncEngine) -> bool:
    """Whether some other connection waits for a row lock (the rival's uncommitted key)."""
    for _ in range(100):
        async with engine.connect() as conn:
            waiting = await conn.scalar(
                sa.text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
                )
            )
        if waiting:
            return True
        await asyncio.sleep(0.05)
    return False


async def test_two_workers_making_the_same_person_and_chat_make_one_of_each(
    engines: tuple[AsyncEngine, AsyncEngine], settings: Settings
) -> None:
    first, second = engines
    other_worker = Pipeline(second, MemoryBus(settings.inbound_shards), settings, None)
    async with first.begin() as conn:
        # the first worker has made them and not committed yet when the other one comes
        await ingest(conn, [inbound(7, 1)], utcnow())
        racing = asyncio.create_task(other_worker.handle(entries(inbound(7, 2))))
        assert await waits_for_a_lock(first)
    await racing

    assert await count(first, identities) == 1
    assert await count(first, customers) == 1
    assert await count(first, conversations) == 1
    async with first.connect() as conn:
        stored = (
            await conn.execute(
                sa.select(messages.c.network_message_id, messages.c.conversation_id).where(
                    messages.c.network_message_id.is_not(None)
                )
            )
        ).all()
    assert sorted(nmid for nmid, _ in stored) == ["7-1", "7-2"]
    assert len({conversation for _, conversation in stored}) == 1
