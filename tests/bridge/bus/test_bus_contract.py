"""What every bus does, the in-process one of the embedded mode and the Redis Streams one of the
distributed mode alike (bridge/bus/base.py): inbound in order per conversation, outbound per
network and in order per chat, acknowledged only once the handler returned, events to every
subscriber, the backlog, a clean stop.

Redis's own behaviour (shard leases shared by many consumers, reclaiming a dead consumer's
entries, leadership, ...) is in test_bus_redis.py. The Redis runs use the real server, each with
a key prefix of its own; without one they are skipped, or fail when CI=true (see conftest.py).
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Sequence

import orjson
import pytest

from bridge.bus import Bus, BusEntry
from bridge.bus.memory import MemoryBus
from bridge.bus.redis import RedisBus
from bridge.domain import Event, Network
from tests.bus_helpers import conversation_and_seq, message_id, reply, run_until
from tests.factories import inbound

SHARDS = 4


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def new_bus(request: pytest.FixtureRequest) -> Callable[[], Bus]:
    """Makes a bus of the parametrised kind; the Redis ones share this test's key prefix."""
    if request.param == "memory":
        return lambda: MemoryBus(SHARDS)
    url = str(request.getfixturevalue("redis_url"))
    prefix = str(request.getfixturevalue("redis_prefix"))
    return lambda: RedisBus(url, SHARDS, lease_ms=1000, prefix=prefix)


@pytest.fixture
async def bus(new_bus: Callable[[], Bus]) -> AsyncIterator[Bus]:
    bus = new_bus()
    yield bus
    await bus.close()


async def replies_waiting(bus: Bus, network: Network) -> int:
    """Outbound messages of `network` published and not yet acknowledged."""
    if isinstance(bus, MemoryBus):
        return bus.outbound_size(network)
    assert isinstance(bus, RedisBus)
    streams = [f"{bus.prefix}:out:{network.value}:{shard}" for shard in range(SHARDS)]
    return sum([int(await bus.client.xlen(stream)) for stream in streams])


async def test_each_conversations_messages_are_handled_once_each_and_in_order(bus: Bus) -> None:
    conversations, per_conversation = 20, 10
    handled: dict[str, list[int]] = defaultdict(list)
    stop = asyncio.Event()

    async def handle(entries: Sequence[BusEntry]) -> None:
        for entry in entries:
            conversation, seq = conversation_and_seq(entry)
            handled[conversation].append(seq)
        if sum(map(len, handled.values())) >= conversations * per_conversation:
            stop.set()

    consumer = asyncio.ensure_future(bus.consume_inbound("core", handle, batch_size=7, stop=stop))
    for seq in range(per_conversation):  # interleaved, in several publishes
        await bus.publish_inbound([inbound(f"c{c}", seq) for c in range(conversations)])
    await run_until(stop, consumer, limit_s=10)

    assert len(handled) == conversations
    assert all(seqs == list(range(per_conversation)) for seqs in handled.values())


async def test_a_payload_published_raw_is_handed_on_as_it_was(bus: Bus) -> None:
    received: list[bytes] = []
    stop = asyncio.Event()

    async def handle(entries: Sequence[BusEntry]) -> None:
        received.extend(entry.payload for entry in entries)
        stop.set()

    await bus.publish_inbound_raw({1: [b"\xffnot json"]})
    consumer = asyncio.ensure_future(bus.consume_inbound("core", handle, batch_size=10, stop=stop))
    await run_until(stop, consumer, limit_s=5)

    assert received == [b"\xffnot json"]


async def test_a_batch_whose_handler_raises_is_delivered_again(bus: Bus) -> None:
    await bus.publish_inbound([inbound("chat", seq) for seq in range(5)])
    calls: list[list[str]] = []
    stop = asyncio.Event()

    async def fail_once(entries: Sequence[BusEntry]) -> None:
        calls.append([entry.entry_id for entry in entries])
        if len(calls) == 1:
            raise RuntimeError("database went away")
        stop.set()

    consumer = asyncio.ensure_future(bus.consume_inbound("c", fail_once, batch_size=10, stop=stop))
    await run_until(stop, consumer, limit_s=10)

    assert len(calls) == 2 and len(calls[0]) == 5
    assert calls[1] == calls[0], "the same entries, again"
    assert await bus.inbound_backlog() == 0, "acknowledged once the retry succeeded"


async def test_a_batch_of_replies_whose_sender_raises_is_delivered_again(bus: Bus) -> None:
    await bus.publish_outbound([reply(Network.VK, 1, n) for n in range(5)])
    calls: list[list[str]] = []
    stop = asyncio.Event()

    async def fail_once(entries: Sequence[BusEntry]) -> None:
        calls.append([entry.entry_id for entry in entries])
        if len(calls) == 1:
            raise RuntimeError("the network went away")
        stop.set()

    sender = bus.consume_outbound(Network.VK, "s", fail_once, batch_size=10, stop=stop)
    await run_until(stop, asyncio.ensure_future(sender), limit_s=10)

    assert len(calls) == 2 and len(calls[0]) == 5
    assert calls[1] == calls[0], "the same replies, again"
    assert await replies_waiting(bus, Network.VK) == 0, "acknowledged once the retry succeeded"


async def test_entries_stay_unacknowledged_until_their_handler_returns(bus: Bus) -> None:
    await bus.publish_inbound([inbound("chat", seq) for seq in range(3)])
    handling, release = asyncio.Event(), asyncio.Event()
    handled = 0
    stop = asyncio.Event()

    async def slow(entries: Sequence[BusEntry]) -> None:
        nonlocal handled
        handling.set()
        await release.wait()
        handled += len(entries)
        if handled == 3:
            stop.set()

    consumer = asyncio.ensure_future(bus.consume_inbound("c", slow, batch_size=10, stop=stop))
    await asyncio.wait_for(handling.wait(), 5)
    await asyncio.sleep(0.2)
    while_handling = await bus.inbound_backlog()
    release.set()
    await run_until(stop, consumer, limit_s=5)

    assert while_handling == 3
    assert await bus.inbound_backlog() == 0


async def test_the_backlog_counts_what_was_published_and_not_yet_handled(bus: Bus) -> None:
    before = await bus.inbound_backlog()
    await bus.publish_inbound([inbound(f"c{c}", seq) for c in range(3) for seq in range(2)])
    published = await bus.inbound_backlog()
    stop = asyncio.Event()
    handled: list[str] = []

    async def handle(entries: Sequence[BusEntry]) -> None:
        handled.extend(message_id(entry) for entry in entries)
        if len(handled) == 6:
            stop.set()

    consumer = asyncio.ensure_future(bus.consume_inbound("c", handle, batch_size=10, stop=stop))
    await run_until(stop, consumer, limit_s=5)

    assert (before, published, await bus.inbound_backlog()) == (0, 6, 0)


async def test_a_shard_whose_entries_are_not_handled_reports_how_long_they_waited(
    bus: Bus,
) -> None:
    await bus.publish_inbound_raw({2: [b"waiting"]})
    await asyncio.sleep(0.3)

    ages = await bus.shard_ages()

    assert len(ages) == SHARDS
    assert ages[2] >= 0.25
    assert [age for shard, age in enumerate(ages) if shard != 2] == [0.0] * (SHARDS - 1)


async def test_a_shard_whose_entries_are_handled_waits_no_more(bus: Bus) -> None:
    await bus.publish_inbound_raw({1: [b"first"]})
    stop = asyncio.Event()

    async def handled(entries: Sequence[BusEntry]) -> None:
        stop.set()

    consumer = asyncio.ensure_future(bus.consume_inbound("c", handled, batch_size=10, stop=stop))
    await run_until(stop, consumer, limit_s=10)

    assert await bus.shard_ages() == [0.0] * SHARDS


async def test_each_networks_sender_gets_only_that_networks_replies(bus: Bus) -> None:
    await bus.publish_outbound(
        [reply(Network.VK, 1, 1), reply(Network.TELEGRAM, 1, 2), reply(Network.VK, 1, 3)]
    )

    async def drain(network: Network, expected: int) -> list[str]:
        got: list[str] = []
        stop = asyncio.Event()

        async def collect(entries: Sequence[BusEntry]) -> None:
            got.extend(orjson.loads(entry.payload)["idempotency_key"] for entry in entries)
            if len(got) >= expected:
                stop.set()

        sender = bus.consume_outbound(network, "sender", collect, batch_size=10, stop=stop)
        await run_until(stop, asyncio.ensure_future(sender), limit_s=5)
        return got

    vk = await drain(Network.VK, 2)
    telegram_left = await replies_waiting(bus, Network.TELEGRAM)
    telegram = await drain(Network.TELEGRAM, 1)

    assert vk == ["vk-1-1", "vk-1-3"]
    assert telegram_left == 1, "the VK sender left Telegram's reply alone"
    assert telegram == ["telegram-1-2"]


async def test_each_chats_replies_go_out_in_order(bus: Bus) -> None:
    chats, per_chat = 10, 30
    seen: dict[str, list[int]] = defaultdict(list)
    stop = asyncio.Event()

    async def send(entries: Sequence[BusEntry]) -> None:
        for entry in entries:
            message = orjson.loads(entry.payload)
            seen[message["chat_id"]].append(int(message["text"]))
        if sum(map(len, seen.values())) >= chats * per_chat:
            stop.set()

    sender = bus.consume_outbound(Network.TELEGRAM, "s", send, batch_size=5, stop=stop)
    running = asyncio.ensure_future(sender)
    await bus.publish_outbound(
        [reply(Network.TELEGRAM, chat, n) for n in range(per_chat) for chat in range(chats)]
    )
    await run_until(stop, running, limit_s=10)

    assert len(seen) == chats
    assert all(order == list(range(per_chat)) for order in seen.values())


EVENTS = [
    Event(kind="message.created", conversation_id=7, data={"message_id": 1}),
    Event(kind="conversation.state", conversation_id=7, data={"state": "waiting"}),
]


async def test_events_reach_every_subscriber(bus: Bus) -> None:
    received: list[list[Event]] = [[], []]
    ready = [asyncio.Event(), asyncio.Event()]

    async def listen(n: int) -> None:
        async with bus.subscribe_events() as stream:
            ready[n].set()
            async for event in stream:
                received[n].append(event)
                if len(received[n]) == len(EVENTS):
                    return

    listeners = [asyncio.ensure_future(listen(n)) for n in range(2)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in ready)), 5)
    await bus.publish_events(EVENTS)
    await asyncio.wait_for(asyncio.gather(*listeners), 5)

    assert received == [EVENTS, EVENTS]


async def test_an_event_published_while_nobody_listens_is_gone(bus: Bus) -> None:
    first, second = EVENTS
    await bus.publish_events([first])

    async with bus.subscribe_events() as stream:
        await bus.publish_events([second])
        received = await asyncio.wait_for(anext(aiter(stream)), 5)

    assert received == second


async def test_a_batchs_replies_and_events_published_together_reach_senders_and_inboxes(
    bus: Bus,
) -> None:
    replies = [reply(Network.VK, chat, n) for n in range(3) for chat in range(5)]
    received: list[Event] = []
    sent: dict[str, list[int]] = defaultdict(list)
    stop = asyncio.Event()

    async def send(entries: Sequence[BusEntry]) -> None:
        for entry in entries:
            message = orjson.loads(entry.payload)
            sent[message["chat_id"]].append(int(message["text"]))
        if sum(map(len, sent.values())) >= len(replies):
            stop.set()

    async with bus.subscribe_events() as stream:
        await bus.publish(replies, EVENTS)
        async for event in stream:
            received.append(event)
            if len(received) == len(EVENTS):
                break
    sender = bus.consume_outbound(Network.VK, "s", send, batch_size=4, stop=stop)
    await run_until(stop, asyncio.ensure_future(sender), limit_s=5)

    assert received == EVENTS
    assert sent == {str(chat): [0, 1, 2] for chat in range(5)}


async def test_stop_ends_every_consumer_promptly_and_then_the_bus_closes(
    new_bus: Callable[[], Bus],
) -> None:
    bus = new_bus()
    stop = asyncio.Event()

    async def idle(entries: Sequence[BusEntry]) -> None:
        return None

    consumers = [
        asyncio.ensure_future(bus.consume_inbound("c", idle, batch_size=10, stop=stop)),
        asyncio.ensure_future(
            bus.consume_outbound(Network.VK, "s", idle, batch_size=10, stop=stop)
        ),
    ]
    await asyncio.sleep(0.5)  # both are waiting for entries
    stop.set()
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*consumers), 5)
    stopped_in = time.monotonic() - started
    await asyncio.wait_for(bus.close(), 2)

    assert stopped_in < 2, "stop is prompt"
