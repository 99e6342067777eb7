"""A shard that is not moving (its oldest entry waits on and on, as behind an entry that cannot be
processed) is shown on /readyz and /metrics, without taking the role out of service."""

from __future__ import annotations

import asyncio
import re

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.web.health import add_health_routes


async def test_readyz_and_metrics_name_a_shard_whose_oldest_entry_waits_too_long(
    engine: AsyncEngine, memory_bus: MemoryBus
) -> None:
    app = web.Application()
    add_health_routes(app, engine, memory_bus, stalled_after_s=0.1)
    await memory_bus.publish_inbound_raw({3: [b"nobody handles this shard"]})
    await asyncio.sleep(0.2)

    async with TestClient(TestServer(app)) as client:
        ready = await client.get("/readyz")
        body = await ready.json()
        scraped = await (await client.get("/metrics")).text()

    assert ready.status == 200, "one stuck shard does not take the role out of service"
    assert body["checks"]["shards"].startswith("not moving: 3 (")
    assert re.search(r"^sb_inbound_shards_stalled 1\.0$", scraped, re.MULTILINE)
    assert re.search(r'^sb_inbound_shard_oldest_seconds\{shard="3"\} 0\.[1-9]', scraped, re.M)


async def test_readyz_says_the_shards_move_when_nothing_waits(
    engine: AsyncEngine, memory_bus: MemoryBus
) -> None:
    app = web.Application()
    add_health_routes(app, engine, memory_bus, stalled_after_s=0.1)

    async with TestClient(TestServer(app)) as client:
        body = await (await client.get("/readyz")).json()

    assert body["checks"]["shards"] == "ok"
