"""`supportbridge web`: the inbox, its API and the web chat in the distributed mode."""

from __future__ import annotations

import asyncio

from sqlalchemy.ext.asyncio import AsyncEngine

from bots.webchat import WebChatChannel
from bridge.backends import Backend
from bridge.settings import Settings
from bridge.store.customer_history import customer_history
from bridge.store.kept_files import StoredFiles
from bridge.web.app import add_inbox
from bridge.web.health import add_health_routes
from bridge.web.server import make_app, serve_http
from supportbridge.networks import configured_networks, make_channel, make_webchat
from supportbridge.runtime import (
    role_tasks,
    run_channel,
    services,
    stop_on_signals,
    webhook_app,
)


async def run_webchat(
    settings: Settings,
    engine: AsyncEngine,
    backend: Backend,
    channel: WebChatChannel,
    stop: asyncio.Event,
) -> None:
    """The web chat's sender, and the relay of frames to the sockets this process holds."""
    async with role_tasks(stop) as start:
        start(run_channel(settings, engine, backend, channel, stop))
        start(channel.relay(stop))


async def web_main(settings: Settings) -> None:
    """`supportbridge web`: the inbox, its API and the web chat (start several behind a load
    balancer; the webhooks are served by the `bot` processes). The web chat's replies are sent
    by these processes, which share its outbound shards; each reply reaches the visitor's
    socket through Redis, whichever of them holds it."""
    stop = stop_on_signals(settings)
    async with services(settings) as (engine, backend):
        kept = StoredFiles(engine)
        app = make_app()
        add_health_routes(app, engine, backend.bus, stalled_after_s=settings.stalled_shard_seconds)
        webchat = await make_webchat(settings, backend, customer_history(engine), kept)
        webhook_app(app, [webchat], backend)
        # Only to fetch the files customers sent when an agent opens one: the `bot` processes
        # receive and send.
        networks = [make_channel(n, settings, kept) for n in configured_networks(settings)]
        files = {c.network: c.fetch_file for c in [*networks, webchat]}
        limits = {c.network: c.file_limits for c in [*networks, webchat]}
        add_inbox(app, engine, backend.bus, settings, files, limits)
        try:
            async with role_tasks(stop) as start:
                start(serve_http(settings, app, stop))
                start(run_webchat(settings, engine, backend, webchat, stop))
        finally:
            for channel in networks:
                await channel.close()
