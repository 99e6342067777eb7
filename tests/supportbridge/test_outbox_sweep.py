"""An agent's reply written while the bus cannot be reached is committed as queued but not
published; it reaches the customer once the bus is back, without anyone pressing "send again",
and once: in the embedded mode's wiring, and in the distributed mode with real processes,
PostgreSQL and a Redis server that is stopped and started again."""

from __future__ import annotations

import asyncio
import time

import pytest
import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.cluster import INBOUND_SHARDS, cluster
from bots.telegram import TelegramChannel
from bridge.backends.local import LocalBackend
from bridge.bus.redis import RedisBus
from bridge.domain import Network
from bridge.inbox.actions import reply_as_agent
from bridge.inbox.agents import add_agent
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.models import conversations
from supportbridge.runtime import run_channel
from tests.bus_helpers import FlakyBus
from tests.network_harness import EmulatedTelegram

CHAT = 501
REPLY = "Your order left this morning"
# what an operator would not choose, so that the test does not wait a minute
QUICK_SWEEP = {"outbox_sweep_seconds": 0.2, "outbox_requeue_after_seconds": 1.0}


async def test_embedded_a_reply_written_while_the_bus_is_unreachable_reaches_the_customer(
    engine: AsyncEngine, settings: Settings
) -> None:
    settings = settings.model_copy(update=QUICK_SWEEP)
    bus = FlakyBus(settings.inbound_shards)
    telegram = EmulatedTelegram()
    await telegram.start(engine)
    telegram.customer(CHAT)
    stop = asyncio.Event()
    pipeline = Pipeline(engine, bus, settings, responder=None)
    # polling, as the embedded mode does without a webhook secret
    channel = TelegramChannel(EmulatedTelegram.TOKEN, api_url=telegram.api_url, poll_timeout_s=1)
    backend = LocalBackend(bus, settings.data_dir)
    running = [
        asyncio.ensure_future(
            bus.consume_inbound("core", pipeline.handle, batch_size=64, stop=stop)
        ),
        asyncio.ensure_future(run_channel(settings, engine, backend, channel, stop)),
    ]
    try:
        telegram.write(CHAT, "where is my order?")
        await telegram.wait_sent(CHAT, 1, within=10)  # the bot's notice: the chat is open
        async with engine.connect() as conn:
            conversation = (await conn.execute(sa.select(conversations.c.id))).scalar_one()
        agent = await add_agent(engine, "vera", "correct horse battery")

        bus.down = True
        with pytest.raises(ConnectionError):
            await reply_as_agent(engine, bus, conversation, agent.id, REPLY)
        bus.down = False

        received = await telegram.wait_sent(CHAT, 2, within=10)
        await asyncio.sleep(3 * settings.outbox_requeue_after_seconds)  # periods to send it again
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*running), 10)
        await telegram.channel.close()
        await telegram.stop()

    assert [sent.text for sent in received[1:]] == [REPLY]
    assert len(telegram.sent(CHAT)) == 2, "sent once"


@pytest.mark.slow
@pytest.mark.postgres
@pytest.mark.redis
async def test_distributed_a_reply_written_while_redis_is_down_reaches_the_customer() -> None:
    quick = {f"SB_{name.upper()}": str(value) for name, value in QUICK_SWEEP.items()}
    async with cluster(cores=1, settings=quick) as running:
        engine = make_engine(running.database_url)
        try:
            async with engine.connect() as conn:
                conversation, chat = (
                    await conn.execute(
                        sa.select(conversations.c.id, conversations.c.chat_id)
                        .where(
                            conversations.c.network == Network.TELEGRAM,
                            sa.not_(conversations.c.public),
                        )
                        .limit(1)
                    )
                ).one()
            agent = await add_agent(engine, "vera", "correct horse battery")
            await asyncio.to_thread(running.redis.stop)
            bus = RedisBus(running.redis.url, INBOUND_SHARDS)
            try:
                with pytest.raises((RedisError, OSError)):
                    await reply_as_agent(engine, bus, conversation, agent.id, REPLY)
            finally:
                await bus.close()
        finally:
            await engine.dispose()
        await asyncio.to_thread(running.redis.start)

        def received() -> list[str]:
            texts = running.networks.delivered().get((Network.TELEGRAM, chat), [])
            return [text for text in texts if text == REPLY]

        deadline = time.monotonic() + 60
        while not received():
            assert time.monotonic() < deadline, f"not delivered\n{running.roles.describe()}"
            await asyncio.sleep(0.2)
        await asyncio.sleep(3.0)  # periods in which it could be sent again

        assert received() == [REPLY], "sent once"
        assert running.roles.crashed() == []
