"""The Redis Streams bus against the real Redis, what is Redis's own: many consumers sharing the
shards in order, reclaiming a dead consumer's entries, deleting acknowledged entries, one pub/sub
message per publish, leadership, shared counters. What every bus does is in test_bus_contract.py.

Every test uses its own key prefix (the `redis_prefix` fixture deletes its keys afterwards).
Without a reachable Redis the tests are skipped, or fail when CI=true (see conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import signal
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Sequence

import orjson
import pytest
import redis.asyncio as aioredis

from bridge.backends.poll_position import RedisPollPosition
from bridge.bus import BusEntry
from bridge.bus.base import BatchHandler
from bridge.bus.redis import MAX_CONNECTIONS, RedisBus
from bridge.channel import Limit
from bridge.delivery.ratelimit import RedisRateLimiter
from bridge.domain import Event, Network
from tests.bus_helpers import conversation_and_seq, eventually, message_id, reply, run_until
from tests.conftest import REPO
from tests.factories import inbound

pytestmark = pytest.mark.redis

ROOT = REPO


async def test_order_within_conversation_kept_with_four_consumers(
    redis_url: str, redis_prefix: str
) -> None:
    conversations, per_conversation = 200, 20
    buses = [RedisBus(redis_url, 8, lease_ms=600, prefix=redis_prefix) for _ in range(4)]
    committed: dict[str, list[int]] = defaultdict(list)
    handled_by: Counter[str] = Counter()
    stop = asyncio.Event()

    def handler_of(name: str) -> Callable[[Sequence[BusEntry]], Awaitable[None]]:
        async def handle(entries: Sequence[BusEntry]) -> None:
            # A database round trip of varying length: batches of one shard handled at the
            # same time by two consumers would commit out of order.
            await asyncio.sleep(random.uniform(0, 0.03))
            for entry in entries:
                conversation, seq = conversation_and_seq(entry)
                committed[conversation].append(seq)
            handled_by[name] += len(entries)
            if handled_by.total() >= conversations * per_conversation:
                stop.set()

        return handle

    def start(n: int) -> asyncio.Future[None]:
        return asyncio.ensure_future(
            buses[n].consume_inbound(f"c{n}", handler_of(f"c{n}"), batch_size=10, stop=stop)
        )

    consumers = [start(0)]
    # Interleaved: message `seq` of every conversation, then the next; all at once, so every
    # shard has a backlog. The other consumers start (as processes would) while it is worked
    # off, so shards change hands under load.
    for seq in range(per_conversation):
        await buses[0].publish_inbound([inbound(f"c{c}", seq) for c in range(conversations)])
    for n in (1, 2, 3):
        await asyncio.sleep(0.1)
        consumers.append(start(n))
    await run_until(stop, *consumers, limit_s=20)
    for bus in buses:
        await bus.close()

    assert len(committed) == conversations
    disordered = {c: seqs for c, seqs in committed.items() if seqs != list(range(per_conversation))}
    assert not disordered, "each conversation's messages are committed once each, in order"
    assert sum(1 for count in handled_by.values() if count) > 1, "the work was shared"


async def test_entries_of_a_killed_consumer_are_reclaimed_and_nothing_is_lost_or_doubled(
    redis_url: str, redis_prefix: str
) -> None:
    published = [inbound("victim-chat", seq) for seq in range(30)]
    all_ids = [message.network_message_id for message in published]
    # The claim idle outlasts the lease, so the survivor owns the shard while the victim's batch
    # is not yet claimable: it must wait for it, and read nothing newer meanwhile.
    lease_ms, claim_idle_ms = 500, 1200
    bus = RedisBus(
        redis_url, 1, lease_ms=lease_ms, claim_idle_ms=claim_idle_ms, prefix=redis_prefix
    )
    await bus.publish_inbound(published)
    record = aioredis.Redis.from_url(redis_url, decode_responses=True)
    handled_key = f"{redis_prefix}:handled-by-victim"

    victim = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.helpers.stalling_consumer",
        redis_url,
        redis_prefix,
        "1",
        str(lease_ms),
        str(claim_idle_ms),
        cwd=ROOT,
    )
    try:

        async def victim_handled_its_first_batch() -> bool:
            assert victim.returncode is None, "the victim process died by itself"
            return bool(await record.llen(handled_key) == 10)

        await eventually(victim_handled_its_first_batch, 20, "the victim handles a batch")
    finally:
        os.kill(victim.pid, signal.SIGKILL)  # between handling and acknowledging
        await victim.wait()
    handled_by_victim = [str(item) for item in await record.lrange(handled_key, 0, -1)]
    pending_of_victim = await bus.client.xpending(f"{redis_prefix}:in:0", "core")
    await record.aclose()

    handled_by_survivor: list[str] = []
    stop = asyncio.Event()

    async def survivor(entries: Sequence[BusEntry]) -> None:
        handled_by_survivor.extend(message_id(entry) for entry in entries)
        if len(handled_by_survivor) >= len(all_ids):
            stop.set()

    consumer = asyncio.ensure_future(
        bus.consume_inbound("survivor", survivor, batch_size=10, stop=stop)
    )
    await run_until(stop, consumer, limit_s=15)
    backlog = await bus.inbound_backlog()
    await bus.close()

    assert handled_by_victim == all_ids[:10]
    assert pending_of_victim["pending"] == 10, "the victim died before acknowledging its batch"
    assert handled_by_survivor == all_ids, "the reclaimed batch again, then the rest, in order"
    deliveries = handled_by_victim + handled_by_survivor
    assert set(deliveries) == set(all_ids), "nothing lost"
    assert Counter(deliveries) == Counter(all_ids) + Counter(all_ids[:10]), "at least once"
    stored: set[str] = set()  # the pipeline's dedupe: one row per (network, message id)
    rejected = 0
    for delivered in deliveries:
        if delivered in stored:
            rejected += 1
        stored.add(delivered)
    assert sorted(stored) == sorted(all_ids) and rejected == 10, "stored once each"
    assert backlog == 0


async def test_a_batch_handled_after_a_failed_try_is_deleted_from_its_stream(
    redis_url: str, redis_prefix: str
) -> None:
    bus = RedisBus(redis_url, 1, lease_ms=1000, prefix=redis_prefix)
    await bus.publish_inbound([inbound("chat", seq) for seq in range(5)])
    calls = 0
    stop = asyncio.Event()

    async def fail_once(entries: Sequence[BusEntry]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("database went away")
        stop.set()

    consumer = asyncio.ensure_future(bus.consume_inbound("c", fail_once, batch_size=10, stop=stop))
    await run_until(stop, consumer, limit_s=10)
    left = await bus.client.xlen(f"{redis_prefix}:in:0")
    await bus.close()

    assert calls == 2
    assert left == 0, "acknowledged and deleted after the retry succeeded"


async def test_new_consumer_gets_a_share_of_the_shards(redis_url: str, redis_prefix: str) -> None:
    first = RedisBus(redis_url, 8, lease_ms=600, prefix=redis_prefix)
    second = RedisBus(redis_url, 8, lease_ms=600, prefix=redis_prefix)
    stop = asyncio.Event()

    async def idle(entries: Sequence[BusEntry]) -> None:
        return None

    def owned_by(holders: list[str | None], name: str) -> int:
        return sum(1 for holder in holders if holder == name)

    running = [
        asyncio.ensure_future(first.consume_inbound("first", idle, batch_size=10, stop=stop))
    ]

    async def first_owns_all() -> bool:
        return owned_by(await first.shard_owners(), "first") == 8

    await eventually(first_owns_all, 5, "a lone consumer takes every shard")
    running.append(
        asyncio.ensure_future(second.consume_inbound("second", idle, batch_size=10, stop=stop))
    )

    async def shared_evenly() -> bool:
        holders = await first.shard_owners()
        return owned_by(holders, "first") == owned_by(holders, "second") == 4

    await eventually(shared_evenly, 5, "the newcomer gets half of the shards")
    stop.set()
    started = time.monotonic()
    await asyncio.gather(*running)
    stopped_in = time.monotonic() - started
    holders_after = await first.shard_owners()
    await first.close()
    await second.close()

    assert stopped_in < 2, "stop is prompt"
    assert holders_after == [None] * 8, "leases are released on a clean stop"


async def test_consumer_recreates_its_group_when_the_stream_vanishes(
    redis_url: str, redis_prefix: str
) -> None:
    bus = RedisBus(redis_url, 1, lease_ms=600, claim_idle_ms=300, prefix=redis_prefix)
    handled: list[str] = []
    stop = asyncio.Event()

    async def collect(entries: Sequence[BusEntry]) -> None:
        handled.extend(message_id(entry) for entry in entries)

    consumer = asyncio.ensure_future(bus.consume_inbound("c", collect, batch_size=10, stop=stop))
    await bus.publish_inbound([inbound("chat", 0)])

    async def handled_count_is(count: int) -> bool:
        return len(handled) == count

    await eventually(lambda: handled_count_is(1), 5, "the first message is handled")
    await bus.client.delete(f"{redis_prefix}:in:0")  # as a Redis restarted without its data
    await bus.publish_inbound([inbound("chat", 1)])
    await eventually(lambda: handled_count_is(2), 10, "the message after the loss is handled")
    stop.set()
    await consumer
    await bus.close()

    assert handled == ["chat-0", "chat-1"]


async def test_one_publish_is_one_pub_sub_message_carrying_its_events_as_json(
    redis_url: str, redis_prefix: str
) -> None:
    bus = RedisBus(redis_url, 1, prefix=redis_prefix)
    events = [
        Event(kind="message.created", conversation_id=7, data={"message_id": 1}),
        Event(kind="conversation.state", conversation_id=7, data={"state": "waiting"}),
    ]
    messages = []
    async with contextlib.aclosing(bus.client.pubsub()) as raw:
        await raw.subscribe(f"{redis_prefix}:events")
        await raw.get_message(timeout=None)  # the subscription's confirmation
        await bus.publish_events(events)
        while (message := await raw.get_message(timeout=0.2)) is not None:
            messages.append(message)
    await bus.close()

    assert len(messages) == 1, "one pub/sub message per publish_events call"
    assert orjson.loads(messages[0]["data"]) == [e.model_dump(mode="json") for e in events]


async def test_one_chats_replies_go_out_in_order_with_two_senders(
    redis_url: str, redis_prefix: str
) -> None:
    senders = [RedisBus(redis_url, 4, lease_ms=1000, prefix=redis_prefix) for _ in range(2)]
    replies = [reply(Network.TELEGRAM, chat, n) for n in range(30) for chat in range(10)]
    seen: dict[str, list[int]] = defaultdict(list)
    stop = asyncio.Event()

    def sender(name: str) -> BatchHandler:
        async def send(entries: Sequence[BusEntry]) -> None:
            for entry in entries:
                message = orjson.loads(entry.payload)
                seen[message["chat_id"]].append(int(message["text"]))
            await asyncio.sleep(random.uniform(0, 0.01))  # a network call
            if sum(map(len, seen.values())) >= len(replies):
                stop.set()

        return send

    consumers = [
        asyncio.ensure_future(
            bus.consume_outbound(
                Network.TELEGRAM, f"s{n}", sender(f"s{n}"), batch_size=5, stop=stop
            )
        )
        for n, bus in enumerate(senders)
    ]
    await senders[0].publish_outbound(replies)
    await run_until(stop, *consumers, limit_s=20)
    for bus in senders:
        await bus.close()

    assert all(order == list(range(30)) for order in seen.values())
    assert len(seen) == 10


async def test_only_one_process_leads_a_role_and_another_takes_over(
    redis_url: str, redis_prefix: str
) -> None:
    buses = [RedisBus(redis_url, 1, lease_ms=600, prefix=redis_prefix) for _ in range(2)]
    stops = [asyncio.Event(), asyncio.Event()]
    running: list[str] = []
    overlaps: list[list[str]] = []
    leaders: list[str] = []

    def work(name: str) -> Callable[[asyncio.Event], Awaitable[None]]:
        async def poll(until: asyncio.Event) -> None:
            running.append(name)
            leaders.append(name)
            if len(running) > 1:
                overlaps.append(list(running))
            await until.wait()
            running.remove(name)

        return poll

    leads = [
        asyncio.ensure_future(bus.lead("poll:telegram", f"p{n}", work(f"p{n}"), stops[n]))
        for n, bus in enumerate(buses)
    ]
    await asyncio.sleep(1.0)
    first = leaders[0]
    stops[int(first[1])].set()  # the leader's process stops
    await asyncio.sleep(1.5)
    for stop in stops:
        stop.set()
    await asyncio.gather(*leads)
    for bus in buses:
        await bus.close()

    assert overlaps == []
    assert leaders[:2] == [first, "p1" if first == "p0" else "p0"]


async def test_a_poll_position_saved_by_one_process_is_read_by_the_next(
    redis_url: str, redis_prefix: str
) -> None:
    key = f"{redis_prefix}:poll-position:vk"
    first, second = (aioredis.Redis.from_url(redis_url) for _ in range(2))
    try:
        assert await RedisPollPosition(first, key).load() is None
        await RedisPollPosition(first, key).save("1042")

        assert await RedisPollPosition(second, key).load() == "1042"
    finally:
        await first.aclose()
        await second.aclose()


async def test_more_commands_in_flight_than_connections_wait_for_one_instead_of_failing(
    redis_url: str, redis_prefix: str
) -> None:
    bus = RedisBus(redis_url, 1, prefix=redis_prefix)
    limiter = RedisRateLimiter(bus.client, redis_prefix)
    chats = [[Limit(f"telegram:1:chat:{n}", 1.0)] for n in range(3 * MAX_CONNECTIONS)]
    try:
        waits = await asyncio.gather(*(limiter.acquire(limits) for limits in chats))
    finally:
        await bus.close()

    assert waits == [0.0] * len(chats)
