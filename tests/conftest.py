"""Shared fixtures: the two database backends, the real Redis, settings and a pipeline."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.pipeline.responder import Responder
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.migrate import downgrade, upgrade

POSTGRES_ADMIN_URL = os.environ.get("SB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SB_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI") == "true"


def service_missing(what: str, error: Exception) -> None:
    """Locally a missing service skips its tests; in CI it fails them (never a silent skip)."""
    message = f"{what} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    name = f"sb_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(POSTGRES_ADMIN_URL, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except (OSError, asyncpg.PostgresError) as exc:
        service_missing("PostgreSQL", exc)
    base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
    yield f"{base}/{name}"
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: os.PathLike[str], request: pytest.FixtureRequest) -> str:
    """An empty (unmigrated) database of the parametrised backend."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture
async def migrated_url(database_url: str) -> AsyncIterator[str]:
    await upgrade(database_url)
    yield database_url
    await downgrade(database_url, "base")


@pytest.fixture
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(migrated_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def settings(tmp_path: os.PathLike[str]) -> Settings:
    return Settings(data_dir=tmp_path, inbound_shards=4, batch_size=64)


@pytest.fixture
def memory_bus(settings: Settings) -> MemoryBus:
    return MemoryBus(settings.inbound_shards)


@pytest.fixture
async def redis_url() -> AsyncIterator[str]:
    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except (OSError, aioredis.ConnectionError) as exc:
        service_missing("Redis", exc)
    finally:
        await client.aclose()
    yield REDIS_URL


@pytest.fixture
async def postgres_url(postgres_database: str) -> AsyncIterator[str]:
    """The session's PostgreSQL database, migrated for one test and emptied after it."""
    await upgrade(postgres_database)
    yield postgres_database
    await downgrade(postgres_database, "base")


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"sbtest-{uuid.uuid4().hex[:8]}"
    yield prefix

    async def clean() -> None:
        client = aioredis.Redis.from_url(redis_url)
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
        await client.aclose()

    asyncio.run(clean())


@pytest.fixture
def responder() -> Responder | None:
    """The end-to-end pipelines' responder: none (every conversation goes to the agents) unless a
    test parametrizes it."""
    return None
