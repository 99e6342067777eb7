"""A sender asked to stop starts no new send: it neither waits on a network's rate limit nor for a
retry, and hands its batch back with what it did not send still queued (the process exits in
time, and the next sender sends the rest, once)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.base import BusEntry, encode
from bridge.bus.memory import MemoryBus
from bridge.delivery.ratelimit import MemoryRateLimiter
from bridge.delivery.sender import Sender, Stopped
from bridge.domain import DeliveryStatus, Network
from bridge.inbox.actions import reply_as_agent
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import agents, messages
from tests.factories import drain_outbound, entries, inbound
from tests.network_harness import EmulatedTelegram

CHAT = 501


@pytest.fixture
async def telegram(engine: AsyncEngine) -> AsyncIterator[EmulatedTelegram]:
    network = EmulatedTelegram()
    await network.start(engine)
    network.customer(CHAT)
    network.write(CHAT, "hello")  # the chat with the bot exists once the customer wrote
    yield network
    await network.channel.close()
    await network.stop()


async def test_a_stopped_sender_hands_back_its_batch_without_waiting_on_the_rate_limit(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings, telegram: EmulatedTelegram
) -> None:
    await Pipeline(engine, memory_bus, settings, None).handle(entries(inbound(CHAT, 1)))
    async with engine.begin() as conn:
        agent = (
            await conn.execute(
                sa.insert(agents).values(login="a", display_name="A").returning(agents.c.id)
            )
        ).scalar_one()
    notice = drain_outbound(memory_bus, Network.TELEGRAM)
    replies = [
        await reply_as_agent(engine, memory_bus, notice[0].conversation_id, agent, f"reply {n}")
        for n in range(3)
    ]
    batch = [BusEntry(str(n), encode(m)) for n, m in enumerate([*notice, *replies])]
    stop = asyncio.Event()
    sender = Sender(engine, memory_bus, telegram.channel, MemoryRateLimiter(), stop=stop)

    sending = asyncio.ensure_future(sender.handle(batch))
    await telegram.wait_sent(CHAT, 1)
    stop.set()
    started = time.monotonic()
    with pytest.raises(Stopped):
        await sending
    handed_back_in = time.monotonic() - started

    async with engine.connect() as conn:
        statuses = (
            (
                await conn.execute(
                    sa.select(messages.c.delivery_status).where(messages.c.direction == "outbound")
                )
            )
            .scalars()
            .all()
        )
    assert handed_back_in < 0.5, "no wait on the chat's one-a-second limit"
    assert len(telegram.sent(CHAT)) == statuses.count(DeliveryStatus.SENT) < 4
    assert statuses.count(DeliveryStatus.QUEUED) == 4 - len(telegram.sent(CHAT))
