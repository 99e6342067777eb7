"""The Redis Streams bus against the real Redis: order, reclaim, retry, sharing, fan-out."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Sequence

import orjson
import pytest
import redis.asyncio as aioredis

from bridge.bus import BusEntry
from bridge.bus.redis import RedisBus
from bridge.domain import AuthorKind, Event, Network, OutboundMessage
from tests.factories import inbound

pytestmark = pytest.mark.redis


def seq_of(entry: BusEntry) -> tuple[str, int]:
    message = orjson.loads(entry.payload)
    return message["chat_id"], int(message["network_message_id"].rsplit("-", 1)[1])


async def run_until(stop: asyncio.Event, *consumers: asyncio.Future[None], limit_s: float) -> None:
    try:
        await asyncio.wait_for(stop.wait(), limit_s)
    finally:
        stop.set()
        await asyncio.gather(*consumers)


async def test_order_within_conversation_kept_with_four_consumers(
    redis_url: str, redis_prefix: str
) -> None:
    buses = [RedisBus(redis_url, 8, lease_ms=1000, prefix=redis_prefix) for _ in range(4)]
    seen: dict[str, list[int]] = defaultdict(list)
    workers: dict[str, int] = defaultdict(int)
    stop = asyncio.Event()
    total = 200 * 20

    def handler_of(name: str):  # type: ignore[no-untyped-def]
        async def handle(entries: Sequence[BusEntry]) -> None:
            workers[name] += len(entries)
            for entry in entries:
                chat, seq = seq_of(entry)
                seen[chat].append(seq)
            await asyncio.sleep(0.005)  # a database round trip, so that consumers overlap
            if sum(map(len, seen.values())) >= total:
                stop.set()

        return handle

    consumers = [
        asyncio.ensure_future(
            bus.consume_inbound(f"c{n}", handler_of(f"c{n}"), batch_size=50, stop=stop)
        )
        for n, bus in enumerate(buses)
    ]
    for seq in range(20):
        await buses[0].publish_inbound([inbound(f"conv{c}", seq) for c in range(200)])
    await run_until(stop, *consumers, limit_s=60)
    for bus in buses:
        await bus.close()

    assert all(seqs == list(range(20)) for seqs in seen.values())
    assert len(seen) == 200
    assert sum(1 for count in workers.values() if count) > 1, "the work was shared"


async def test_entries_of_a_killed_consumer_are_reclaimed_and_nothing_is_lost_or_doubled(
    redis_url: str, redis_prefix: str
) -> None:
    bus = RedisBus(redis_url, 1, lease_ms=500, claim_idle_ms=300, prefix=redis_prefix)
    await bus.publish_inbound([inbound("victim-chat", seq) for seq in range(30)])
    victim = subprocess.Popen(  # noqa: ASYNC220 - a real process, so that kill -9 is real
        [sys.executable, "-m", "tests.helpers.stalling_consumer", redis_url, redis_prefix, "1"]
    )
    client = aioredis.Redis.from_url(redis_url)
    try:
        for _ in range(200):
            if await client.scard(f"{redis_prefix}:handled-by-victim") == 10:
                break
            await asyncio.sleep(0.05)
        handled_by_victim = {
            seq_of(BusEntry("", p))[1]
            for p in await client.smembers(f"{redis_prefix}:handled-by-victim")
        }
    finally:
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()
        await client.aclose()
    assert handled_by_victim == set(range(10)), "the victim processed a batch but never acked it"

    store: dict[int, int] = {}  # the pipeline's dedupe: one row per message id
    order: list[int] = []
    stop = asyncio.Event()

    async def survivor(entries: Sequence[BusEntry]) -> None:
        for entry in entries:
            seq = seq_of(entry)[1]
            order.append(seq)
            store[seq] = store.get(seq, 0) + 1
        if len(order) >= 30:
            stop.set()

    consumer = asyncio.ensure_future(
        bus.consume_inbound("survivor", survivor, batch_size=10, stop=stop)
    )
    await run_until(stop, consumer, limit_s=30)
    backlog = await bus.inbound_backlog()
    await bus.close()

    assert order == list(range(30)), "the reclaimed batch comes first, then the rest, in order"
    assert set(store) == set(range(30)) and set(store.values()) == {1}
    assert backlog == 0


async def test_a_batch_whose_handler_fails_is_delivered_again(
    redis_url: str, redis_prefix: str
) -> None:
    bus = RedisBus(redis_url, 1, lease_ms=1000, prefix=redis_prefix)
    await bus.publish_inbound([inbound("chat", seq) for seq in range(5)])
    calls: list[list[int]] = []
    stop = asyncio.Event()

    async def fail_once(entries: Sequence[BusEntry]) -> None:
        calls.append([seq_of(e)[1] for e in entries])
        if len(calls) == 1:
            raise RuntimeError("database went away")
        stop.set()

    consumer = asyncio.ensure_future(bus.consume_inbound("c", fail_once, batch_size=10, stop=stop))
    await run_until(stop, consumer, limit_s=20)
    backlog = await bus.inbound_backlog()
    await bus.close()

    assert calls == [[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]
    assert backlog == 0


async def test_new_consumer_gets_a_share_of_the_shards(redis_url: str, redis_prefix: str) -> None:
    first = RedisBus(redis_url, 8, lease_ms=600, prefix=redis_prefix)
    second = RedisBus(redis_url, 8, lease_ms=600, prefix=redis_prefix)
    stop = asyncio.Event()

    async def idle(entries: Sequence[BusEntry]) -> None:
        return None

    running = [
        asyncio.ensure_future(first.consume_inbound("first", idle, batch_size=10, stop=stop))
    ]
    await asyncio.sleep(1.0)
    running.append(
        asyncio.ensure_future(second.consume_inbound("second", idle, batch_size=10, stop=stop))
    )
    await asyncio.sleep(3.0)
    owners = [await first.client.get(f"{redis_prefix}:lease:{shard}") for shard in range(8)]
    stop.set()
    await asyncio.gather(*running)
    await first.close()
    await second.close()

    assert owners.count(b"first") == 4 and owners.count(b"second") == 4


async def test_events_reach_every_subscriber(redis_url: str, redis_prefix: str) -> None:
    bus = RedisBus(redis_url, 1, prefix=redis_prefix)
    event = Event(kind="message.created", conversation_id=7, data={"message_id": 1})
    received: list[list[Event]] = [[], []]

    async def listen(n: int, ready: asyncio.Event) -> None:
        async with bus.subscribe_events() as events:
            ready.set()
            async for item in events:
                received[n].append(item)
                return

    ready = [asyncio.Event(), asyncio.Event()]
    listeners = [asyncio.ensure_future(listen(n, ready[n])) for n in range(2)]
    await asyncio.gather(*(r.wait() for r in ready))
    await bus.publish_events([event])
    await asyncio.wait_for(asyncio.gather(*listeners), 5)
    await bus.close()

    assert received == [[event], [event]]


async def test_outbound_stream_per_network(redis_url: str, redis_prefix: str) -> None:
    bus = RedisBus(redis_url, 1, prefix=redis_prefix)

    def reply(network: Network, n: int) -> OutboundMessage:
        return OutboundMessage(
            message_id=n,
            conversation_id=1,
            network=network,
            chat_id="1",
            text="hi",
            idempotency_key=f"{network}-{n}",
            author_kind=AuthorKind.AGENT,
        )

    await bus.publish_outbound(
        [reply(Network.VK, 1), reply(Network.TELEGRAM, 2), reply(Network.VK, 3)]
    )
    got: list[str] = []
    stop = asyncio.Event()

    async def collect(entries: Sequence[BusEntry]) -> None:
        got.extend(orjson.loads(e.payload)["idempotency_key"] for e in entries)
        stop.set()

    consumer = asyncio.ensure_future(
        bus.consume_outbound(Network.VK, "sender", collect, batch_size=10, stop=stop)
    )
    await run_until(stop, consumer, limit_s=10)
    await bus.close()

    assert got == ["vk-1", "vk-3"]
