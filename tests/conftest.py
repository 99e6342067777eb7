"""Shared fixtures: the two database backends, the real Redis, settings and a pipeline; the
sandbox as a user starts it, and Debian's chromium driven by Playwright."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
import redis.asyncio as aioredis
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from alembic.script import ScriptDirectory
from argon2 import PasswordHasher, profiles
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.backends.local import LocalBackend
from bridge.bus.memory import MemoryBus
from bridge.inbox import passwords
from bridge.pipeline.responder import Responder
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.migrate import alembic_config, downgrade, upgrade
from kb.embedding.base import Embedder, Vectors
from kb.embedding.bundled import E5Small

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

POSTGRES_ADMIN_URL = os.environ.get("SB_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("SB_TEST_REDIS", "redis://127.0.0.1:6379/0")
IN_CI = os.environ.get("CI") == "true"
CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = REPO / "screenshots"
PHONE = {"width": 390, "height": 844}
MIGRATIONS_HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules with a slow test first, each whole: xdist (`--dist loadscope`) hands a module
    at a time to whichever worker is free, so one of minutes handed out last would keep a worker
    busy while the other has finished."""
    slow = {item.nodeid.split("::")[0] for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.nodeid.split("::")[0] not in slow)


def service_missing(what: str, error: Exception) -> None:
    """Locally a missing service skips its tests; in CI it fails them (never a silent skip)."""
    message = f"{what} is not reachable: {error}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(autouse=True, scope="session")
def cheap_password_hashing() -> Iterator[None]:
    """argon2 with argon2-cffi's profile for tests, in the tests' own process: a hash and a check
    take 0.35 s at the product's parameters, and most web tests add an agent and sign in. A
    product a test starts as a process keeps the real parameters."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "_hasher", PasswordHasher.from_parameters(profiles.CHEAPEST))
        yield


@contextlib.contextmanager
def new_postgres_database() -> Iterator[str]:
    """A database of its own on the test server (its URL), dropped when left."""
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


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    with new_postgres_database() as url:
        yield url


@dataclass(frozen=True)
class MigratedPostgres:
    """A PostgreSQL database at the migrations' head, and how to empty it again."""

    url: str
    tables: list[str]  # each after the tables that refer to it
    sequences: list[str]

    async def empty(self) -> None:
        """Every table emptied and every sequence restarted: the database as the migrations leave
        it (they add no rows). One that a test took to another revision is migrated again."""
        conn = await asyncpg.connect(self.url.replace("postgresql+asyncpg", "postgresql"))
        try:
            at_head = await conn.fetchval(
                "SELECT version_num = $1 FROM alembic_version", MIGRATIONS_HEAD
            )
            if at_head:
                async with conn.transaction():
                    await conn.execute(
                        "".join(f'DELETE FROM "{table}";' for table in self.tables)
                        + "".join(f'ALTER SEQUENCE "{seq}" RESTART;' for seq in self.sequences)
                    )
                return
        except asyncpg.UndefinedTableError:
            pass
        finally:
            await conn.close()
        await downgrade(self.url, "base")
        await upgrade(self.url)


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[MigratedPostgres]:
    """A PostgreSQL database migrated once for the session: migrating one takes seconds,
    emptying it for the next test milliseconds."""
    with new_postgres_database() as url:

        async def migrate() -> MigratedPostgres:
            await upgrade(url)
            engine = make_engine(url)
            try:
                async with engine.connect() as conn:
                    return await conn.run_sync(
                        lambda sync: MigratedPostgres(url, *_tables_and_sequences(sync))
                    )
            finally:
                await engine.dispose()

        yield asyncio.run(migrate())


def _tables_and_sequences(conn: sa.Connection) -> tuple[list[str], list[str]]:
    metadata = sa.MetaData()
    metadata.reflect(conn)
    tables = [t.name for t in reversed(metadata.sorted_tables) if t.name != "alembic_version"]
    return tables, list(sa.inspect(conn).get_sequence_names())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, tmp_path: os.PathLike[str], request: pytest.FixtureRequest) -> str:
    """An empty (unmigrated) database of the parametrised backend."""
    if backend == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue("postgres_database"))


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once for the session, copied for each test that needs one."""
    path = tmp_path_factory.mktemp("migrated") / "store.db"
    asyncio.run(upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def migrated_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """An empty database of the parametrised backend, at the migrations' head."""
    if backend == "sqlite":
        path = tmp_path / "store.db"
        template: Path = request.getfixturevalue("migrated_sqlite")
        with (
            contextlib.closing(sqlite3.connect(template)) as source,
            contextlib.closing(sqlite3.connect(path)) as copy,
        ):
            source.backup(copy)
        return f"sqlite+aiosqlite:///{path}"
    return str(request.getfixturevalue("postgres_url"))


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
def local_backend(memory_bus: MemoryBus, settings: Settings) -> LocalBackend:
    """The embedded mode's backend, on the test's in-process bus."""
    return LocalBackend(memory_bus, settings.data_dir)


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
def postgres_url(migrated_postgres: MigratedPostgres) -> str:
    """The session's migrated PostgreSQL database, emptied for this test."""
    asyncio.run(migrated_postgres.empty())
    return migrated_postgres.url


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


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    """`app` on a loopback port, as the base URL a client is given (an emulated network)."""
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.close()


def new_user_env(data_dir: Path, port: int, **settings: str) -> dict[str, str]:
    """The environment of a product started as a new user starts it: none of the caller's SB_*
    settings, no settings file, its own data directory and port."""
    return {key: value for key, value in os.environ.items() if not key.startswith("SB_")} | {
        "SB_CONFIG": os.devnull,
        "SB_DATA_DIR": str(data_dir),
        "SB_HTTP_PORT": str(port),
        "SB_LOG_LEVEL": "WARNING",
        **settings,
    }


@pytest.fixture(scope="module")
def sandbox_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sandbox")


@pytest.fixture(scope="module")
def sandbox(sandbox_dir: Path) -> Iterator[str]:
    """`supportbridge run --sandbox` in an empty directory (`sandbox_dir`); its base URL once it
    answers. One for a module's tests (a start costs seconds): each plays customers of its own,
    as every new browser context is a new customer of the sandbox and a new web-chat visitor."""
    with running_sandbox(sandbox_dir) as base:
        yield base


@contextlib.contextmanager
def running_sandbox(tmp_path: Path, **settings: str) -> Iterator[str]:
    """`supportbridge run --sandbox` with these SB_* `settings`; its base URL once it reports
    ready: the knowledge base's matcher fitted, so the bot answers what it knows rather than
    handing off (a fit takes longer on a busy machine)."""
    from bench.ports import free_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "supportbridge.cli", "run", "--sandbox"],
        env=new_user_env(tmp_path, port, **settings),
        cwd=tmp_path,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{base}/readyz", timeout=5).close()
            break
        except OSError:  # refused while starting, 503 (an HTTPError) until ready
            assert process.poll() is None, "the sandbox exited"
            assert time.monotonic() < deadline, "the sandbox did not get ready"
            time.sleep(0.2)
    yield base
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


# where the sandbox's Telegram emulator lets a test play a customer
SANDBOX_CUSTOMERS = "/sandbox/telegram/_emulator/users/"


def sandbox_customer_writes(base: str, user_id: int, text: str, name: str = "Ivan") -> None:
    """A Telegram customer of the sandbox at `base` writes `text`."""
    body = json.dumps({"text": text, "first_name": name, "language_code": "ru"}).encode()
    request = urllib.request.Request(
        f"{base}{SANDBOX_CUSTOMERS}{user_id}/messages",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read())["ok"]


def sandbox_bot_messages(base: str, user_id: int) -> list[dict[str, Any]]:
    """What the bot has sent that customer so far."""
    with urllib.request.urlopen(
        f"{base}{SANDBOX_CUSTOMERS}{user_id}/bot-messages", timeout=5
    ) as response:
        result: list[dict[str, Any]] = json.loads(response.read())["result"]
        return result


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Debian's chromium (Playwright cannot download its own browser here)."""
    if not shutil.which(CHROMIUM):
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        pytest.fail(message) if IN_CI else pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield browser
        browser.close()


@pytest.fixture
def phone(chromium: Browser) -> Page:
    """A page the size of a phone's screen, touch, in Russian (the customers' usual case)."""
    context = chromium.new_context(
        viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, locale="ru-RU"
    )
    return context.new_page()


class CountingEmbedder:
    """A real embedding model, counting the texts it is asked to embed."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self.embedded: list[str] = []

    @property
    def name(self) -> str:
        return self._embedder.name

    def embed(self, texts: Sequence[str]) -> Vectors:
        self.embedded += list(texts)
        return self._embedder.embed(texts)


@pytest.fixture(scope="session")
def bundled_model() -> E5Small:
    """The bundled embedding model (in the test lock), loaded once."""
    return E5Small()
