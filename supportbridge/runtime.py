"""Wiring shared by the roles (`supportbridge.roles`): settings -> engine, bus and rate limiter; one
network's receiving (polling under a lease, or its webhook) and sending."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.backends.poll_position import FilePollPosition, RedisPollPosition
from bridge.bus import Bus
from bridge.bus.memory import MemoryBus
from bridge.channel import InboundSink, Receiver
from bridge.delivery.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from bridge.delivery.sender import Sender
from bridge.domain import InboundMessage
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.util.stopping import pause
from supportbridge.networks import NetworkChannel

log = logging.getLogger(__name__)


def make_bus(settings: Settings) -> Bus:
    if settings.redis_url:
        from bridge.bus.redis import RedisBus

        return RedisBus(
            settings.redis_url,
            settings.inbound_shards,
            lease_ms=settings.shard_lease_ms,
            claim_idle_ms=settings.claim_idle_ms,
            prefix=settings.redis_prefix,
        )
    return MemoryBus(settings.inbound_shards)


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@contextlib.asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, Bus]]:
    engine = make_engine(settings.effective_database_url)
    bus = make_bus(settings)
    try:
        yield engine, bus
    finally:
        await bus.close()
        await engine.dispose()


def stop_on_signals() -> asyncio.Event:
    """SIGTERM / SIGINT finish the batch in flight, then stop (the rest waits on the bus)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


Start = Callable[[Coroutine[Any, Any, None]], None]


@contextlib.asynccontextmanager
async def role_tasks(stop: asyncio.Event) -> AsyncIterator[Start]:
    """A role's loops, run together like a TaskGroup's; when one fails (or the block does), `stop`
    is set so that the others end by themselves and the process exits. Cancelling them is not
    enough: on Python 3.11 a cancellation that arrives as a Redis command completes is lost
    (redis-py wraps each socket write in asyncio.wait_for), and that loop would go on for ever."""

    async def stopping_on_failure(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except BaseException:
            stop.set()
            raise

    try:
        async with asyncio.TaskGroup() as group:

            def start(work: Coroutine[Any, Any, None]) -> None:
                group.create_task(stopping_on_failure(work))

            yield start
    except BaseException:
        stop.set()
        raise


def make_limiter(settings: Settings, bus: Bus) -> RateLimiter:
    if settings.redis_url:
        from bridge.bus.redis import RedisBus

        assert isinstance(bus, RedisBus)
        return RedisRateLimiter(bus.client, settings.redis_prefix)
    return MemoryRateLimiter()


async def run_channel(
    settings: Settings,
    engine: AsyncEngine,
    bus: Bus,
    channel: NetworkChannel,
    limiter: RateLimiter,
    stop: asyncio.Event,
) -> None:
    """One network: receive (polling, unless its webhook is served) and send its outbound."""
    sender = Sender(engine, bus, channel, limiter)
    try:
        async with role_tasks(stop) as start:
            start(
                bus.consume_outbound(
                    channel.network, consumer_name(), sender.handle, batch_size=64, stop=stop
                )
            )
            if channel.webhook_routes(bus.publish_inbound):
                if settings.public_url:
                    start(_register_webhook(channel, settings.public_url, stop))
            else:
                start(poll(channel, bus, stop, settings.data_dir))
    finally:
        await channel.close()


async def poll(channel: Receiver, bus: Bus, stop: asyncio.Event, data_dir: Path) -> None:
    """Long polling by one process only, where several run the same network's role; each
    goes on from where the last one left off."""
    from bridge.bus.redis import RedisBus

    network = channel.network.value
    if not isinstance(bus, RedisBus):
        position = FilePollPosition(data_dir / f"{network}.poll-position")
        await channel.poll(bus.publish_inbound, stop, position)
        return

    shared = RedisPollPosition(bus.client, f"{bus.prefix}:poll-position:{network}")

    async def poll_while_leading(until: asyncio.Event) -> None:
        try:
            await channel.poll(patient_sink(bus.publish_inbound, until), until, shared)
        except (RedisError, OSError) as exc:
            if not until.is_set():
                raise
            # Leadership is lost with the bus down (Redis restarting): the events in hand stay
            # unconfirmed on the network, so whichever process leads next fetches them again.
            log.info("%s polling ended with the bus unreachable: %s", network, exc)

    # `lead` ends the poll (sets its event) on stop, or when another process took over.
    await bus.lead(f"poll:{network}", consumer_name(), poll_while_leading, stop)


def patient_sink(sink: InboundSink, stop: asyncio.Event) -> InboundSink:
    """A sink that waits out an outage of the bus (Redis restarting) instead of failing the
    poll: the network keeps the events until the poller confirms them, so waiting loses
    nothing, and it also holds back fetching more while the bus cannot take them."""

    async def publish(messages: Sequence[InboundMessage]) -> None:
        delay = 0.2
        while True:
            try:
                await sink(messages)
                return
            except (RedisError, OSError) as exc:
                if stop.is_set():
                    raise  # unconfirmed, so the network hands the events out again
                log.warning("inbound bus unavailable (%s); retrying in %.1f s", exc, delay)
                await pause(stop, delay)
                delay = min(delay * 2, 5.0)

    return publish


async def _register_webhook(channel: NetworkChannel, public_url: str, stop: asyncio.Event) -> None:
    """A network that cannot be reached now is tried again later; the rest runs meanwhile."""
    delay = 5.0
    while not stop.is_set():
        try:
            await channel.register_webhook(public_url)
            log.info("%s webhook registered at %s", channel.network.value, public_url)
            return
        except Exception as exc:
            log.warning("%s webhook registration failed: %s", channel.network.value, exc)
        await pause(stop, delay)
        delay = min(delay * 2, 300.0)


def webhook_app(app: web.Application, channels: list[NetworkChannel], bus: Bus) -> None:
    for channel in channels:
        app.router.add_routes(channel.webhook_routes(bus.publish_inbound))
