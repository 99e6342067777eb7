"""`/healthz` (the process is up), `/readyz` (it can reach its database and bus) and `/metrics`
(Prometheus), on every role's HTTP port."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.util.metrics import STREAM_LAG, exposition

log = logging.getLogger(__name__)

ENGINE = web.AppKey("engine", AsyncEngine)
BUS = web.AppKey("bus", Bus)


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    checks: dict[str, str] = {}
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        checks["inbound_backlog"] = str(await request.app[BUS].inbound_backlog())
        checks["bus"] = "ok"
    except Exception as exc:
        checks["bus"] = f"error: {exc.__class__.__name__}"
    ready = checks["database"] == "ok" and checks["bus"] == "ok"
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


async def metrics(request: web.Request) -> web.Response:
    try:
        STREAM_LAG.set(await request.app[BUS].inbound_backlog())
    except Exception as exc:  # the bus is down: /readyz says so; the rest is worth reading
        log.debug("stream lag unknown: %s", exc)
    body, content_type = exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


def add_health_routes(app: web.Application, engine: AsyncEngine, bus: Bus) -> None:
    app[ENGINE] = engine
    app[BUS] = bus
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
