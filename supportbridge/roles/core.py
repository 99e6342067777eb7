"""`supportbridge core`: a core worker of the distributed mode, and the pipeline it runs."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.pipeline.responder import load_responder
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.kept_files import prune_kept_files
from bridge.web.health import add_health_routes
from bridge.web.server import make_app, serve_http
from supportbridge.runtime import consumer_name, role_tasks, services, stop_on_signals

log = logging.getLogger(__name__)


async def run_core(settings: Settings, engine: AsyncEngine, bus: Bus, stop: asyncio.Event) -> None:
    """The pipeline over this process's inbound shards, and the store's housekeeping."""
    pipeline = Pipeline(engine, bus, settings, load_responder(settings, engine))
    name = consumer_name()
    log.info("core worker %s consuming %d inbound shards", name, settings.inbound_shards)
    async with role_tasks(stop) as start:
        start(bus.consume_inbound(name, pipeline.handle, batch_size=settings.batch_size, stop=stop))
        start(prune_kept_files(engine, settings.kept_files_days, stop))


async def core_main(settings: Settings) -> None:
    """`supportbridge core`: one distributed core worker (start as many as you like), with
    /healthz, /readyz and /metrics on its HTTP port."""
    stop = stop_on_signals(settings)
    async with services(settings) as (engine, backend):
        app = make_app()
        add_health_routes(app, engine, backend.bus, stalled_after_s=settings.stalled_shard_seconds)
        async with role_tasks(stop) as start:
            start(run_core(settings, engine, backend.bus, stop))
            start(serve_http(settings, app, stop))
