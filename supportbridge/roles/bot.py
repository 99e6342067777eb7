"""`supportbridge bot NETWORK`: one network's receiver and sender in the distributed mode."""

from __future__ import annotations

from bridge.domain import Network
from bridge.settings import Settings
from bridge.store.kept_files import StoredFiles
from bridge.web.health import add_health_routes
from bridge.web.server import make_app, serve_http
from supportbridge.networks import make_channel
from supportbridge.runtime import (
    role_tasks,
    run_channel,
    services,
    stop_on_signals,
    webhook_app,
)


async def bot_main(settings: Settings, network: Network) -> None:
    """`supportbridge bot NETWORK`: one network's receiver and senders (start several)."""
    stop = stop_on_signals(settings)
    async with services(settings) as (engine, backend):
        channel = make_channel(network, settings, StoredFiles(engine))
        app = make_app()
        add_health_routes(app, engine, backend.bus, stalled_after_s=settings.stalled_shard_seconds)
        webhook_app(app, [channel], backend)
        async with role_tasks(stop) as start:
            start(run_channel(settings, engine, backend, channel, stop))
            start(serve_http(settings, app, stop))
