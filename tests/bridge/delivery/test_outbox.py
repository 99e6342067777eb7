"""The outbox: a reply committed as queued whose publishing failed (the bus unreachable) is
published again by the sweep, once per period however many processes sweep; a message a sender
holds (sending it, or waiting out a rate limit) is neither published again nor sent by another
sender; one whose sender died is published again when its lease runs out."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.base import BusEntry, encode
from bridge.channel import Delivered, FileLimits, Limit
from bridge.delivery.outbox import SendClaims, requeue_stale, sweep_unsent
from bridge.delivery.ratelimit import MemoryRateLimiter
from bridge.delivery.sender import Sender
from bridge.domain import DeliveryStatus, Direction, Network, OutboundMessage
from bridge.inbox.actions import reply_as_agent
from bridge.inbox.agents import add_agent
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import messages, utcnow
from tests.bus_helpers import FlakyBus
from tests.factories import drain_outbound, entries, inbound

TG = Network.TELEGRAM
CHAT = 501
PERIOD_S = 60.0


class Gated:
    """Telegram as far as these sends go: each send waits until the test opens the gate."""

    network = TG
    file_limits = FileLimits("Telegram", file_bytes=1, photo_bytes=1)

    def __init__(self, *, open_: bool = False) -> None:
        self.sent: list[int] = []
        self.sending = asyncio.Event()
        self.gate = asyncio.Event()
        if open_:
            self.gate.set()

    def limits(self, message: OutboundMessage) -> Sequence[Limit]:
        return [Limit("bot", per_second=1000.0, burst=10)]

    async def send(self, message: OutboundMessage) -> Delivered:
        self.sent.append(message.message_id)
        self.sending.set()
        await self.gate.wait()
        return Delivered(f"m{len(self.sent)}")

    async def fetch_file(self, network_file_id: str) -> bytes:
        raise LookupError(network_file_id)


class HeldLimiter(MemoryRateLimiter):
    """A rate limit the test lifts: every send waits for it until then."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = asyncio.Event()
        self.lifted = asyncio.Event()

    async def acquire(self, limits: Sequence[Limit], stop: asyncio.Event | None = None) -> float:
        self.waiting.set()
        await self.lifted.wait()
        return 0.0


@pytest.fixture
def bus(settings: Settings) -> FlakyBus:
    return FlakyBus(settings.inbound_shards)


@pytest.fixture
async def conversation(engine: AsyncEngine, bus: FlakyBus, settings: Settings) -> int:
    """A customer's conversation, the bot's notice in it already sent."""
    await Pipeline(engine, bus, settings, None).handle(entries(inbound(CHAT, 1)))
    (notice,) = drain_outbound(bus, TG)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(messages)
            .where(messages.c.direction == Direction.OUTBOUND)
            .values(delivery_status=DeliveryStatus.SENT)
        )
    return notice.conversation_id


@pytest.fixture
async def agent(engine: AsyncEngine) -> int:
    return (await add_agent(engine, "vera", "correct horse battery")).id


async def lost_reply(
    engine: AsyncEngine, bus: FlakyBus, conversation: int, agent: int, text: str = "On its way"
) -> int:
    """An agent's reply written while the bus cannot be reached: stored as queued, the action
    failing after the commit; its id."""
    bus.down = True
    try:
        with pytest.raises(ConnectionError):
            await reply_as_agent(engine, bus, conversation, agent, text)
    finally:
        bus.down = False
    async with engine.connect() as conn:
        return int(
            (
                await conn.execute(
                    sa.select(sa.func.max(messages.c.id)).where(messages.c.text == text)
                )
            ).scalar_one()
        )


async def written_ago(engine: AsyncEngine, seconds: float) -> None:
    """As if every reply had been written `seconds` ago."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(messages)
            .where(messages.c.direction == Direction.OUTBOUND)
            .values(created_at=utcnow() - dt.timedelta(seconds=seconds))
        )


async def status_of(engine: AsyncEngine, message_id: int) -> DeliveryStatus:
    async with engine.connect() as conn:
        status = await conn.scalar(
            sa.select(messages.c.delivery_status).where(messages.c.id == message_id)
        )
    return DeliveryStatus(status)


def republished() -> float:
    value = REGISTRY.get_sample_value("sb_outbox_republished_total", {"network": TG.value})
    return value or 0.0


async def test_a_reply_the_bus_did_not_take_is_published_again_a_period_after_it_was_written(
    engine: AsyncEngine, bus: FlakyBus, conversation: int, agent: int
) -> None:
    reply = await lost_reply(engine, bus, conversation, agent)
    before = republished()

    assert await requeue_stale(engine, bus, TG, PERIOD_S) == 0, "it may still be on its way"
    await written_ago(engine, PERIOD_S + 1)
    assert await requeue_stale(engine, bus, TG, PERIOD_S) == 1
    assert [m.message_id for m in drain_outbound(bus, TG)] == [reply]
    assert await requeue_stale(engine, bus, TG, PERIOD_S) == 0, "once a period"
    assert republished() - before == 1


async def test_a_sweep_that_cannot_publish_leaves_the_reply_due_at_its_next_pass(
    engine: AsyncEngine, bus: FlakyBus, conversation: int, agent: int
) -> None:
    reply = await lost_reply(engine, bus, conversation, agent)
    await written_ago(engine, PERIOD_S + 1)

    bus.down = True
    with pytest.raises(ConnectionError):
        await requeue_stale(engine, bus, TG, PERIOD_S)
    bus.down = False

    assert await requeue_stale(engine, bus, TG, PERIOD_S) == 1
    assert [m.message_id for m in drain_outbound(bus, TG)] == [reply]


async def test_two_sweepers_at_once_publish_each_reply_once(
    engine: AsyncEngine, bus: FlakyBus, conversation: int, agent: int
) -> None:
    replies = [await lost_reply(engine, bus, conversation, agent, f"reply {n}") for n in range(20)]
    await written_ago(engine, PERIOD_S + 1)

    counts = await asyncio.gather(
        requeue_stale(engine, bus, TG, PERIOD_S), requeue_stale(engine, bus, TG, PERIOD_S)
    )

    assert sum(counts) == len(replies)
    assert sorted(m.message_id for m in drain_outbound(bus, TG)) == replies


async def test_a_message_being_sent_is_neither_published_again_nor_sent_by_another_sender(
    engine: AsyncEngine, bus: FlakyBus, conversation: int, agent: int
) -> None:
    await reply_as_agent(engine, bus, conversation, agent, "Sent once")
    copy = [BusEntry("1", encode(m)) for m in drain_outbound(bus, TG)]
    network = Gated()
    first = asyncio.ensure_future(Sender(engine, bus, network, MemoryRateLimiter()).handle(copy))
    await network.sending.wait()
    await written_ago(engine, PERIOD_S + 1)  # as if the network took long to answer

    assert await requeue_stale(engine, bus, TG, PERIOD_S) == 0
    await asyncio.wait_for(Sender(engine, bus, network, MemoryRateLimiter()).handle(copy), 5)
    network.gate.set()
    await first

    assert len(network.sent) == 1
    assert await status_of(engine, network.sent[0]) is DeliveryStatus.SENT


async def test_a_message_waiting_out_a_rate_limit_is_not_sent_by_another_sender(
    engine: AsyncEngine, bus: FlakyBus, conversation: int, agent: int
) -> None:
    await reply_as_agent(engine, bus, conversation, agent, "Sent once")
    copy = [BusEntry("1", encode(m)) for m in drain_outbound(bus, TG)]
    network, limit = Gated(open_=True), HeldLimiter()
    first = asyncio.ensure_future(Sender(engine, bus, network, limit).handle(copy))
    await limit.waiting.wait()

    await asyncio.wait_for(Sender(engine, bus, network, MemoryRateLimiter()).handle(copy), 5)
    assert network.sent == [], "the other sender left it to the one holding it"
    limit.lifted.set()
    await first

    assert len(network.sent) == 1


async def test_a_message_whose_sender_died_holding_it_is_published_again_when_its_lease_ends(
    engine: AsyncEngine, bus: FlakyBus, conversation: int, agent: int
) -> None:
    await reply_as_agent(engine, bus, conversation, agent, "Left behind")
    (reply,) = drain_outbound(bus, TG)
    await SendClaims(engine, lease_s=0.3).take([reply.message_id])  # and its process died

    assert await requeue_stale(engine, bus, TG, PERIOD_S) == 0, "held while its lease lasts"
    await asyncio.sleep(0.5)
    assert await requeue_stale(engine, bus, TG, PERIOD_S) == 1, "at once, not a period later"
    assert [m.message_id for m in drain_outbound(bus, TG)] == [reply.message_id]


async def test_the_sweep_stops_at_once_when_asked(engine: AsyncEngine, bus: FlakyBus) -> None:
    stop = asyncio.Event()
    sweeping = asyncio.ensure_future(
        sweep_unsent(engine, bus, TG, stop, every_s=3600, requeue_after_s=PERIOD_S)
    )
    await asyncio.sleep(0.2)

    stop.set()

    await asyncio.wait_for(sweeping, 1)
