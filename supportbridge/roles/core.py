"""`supportbridge core`: a core worker of the distributed mode, and the pipeline it runs."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.inbox.assignment import assign_forever
from bridge.pipeline.responder import Prepared, load_responder
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.kept_files import prune_kept_files
from bridge.util.stopping import pause
from bridge.web.health import add_health_routes
from bridge.web.server import make_app, serve_http
from supportbridge.runtime import consumer_name, role_tasks, services, stop_on_signals

log = logging.getLogger(__name__)


async def run_core(
    settings: Settings,
    engine: AsyncEngine,
    bus: Bus,
    stop: asyncio.Event,
    started: asyncio.Event | None = None,
) -> None:
    """The pipeline over this process's inbound shards, the store's housekeeping, and giving
    waiting conversations to the teams' agents; `started`
    is set once the responder is prepared (the knowledge base's matcher fitted)."""
    responder = load_responder(settings, engine)
    if isinstance(responder, Prepared):
        await _prepare(responder, stop)
    if started is not None:
        started.set()
    if stop.is_set():
        return
    pipeline = Pipeline(engine, bus, settings, responder)
    name = consumer_name()
    log.info("core worker %s consuming %d inbound shards", name, settings.inbound_shards)
    async with role_tasks(stop) as start:
        start(bus.consume_inbound(name, pipeline.handle, batch_size=settings.batch_size, stop=stop))
        start(prune_kept_files(engine, settings.kept_files_days, stop))
        start(assign_forever(engine, bus, settings, stop))


async def _prepare(responder: Prepared, stop: asyncio.Event) -> None:
    """Until it is done: a store still starting up is waited for, not fatal."""
    delay = 1.0
    while not stop.is_set():
        try:
            await responder.prepare()
            return
        except Exception as exc:
            log.warning("responder not prepared (%s); retrying in %.0f s", exc, delay)
            await pause(stop, delay)
            delay = min(delay * 2, 30.0)


async def core_main(settings: Settings) -> None:
    """`supportbridge core`: one distributed core worker (start as many as you like), with
    /healthz, /readyz and /metrics on its HTTP port."""
    stop = stop_on_signals(settings)
    async with services(settings) as (engine, backend):
        app = make_app()
        started = asyncio.Event()
        add_health_routes(
            app,
            engine,
            backend.bus,
            stalled_after_s=settings.stalled_shard_seconds,
            started=started,
        )
        async with role_tasks(stop) as start:
            start(run_core(settings, engine, backend.bus, stop, started))
            start(serve_http(settings, app, stop))
