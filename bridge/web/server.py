"""The aiohttp application every role serves on its HTTP port, and serving it until stopped.
The inbox, webhooks and health checks are added onto it by the roles that have them."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bridge.settings import Settings

# Larger bodies are refused with 413 before a handler reads them (webhook batches fit well).
MAX_REQUEST_BYTES = 1024 * 1024


def make_app() -> web.Application:
    """The application every role serves on the product's HTTP port."""
    return web.Application(client_max_size=MAX_REQUEST_BYTES)


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
