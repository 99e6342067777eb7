"""`supportbridge bench pipeline`: synthetic inbound messages through the real pipeline.

Every message gets a reply (the bench responder answers everything), so latency is measured per
message from "accepted from the network" (its `received_at`) to "reply stored and queued" (the
outbound stream entry's time). The distributed mode starts real `supportbridge core` processes on
PostgreSQL and Redis; it uses (and wipes) its own database and Redis db, never the product's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import orjson
import psutil
import redis.asyncio as aioredis
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.cpu import CpuMeter, with_servers
from bench.ports import free_port
from bench.responder import AlwaysAnswer
from bridge.bus import Bus, BusEntry
from bridge.bus.journal import InboundJournal
from bridge.bus.memory import MemoryBus
from bridge.bus.redis import RedisBus
from bridge.domain import AuthorKind, Direction, InboundMessage, Network
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.migrate import upgrade
from bridge.store.models import conversations, messages, utcnow

BENCH_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/sb_bench"
BENCH_REDIS_URL = "redis://127.0.0.1:6379/15"
PUBLISH_CHUNK = 500
TICK_S = 0.01
PHRASES = (
    "Здравствуйте, у меня не работает интернет",
    "Hello, my router keeps dropping the connection",
    "Как поменять тариф?",
    "How do I pay my bill?",
)


@dataclass(frozen=True)
class BenchOptions:
    mode: str
    messages: int
    conversations: int
    rate: float | None
    cores: int
    # Messages per publish call, the calls of a round made at once: 1 is a burst of webhooks
    # each awaiting its own acknowledgement, 100 a long poll's page.
    per_publish: int = PUBLISH_CHUNK
    database_url: str = BENCH_DATABASE_URL
    redis_url: str = BENCH_REDIS_URL


@dataclass
class Replies:
    """Collects the reply of every benchmark message as it reaches the outbound stream."""

    run_id: str
    expected: int
    latencies_ms: list[float] = field(default_factory=list)
    last_at: float = 0.0
    done: asyncio.Event = field(default_factory=asyncio.Event)

    async def handle(self, entries: Sequence[BusEntry]) -> None:
        for entry in entries:
            reply = orjson.loads(entry.payload)
            if not str(reply.get("in_reply_to", "")).startswith(self.run_id):
                continue
            queued_at = _entry_time(entry.entry_id)
            self.latencies_ms.append((queued_at - reply["received_at"]) * 1000)
            self.last_at = max(self.last_at, queued_at)
        if len(self.latencies_ms) >= self.expected:
            self.done.set()


def _entry_time(entry_id: str) -> float:
    """A Redis stream id starts with the time it was appended; in-process ones are read at once."""
    millis, sep, _ = entry_id.partition("-")
    return int(millis) / 1000 if sep else time.time()


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


class RssSampler:
    """Peak resident memory, summed over the processes that run the pipeline."""

    def __init__(self, pids: Sequence[int]) -> None:
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peak_bytes = 0

    def sample(self) -> None:
        total = 0
        for process in self.processes:
            with contextlib.suppress(psutil.Error):
                total += process.memory_info().rss
        self.peak_bytes = max(self.peak_bytes, total)

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.sample()
            await asyncio.sleep(0.2)


async def offer(bus: Bus, options: BenchOptions, run_id: str) -> float:
    """Publish the messages, as fast as the bus takes them or at `options.rate`; returns start."""
    started = time.time()
    sent = 0
    while sent < options.messages:
        if options.rate:
            due = min(options.messages, int((time.time() - started) * options.rate) + 1)
            if due <= sent:
                await asyncio.sleep(TICK_S)
                continue
        else:
            due = min(options.messages, sent + PUBLISH_CHUNK)
        now = time.time()
        batch = [
            InboundMessage(
                network=Network.TELEGRAM,
                network_message_id=f"{run_id}-{n}",
                chat_id=f"bench-{n % options.conversations}",
                user_id=f"bench-{n % options.conversations}",
                text=f"{PHRASES[n % len(PHRASES)]} #{n}",
                received_at=now,
            )
            for n in range(sent, due)
        ]
        step = options.per_publish
        await asyncio.gather(
            *(bus.publish_inbound(batch[i : i + step]) for i in range(0, len(batch), step))
        )
        sent = due
        if not options.rate:
            await asyncio.sleep(0)  # let the in-process consumers run between chunks
    return started


async def raw_rows_per_s(engine: AsyncEngine, rows: int, batch_size: int) -> float:
    """Write capacity of the same database: the same message rows by a bare bulk insert."""
    async with engine.connect() as conn:
        conversation_id = (await conn.execute(sa.select(sa.func.min(conversations.c.id)))).scalar()
    run_id = uuid.uuid4().hex[:8]
    now = utcnow()
    started = time.perf_counter()
    for first in range(0, rows, batch_size):
        async with engine.begin() as conn:
            await conn.execute(
                sa.insert(messages),
                [
                    {
                        "conversation_id": conversation_id,
                        "network": Network.TELEGRAM,
                        "direction": Direction.INBOUND,
                        "author_kind": AuthorKind.CUSTOMER,
                        "text": PHRASES[n % len(PHRASES)],
                        "network_message_id": f"raw-{run_id}-{n}",
                        "created_at": now,
                    }
                    for n in range(first, min(rows, first + batch_size))
                ],
            )
    return rows / (time.perf_counter() - started)


def report(
    options: BenchOptions,
    replies: Replies,
    started: float,
    peak_rss: int,
    raw: float,
    cpu: CpuMeter,
) -> dict[str, object]:
    throughput = options.messages / max(replies.last_at - started, 1e-9)
    return {
        "mode": options.mode,
        "messages": options.messages,
        "conversations": options.conversations,
        "cores": options.cores if options.mode == "distributed" else 1,
        "offered_rate": options.rate,
        "per_publish": options.per_publish,
        "msgs_per_s": round(throughput, 1),
        "p50_ms": round(percentile(replies.latencies_ms, 0.50), 2),
        "p95_ms": round(percentile(replies.latencies_ms, 0.95), 2),
        "p99_ms": round(percentile(replies.latencies_ms, 0.99), 2),
        "peak_rss_mb": round(peak_rss / 2**20, 1),
        "raw_rows_per_s": round(raw, 1),
        "ratio_to_raw": round(throughput / raw, 3),
        "cpu_ms_per_msg": cpu.ms_per_message(options.messages),
    }


async def progress(replies: Replies, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(2)
        print(f"  replies queued: {len(replies.latencies_ms)}/{replies.expected}", file=sys.stderr)


async def run_embedded(settings: Settings, options: BenchOptions) -> dict[str, object]:
    workdir = tempfile.mkdtemp(prefix="sb-bench-")
    url = f"sqlite+aiosqlite:///{workdir}/bench.db"
    try:
        await upgrade(url)
        engine = make_engine(url)
        # As `supportbridge run` has it: each publish returns once committed to the journal.
        journal = InboundJournal(Path(workdir) / "inbound-queue.sqlite3")
        bus = MemoryBus(settings.inbound_shards, journal)
        pipeline = Pipeline(engine, bus, settings, AlwaysAnswer())
        run_id = uuid.uuid4().hex[:8]
        replies = Replies(run_id, options.messages)
        stop = asyncio.Event()
        sampler = RssSampler([os.getpid()])
        # One process publishes, runs the pipeline and reads the replies.
        cpu = CpuMeter({"core": lambda: [os.getpid()]})
        async with asyncio.TaskGroup() as group:
            group.create_task(
                bus.consume_inbound(
                    "bench", pipeline.handle, batch_size=settings.batch_size, stop=stop
                )
            )
            group.create_task(
                bus.consume_outbound(
                    Network.TELEGRAM, "bench", replies.handle, batch_size=1000, stop=stop
                )
            )
            group.create_task(sampler.run(stop))
            group.create_task(progress(replies, stop))
            cpu.start()
            started = await offer(bus, options, run_id)
            await replies.done.wait()
            cpu.stop()
            stop.set()
        await bus.close()
        raw = await raw_rows_per_s(engine, options.messages, settings.batch_size)
        await engine.dispose()
        return report(options, replies, started, sampler.peak_bytes, raw, cpu)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def fresh_postgres_database(url: str) -> None:
    base, name = url.replace("postgresql+asyncpg://", "postgresql://").rsplit("/", 1)
    admin = await asyncpg.connect(f"{base}/postgres")
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    await upgrade(url)


@contextlib.contextmanager
def core_processes(
    options: BenchOptions, settings: Settings
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = os.environ | {
        "SB_DATABASE_URL": options.database_url,
        "SB_REDIS_URL": options.redis_url,
        "SB_RESPONDER": "bench.responder:always_answer",
        "SB_LOG_LEVEL": "WARNING",
        "SB_INBOUND_SHARDS": str(settings.inbound_shards),
        "SB_BATCH_SIZE": str(settings.batch_size),
    }
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "supportbridge.cli", "core"],
            env=env | {"SB_HTTP_PORT": str(free_port())},  # each its own /metrics
        )
        for _ in range(options.cores)
    ]
    try:
        yield processes
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


async def run_distributed(settings: Settings, options: BenchOptions) -> dict[str, object]:
    await fresh_postgres_database(options.database_url)
    flush = aioredis.Redis.from_url(options.redis_url)
    await flush.flushdb()
    await flush.aclose()
    bus = RedisBus(options.redis_url, settings.inbound_shards)
    engine = make_engine(options.database_url)
    try:
        with core_processes(options, settings) as processes:
            sampler = RssSampler([p.pid for p in processes])
            cores = [p.pid for p in processes]
            cpu = CpuMeter(with_servers({"core": lambda: cores, "bench": lambda: [os.getpid()]}))
            await warm_up(bus, settings)
            await shards_shared(bus, options.cores)
            run_id = uuid.uuid4().hex[:8]
            replies = Replies(run_id, options.messages)
            stop = asyncio.Event()
            async with asyncio.TaskGroup() as group:
                group.create_task(
                    bus.consume_outbound(
                        Network.TELEGRAM, "bench", replies.handle, batch_size=1000, stop=stop
                    )
                )
                group.create_task(sampler.run(stop))
                group.create_task(progress(replies, stop))
                cpu.start()
                started = await offer(bus, options, run_id)
                await replies.done.wait()
                cpu.stop()
                stop.set()
        raw = await raw_rows_per_s(engine, options.messages, settings.batch_size)
        return report(options, replies, started, sampler.peak_bytes, raw, cpu)
    finally:
        await bus.close()
        await engine.dispose()


async def warm_up(bus: Bus, settings: Settings) -> None:
    """Wait until the core processes answer (connections open, shards leased)."""
    run_id = f"warm{uuid.uuid4().hex[:6]}"
    replies = Replies(run_id, settings.inbound_shards)
    stop = asyncio.Event()
    warm = BenchOptions(
        "warm-up", settings.inbound_shards * 4, settings.inbound_shards * 4, None, 0
    )
    async with asyncio.TaskGroup() as group:
        group.create_task(
            bus.consume_outbound(
                Network.TELEGRAM, "bench", replies.handle, batch_size=1000, stop=stop
            )
        )
        await offer(bus, warm, run_id)
        await asyncio.wait_for(replies.done.wait(), timeout=120)
        stop.set()


async def shards_shared(bus: RedisBus, cores: int) -> None:
    """Measure only once the core processes have shared out the shards evenly."""
    for _ in range(300):
        owners = await bus.shard_owners()
        counts = [owners.count(owner) for owner in set(owners)]
        if None not in owners and len(counts) == cores and max(counts) - min(counts) <= 1:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"core processes did not share the shards: {owners}")


async def run_bench(settings: Settings, options: BenchOptions) -> None:
    runner = run_distributed if options.mode == "distributed" else run_embedded
    result = await runner(settings, options)
    print(json.dumps(result), flush=True)
