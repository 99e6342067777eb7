"""Wiring: settings -> engine, bus, pipeline; the long-running roles started by the CLI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import AsyncIterator

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.bus.memory import MemoryBus
from bridge.pipeline.responder import load_responder
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.migrate import upgrade
from bridge.web.health import health_app

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


async def run_core(settings: Settings, engine: AsyncEngine, bus: Bus, stop: asyncio.Event) -> None:
    pipeline = Pipeline(engine, bus, settings, load_responder(settings))
    name = consumer_name()
    log.info("core worker %s consuming %d inbound shards", name, settings.inbound_shards)
    await bus.consume_inbound(name, pipeline.handle, batch_size=settings.batch_size, stop=stop)


async def serve_http(settings: Settings, app: web.Application, stop: asyncio.Event) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


async def core_main(settings: Settings) -> None:
    """`supportbridge core`: one distributed core worker (start as many as you like)."""
    stop = stop_on_signals()
    async with services(settings) as (engine, bus):
        await run_core(settings, engine, bus, stop)


async def embedded_main(settings: Settings) -> None:
    """`supportbridge run`: migrations, core and HTTP in one process."""
    await upgrade(settings.effective_database_url)
    stop = stop_on_signals()
    async with services(settings) as (engine, bus):
        app = health_app(engine, bus)
        async with asyncio.TaskGroup() as group:
            group.create_task(run_core(settings, engine, bus, stop))
            group.create_task(serve_http(settings, app, stop))
            print(
                f"supportbridge is running at http://{settings.http_host}:{settings.http_port}/ "
                f"(database: {settings.effective_database_url}); press Ctrl+C to stop",
                flush=True,
            )
