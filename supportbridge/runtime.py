"""Wiring shared by the roles (`supportbridge.roles`): settings -> engine and backend; one
network's receiving (polling under a lease, or its webhook) and sending."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.backends import Backend
from bridge.backends.local import LocalBackend
from bridge.bus.journal import InboundJournal
from bridge.bus.memory import MemoryBus
from bridge.channel import InboundSink, Receiver
from bridge.delivery.outbox import sweep_unsent
from bridge.delivery.sender import Sender, requeue_unsent
from bridge.domain import InboundMessage, Unreadable
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.util.stopping import pause
from supportbridge.networks import NetworkChannel

log = logging.getLogger(__name__)

INBOUND_JOURNAL = "inbound-queue.sqlite3"


def make_backend(settings: Settings) -> Backend:
    """The one choice between one process and many: Redis when it is configured."""
    if settings.redis_url:
        from bridge.backends.redis import RedisBackend
        from bridge.bus.redis import RedisBus

        bus = RedisBus(
            settings.redis_url,
            settings.inbound_shards,
            lease_ms=settings.shard_lease_ms,
            claim_idle_ms=settings.claim_idle_ms,
            prefix=settings.redis_prefix,
        )
        return RedisBackend(bus)
    journal = InboundJournal(settings.data_dir / INBOUND_JOURNAL)
    return LocalBackend(MemoryBus(settings.inbound_shards, journal), settings.data_dir)


def consumer_name() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@contextlib.asynccontextmanager
async def services(settings: Settings) -> AsyncIterator[tuple[AsyncEngine, Backend]]:
    engine = make_engine(settings.effective_database_url)
    backend = make_backend(settings)
    try:
        yield engine, backend
    finally:
        await backend.close()
        await engine.dispose()


def stop_on_signals(settings: Settings) -> asyncio.Event:
    """SIGTERM / SIGINT: every loop ends its step in flight, then the process exits, within
    `stop_timeout_seconds`; a process still running then names what held it, and exits anyway
    (everything it acknowledged is durable, what it took stays queued)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stopping() -> None:
        if not stop.is_set():
            stop.set()
            loop.call_later(settings.stop_timeout_seconds, _overdue, settings.stop_timeout_seconds)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping)
    return stop


def _overdue(seconds: float) -> None:
    held = "\n".join(" <- ".join(_awaiting(task)) for task in asyncio.all_tasks())
    log.error("not stopped within %.0f s; exiting. Still running:\n%s", seconds, held)
    logging.shutdown()
    os._exit(1)


def _awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Where a task waits, innermost last: each coroutine of the chain it awaits."""
    chain: list[str] = []
    awaited: Any = task.get_coro()
    while awaited is not None and hasattr(awaited, "cr_frame"):
        frame = awaited.cr_frame
        if frame is not None:
            chain.append(
                f"{frame.f_code.co_qualname} ({frame.f_code.co_filename}:{frame.f_lineno})"
            )
        awaited = awaited.cr_await
    return chain


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


async def run_channel(
    settings: Settings,
    engine: AsyncEngine,
    backend: Backend,
    channel: NetworkChannel,
    stop: asyncio.Event,
) -> None:
    """One network: receive (polling, unless its webhook is served) and send its outbound,
    publishing again what was queued but lost on the way to the senders (the outbox sweep)."""
    bus = backend.bus
    sender = Sender(engine, bus, channel, backend.rate_limiter(), stop=stop)
    if not bus.keeps_outbound:
        await requeue_unsent(engine, bus, channel.network)
    try:
        async with role_tasks(stop) as start:
            start(
                bus.consume_outbound(
                    channel.network, consumer_name(), sender.handle, batch_size=64, stop=stop
                )
            )
            start(
                sweep_unsent(
                    engine,
                    bus,
                    channel.network,
                    stop,
                    every_s=settings.outbox_sweep_seconds,
                    requeue_after_s=settings.outbox_requeue_after_seconds,
                )
            )
            if channel.webhook_routes(bus.publish_inbound):
                if settings.public_url:
                    start(_register_webhook(channel, settings.public_url, stop))
            else:
                start(poll(channel, backend, stop))
    finally:
        await channel.close()


async def poll(channel: Receiver, backend: Backend, stop: asyncio.Event) -> None:
    """Long polling by one process only, where several run the same network's role; each
    goes on from where the last one left off."""
    network = channel.network
    position = backend.poll_position(network)
    sink = backend.bus.publish_inbound

    async def poll_while_leading(until: asyncio.Event) -> None:
        try:
            await channel.poll(patient_sink(sink, until), until, position)
        except (RedisError, OSError) as exc:
            if not until.is_set():
                raise
            # Leadership is lost with the bus down (Redis restarting): the events in hand stay
            # unconfirmed on the network, so whichever process leads next fetches them again.
            log.info("%s polling ended with the bus unreachable: %s", network.value, exc)

    # `lead` ends the poll (sets its event) on stop, or when another process took over.
    await backend.lead(f"poll:{network.value}", consumer_name(), poll_while_leading, stop)


def patient_sink(sink: InboundSink, stop: asyncio.Event) -> InboundSink:
    """A sink that waits out an outage of the bus (Redis restarting) instead of failing the
    poll: the network keeps the events until the poller confirms them, so waiting loses
    nothing, and it also holds back fetching more while the bus cannot take them."""

    async def publish(messages: Sequence[InboundMessage | Unreadable]) -> None:
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


def webhook_app(app: web.Application, channels: list[NetworkChannel], backend: Backend) -> None:
    for channel in channels:
        app.router.add_routes(channel.webhook_routes(backend.bus.publish_inbound))
