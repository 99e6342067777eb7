"""The aiohttp application every role serves on its HTTP port, and serving it until stopped.
The inbox, webhooks and health checks are added onto it by the roles that have them."""

from __future__ import annotations

import asyncio

from aiohttp import web

from bridge.settings import Settings
from bridge.web.health import METRICS_TOKEN
from bridge.web.timing import request_timing, server_timing_header

# Larger bodies are refused with 413 before a handler reads them (webhook batches fit well).
MAX_REQUEST_BYTES = 1024 * 1024


async def _plain_server_header(_request: web.Request, response: web.StreamResponse) -> None:
    # aiohttp's default names Python's and its own versions: a map for an attacker, no use else
    response.headers["Server"] = "supportbridge"


def make_app() -> web.Application:
    """The application every role serves on the product's HTTP port."""
    # timing first: the outermost middleware sees every other one's time
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[request_timing])
    app.on_response_prepare.append(_plain_server_header)
    app.on_response_prepare.append(server_timing_header)
    return app


async def serve_http(
    settings: Settings,
    app: web.Application,
    stop: asyncio.Event,
    listening: asyncio.Event | None = None,
) -> None:
    """Serve `app` on the settings' host and port until `stop`, its /readyz and /metrics behind
    the metrics token when one is set (every role serves through here)."""
    if settings.metrics_token is not None:
        app[METRICS_TOKEN] = settings.metrics_token
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.http_host, settings.http_port).start()
    if listening is not None:
        listening.set()
    try:
        await stop.wait()
    finally:
        await runner.cleanup()
