"""The distributed mode with real processes: `supportbridge core` on PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence

import orjson
import pytest
import sqlalchemy as sa

from bench.ports import free_port
from bridge.bus import BusEntry
from bridge.bus.redis import RedisBus
from bridge.domain import Network
from bridge.store.engine import make_engine
from bridge.store.models import messages
from tests.factories import inbound

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.slow]

CONVERSATIONS = 150
PER_CONVERSATION = 20
SHARDS = 8


class Cores:
    """Real core worker processes, started and killed like an operator (or a crash) would."""

    def __init__(self, database_url: str, redis_url: str, prefix: str) -> None:
        self.env = os.environ | {
            "SB_CONFIG": os.devnull,
            "SB_DATABASE_URL": database_url,
            "SB_REDIS_URL": redis_url,
            "SB_REDIS_PREFIX": prefix,
            "SB_RESPONDER": "bench.responder:always_answer",
            "SB_INBOUND_SHARDS": str(SHARDS),
            "SB_BATCH_SIZE": "50",
            "SB_SHARD_LEASE_MS": "1000",
            "SB_CLAIM_IDLE_MS": "1000",
            "SB_LOG_LEVEL": "WARNING",
        }
        self.running: list[subprocess.Popen[bytes]] = []
        self.ports: dict[int, int] = {}

    def start(self) -> subprocess.Popen[bytes]:
        port = free_port()  # its /healthz, /readyz and /metrics
        env = self.env | {"SB_HTTP_PORT": str(port)}
        process = subprocess.Popen([sys.executable, "-m", "supportbridge.cli", "core"], env=env)
        self.running.append(process)
        self.ports[process.pid] = port
        return process

    def kill_hard(self, process: subprocess.Popen[bytes]) -> None:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        self.running.remove(process)

    def stop_all(self) -> None:
        for process in self.running:
            process.terminate()
        for process in self.running:
            process.wait(timeout=20)


@pytest.fixture
def cores(postgres_url: str, redis_url: str, redis_prefix: str) -> Iterator[Cores]:
    group = Cores(postgres_url, redis_url, redis_prefix)
    yield group
    group.stop_all()


async def stored_inbound(url: str) -> int:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            query = sa.select(sa.func.count()).where(messages.c.direction == "inbound")
            return int((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def wait_for_stored(url: str, at_least: int, limit_s: float = 90) -> None:
    async def poll() -> None:
        while await stored_inbound(url) < at_least:  # noqa: ASYNC110 - the database has no event
            await asyncio.sleep(0.1)

    await asyncio.wait_for(poll(), limit_s)


async def test_killed_core_processes_lose_nothing_and_double_nothing(
    cores: Cores, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    total = CONVERSATIONS * PER_CONVERSATION
    bus = RedisBus(redis_url, SHARDS, prefix=redis_prefix)
    first, second = cores.start(), cores.start()
    for seq in range(PER_CONVERSATION):
        await bus.publish_inbound([inbound(f"c{c}", seq, f"m{seq}") for c in range(CONVERSATIONS)])

    await wait_for_stored(postgres_url, total // 4)
    cores.kill_hard(first)
    cores.start()
    await wait_for_stored(postgres_url, total // 2)
    cores.kill_hard(second)
    cores.start()
    await wait_for_stored(postgres_url, total)

    queued = await read_outbound(bus, expected=total)
    await bus.close()
    engine = make_engine(postgres_url)
    async with engine.connect() as conn:
        inbound_rows = (
            await conn.execute(
                sa.select(messages.c.id, messages.c.conversation_id, messages.c.network_message_id)
                .where(messages.c.direction == "inbound")
                .order_by(messages.c.id)
            )
        ).all()
        replies_per_message = (
            await conn.execute(
                sa.select(messages.c.in_reply_to_id, sa.func.count())
                .where(messages.c.direction == "outbound")
                .group_by(messages.c.in_reply_to_id)
            )
        ).all()
    await engine.dispose()

    stored_ids = [row.network_message_id for row in inbound_rows]
    doubled = len(stored_ids) - len(set(stored_ids))
    print(f"sent {total} stored {len(set(stored_ids))} doubled {doubled}", end=" ")
    print(f"replies {len(replies_per_message)} queued {len(queued)}")
    assert sorted(stored_ids) == sorted(
        f"c{c}-{s}" for c in range(CONVERSATIONS) for s in range(PER_CONVERSATION)
    )
    assert len(replies_per_message) == total and all(n == 1 for _, n in replies_per_message)
    assert len(queued) == total, "every reply reached the outbound stream"
    sequences: dict[int, list[int]] = {}
    for row in inbound_rows:
        sequences.setdefault(row.conversation_id, []).append(
            int(row.network_message_id.split("-")[1])
        )
    assert all(seqs == list(range(PER_CONVERSATION)) for seqs in sequences.values()), (
        "messages of each conversation are stored in the order they were sent"
    )


async def read_outbound(bus: RedisBus, expected: int, limit_s: float = 60) -> set[str]:
    """Idempotency keys of the replies on the outbound stream (a re-queued one counts once)."""
    keys: set[str] = set()
    stop = asyncio.Event()

    async def collect(entries: Sequence[BusEntry]) -> None:
        keys.update(orjson.loads(entry.payload)["idempotency_key"] for entry in entries)
        if len(keys) >= expected:
            stop.set()

    consumer = bus.consume_outbound(Network.TELEGRAM, "test", collect, batch_size=500, stop=stop)
    await asyncio.wait_for(consumer, limit_s)
    return keys


def test_a_core_process_answers_health_readiness_and_metrics(cores: Cores) -> None:
    process = cores.start()
    base = f"http://127.0.0.1:{cores.ports[process.pid]}"
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"{base}/readyz", timeout=2) as ready:
                assert ready.status == 200
            break
        except OSError:
            assert time.monotonic() < deadline, "the core's HTTP port never answered"
            time.sleep(0.2)

    with urllib.request.urlopen(f"{base}/metrics", timeout=2) as response:
        assert "sb_inbound_stream_lag" in response.read().decode()
