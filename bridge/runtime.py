"""Wiring: settings -> engine, bus, pipeline; the long-running roles started by the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from aiohttp import web
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.registry import NetworkChannel, configured_networks, make_channel, make_webchat
from bots.webchat import WebChatChannel
from bridge.agents import ensure_first_admin
from bridge.bus import Bus
from bridge.bus.memory import MemoryBus
from bridge.channel import InboundSink, Receiver
from bridge.delivery.ratelimit import MemoryRateLimiter, RateLimiter, RedisRateLimiter
from bridge.delivery.sender import Sender
from bridge.domain import InboundMessage, Network
from bridge.knowledge import seed_articles
from bridge.pipeline.responder import load_responder
from bridge.pipeline.worker import Pipeline
from bridge.poll_position import FilePollPosition, RedisPollPosition
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.migrate import upgrade
from bridge.web.app import add_inbox, make_app
from bridge.web.health import add_health_routes

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]


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


async def run_core(settings: Settings, engine: AsyncEngine, bus: Bus, stop: asyncio.Event) -> None:
    pipeline = Pipeline(engine, bus, settings, load_responder(settings, engine))
    name = consumer_name()
    log.info("core worker %s consuming %d inbound shards", name, settings.inbound_shards)
    await bus.consume_inbound(name, pipeline.handle, batch_size=settings.batch_size, stop=stop)


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
        async with asyncio.TaskGroup() as group:
            group.create_task(
                bus.consume_outbound(
                    channel.network, consumer_name(), sender.handle, batch_size=64, stop=stop
                )
            )
            if channel.webhook_routes(bus.publish_inbound):
                if settings.public_url:
                    group.create_task(_register_webhook(channel, settings.public_url, stop))
            else:
                group.create_task(poll(channel, bus, stop, settings.data_dir))
    finally:
        await channel.close()


async def run_webchat(
    settings: Settings,
    engine: AsyncEngine,
    bus: Bus,
    channel: WebChatChannel,
    limiter: RateLimiter,
    stop: asyncio.Event,
) -> None:
    """The web chat's sender, and the relay of frames to the sockets this process holds."""
    async with asyncio.TaskGroup() as group:
        group.create_task(run_channel(settings, engine, bus, channel, limiter, stop))
        group.create_task(channel.relay(stop))


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
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)
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
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
        delay = min(delay * 2, 300.0)


def webhook_app(app: web.Application, channels: list[NetworkChannel], bus: Bus) -> None:
    for channel in channels:
        app.router.add_routes(channel.webhook_routes(bus.publish_inbound))


async def serve_http(
    settings: Settings,
    app: web.Application,
    stop: asyncio.Event,
    listening: asyncio.Event | None = None,
) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    if listening is not None:
        listening.set()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def core_main(settings: Settings) -> None:
    """`supportbridge core`: one distributed core worker (start as many as you like), with
    /healthz, /readyz and /metrics on its HTTP port."""
    stop = stop_on_signals()
    async with services(settings) as (engine, bus):
        app = make_app()
        add_health_routes(app, engine, bus)
        async with asyncio.TaskGroup() as group:
            group.create_task(run_core(settings, engine, bus, stop))
            group.create_task(serve_http(settings, app, stop))


async def bot_main(settings: Settings, network: Network) -> None:
    """`supportbridge bot NETWORK`: one network's receiver and senders (start several)."""
    stop = stop_on_signals()
    async with services(settings) as (engine, bus):
        channel = make_channel(network, settings)
        app = make_app()
        add_health_routes(app, engine, bus)
        webhook_app(app, [channel], bus)
        async with asyncio.TaskGroup() as group:
            group.create_task(
                run_channel(settings, engine, bus, channel, make_limiter(settings, bus), stop)
            )
            group.create_task(serve_http(settings, app, stop))


async def _seed_knowledge_base(settings: Settings) -> None:
    """A new installation answers from the sample knowledge base until its own is imported."""
    seed = settings.kb_seed
    if not settings.responder or seed is None:
        return
    if not seed.is_absolute() and not seed.is_file():
        seed = PROJECT_ROOT / seed  # started elsewhere than the checkout: its own sample
    if not seed.is_file():
        log.info("no knowledge base to start from: %s is not a file", seed)
        return
    engine = make_engine(settings.effective_database_url)
    try:
        count = await seed_articles(engine, seed)
    finally:
        await engine.dispose()
    if count:
        print(f"knowledge base: imported {count} articles from {seed}", flush=True)


def _sign_in_hint(first_password: str | None) -> str:
    if first_password is not None:
        return (
            f"sign in as admin with the password {first_password} (shown once; change it "
            "with `supportbridge user password admin`)"
        )
    return "sign in with your login (`supportbridge user add LOGIN --admin` creates one)"


async def web_main(settings: Settings) -> None:
    """`supportbridge web`: the inbox, its API and the web chat (start several behind a load
    balancer; the webhooks are served by the `bot` processes). The web chat's replies are sent
    by these processes, which share its outbound shards; each reply reaches the visitor's
    socket through Redis, whichever of them holds it."""
    stop = stop_on_signals()
    async with services(settings) as (engine, bus):
        app = make_app()
        add_health_routes(app, engine, bus)
        webchat = await make_webchat(settings, engine, bus)
        webhook_app(app, [webchat], bus)
        add_inbox(app, engine, bus, settings)
        async with asyncio.TaskGroup() as group:
            group.create_task(serve_http(settings, app, stop))
            group.create_task(
                run_webchat(settings, engine, bus, webchat, make_limiter(settings, bus), stop)
            )


async def embedded_main(settings: Settings, *, sandbox: bool = False) -> None:
    """`supportbridge run`: migrations, core, every configured network, the web chat and HTTP
    in one process; with `sandbox`, the networks without a token run against emulators on the
    same port."""
    await upgrade(settings.effective_database_url)
    await _seed_knowledge_base(settings)
    app = make_app()
    playground = None
    if sandbox:
        from bots.sandbox.app import mount_sandbox, sandbox_settings

        playground = mount_sandbox(app, settings)
        settings = sandbox_settings(settings)
    stop = stop_on_signals()
    async with services(settings) as (engine, bus):
        channels = [make_channel(n, settings) for n in configured_networks(settings)]
        webchat = await make_webchat(settings, engine, bus)
        add_health_routes(app, engine, bus)
        webhook_app(app, [*channels, webchat], bus)
        add_inbox(app, engine, bus, settings)
        first_password = await ensure_first_admin(engine)
        limiter = make_limiter(settings, bus)
        async with asyncio.TaskGroup() as group:
            # The port first: in the sandbox the channels poll emulators served on it.
            listening = asyncio.Event()
            group.create_task(serve_http(settings, app, stop, listening))
            group.create_task(run_core(settings, engine, bus, stop))
            await listening.wait()  # what is printed next can be opened at once
            for channel in channels:
                group.create_task(run_channel(settings, engine, bus, channel, limiter, stop))
            group.create_task(run_webchat(settings, engine, bus, webchat, limiter, stop))
            base = f"http://{settings.http_host}:{settings.http_port}"
            if playground is not None:
                await playground.start(base)
            print(
                f"supportbridge is running at {base}/ "
                f"(database: {settings.effective_database_url}); press Ctrl+C to stop",
                flush=True,
            )
            print(
                f'web chat: put <script src="{base}/widget.js" async></script> on a page',
                flush=True,
            )
            if playground is not None:
                print(f"sandbox: play a customer at {base}/sandbox/", flush=True)
            print(f"inbox: open {base}/ and {_sign_in_hint(first_password)}", flush=True)
