"""`/healthz` (the process is up), `/readyz` (it can reach its database and bus) and `/metrics`
(Prometheus), on every role's HTTP port. With `SB_METRICS_TOKEN` set, `/readyz` and `/metrics`
answer only requests bearing it; `/healthz` stays open for load balancers."""

from __future__ import annotations

import asyncio
import hmac
import logging

import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.util.metrics import SHARD_AGE, SHARDS_STALLED, STREAM_LAG, exposition

log = logging.getLogger(__name__)

ENGINE = web.AppKey("engine", AsyncEngine)
BUS = web.AppKey("bus", Bus)
METRICS_TOKEN = web.AppKey("metrics_token", str)
STALLED_AFTER_S = web.AppKey("stalled_after_s", float)
STARTED = web.AppKey("started", asyncio.Event)


def _check_token(request: web.Request) -> None:
    token = request.app.get(METRICS_TOKEN)
    if token is None:
        return
    given = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(given, f"Bearer {token}".encode()):
        raise web.HTTPUnauthorized(
            text="this needs the metrics token: Authorization: Bearer <SB_METRICS_TOKEN>",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )


async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    _check_token(request)
    checks: dict[str, str] = {}
    try:
        async with request.app[ENGINE].connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"error: {exc.__class__.__name__}"
    try:
        checks["inbound_backlog"] = str(await request.app[BUS].inbound_backlog())
        checks["shards"] = _shards_moving(await _stalled(request.app))
        checks["bus"] = "ok"
    except Exception as exc:
        checks["bus"] = f"error: {exc.__class__.__name__}"
    started = request.app[STARTED].is_set()
    checks["startup"] = "done" if started else "starting"
    ready = started and checks["database"] == "ok" and checks["bus"] == "ok"
    return web.json_response(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status=200 if ready else 503,
    )


async def metrics(request: web.Request) -> web.Response:
    _check_token(request)
    try:
        STREAM_LAG.set(await request.app[BUS].inbound_backlog())
        SHARDS_STALLED.set(len(await _stalled(request.app)))
    except Exception as exc:  # the bus is down: /readyz says so; the rest is worth reading
        log.debug("stream lag unknown: %s", exc)
    body, content_type = exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


async def _stalled(app: web.Application) -> dict[int, float]:
    """The shards not moving: their oldest entry has waited longer than the setting allows."""
    ages = await app[BUS].shard_ages()
    for shard, age in enumerate(ages):
        SHARD_AGE.labels(str(shard)).set(age)
    return {shard: age for shard, age in enumerate(ages) if age > app[STALLED_AFTER_S]}


def _shards_moving(stalled: dict[int, float]) -> str:
    # Shown, not failing readiness: every role would then be taken out for one stuck shard.
    if not stalled:
        return "ok"
    named = ", ".join(f"{shard} ({age:.0f} s)" for shard, age in sorted(stalled.items()))
    return f"not moving: {named}"


def add_health_routes(
    app: web.Application,
    engine: AsyncEngine,
    bus: Bus,
    *,
    stalled_after_s: float = 120.0,
    started: asyncio.Event | None = None,
) -> None:
    """`stalled_after_s`: a shard whose oldest entry waited longer is reported as not moving;
    `started`: /readyz answers ready only once it is set (default: at once)."""
    if started is None:
        started = asyncio.Event()
        started.set()
    app[ENGINE] = engine
    app[BUS] = bus
    app[STALLED_AFTER_S] = stalled_after_s
    app[STARTED] = started
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
