"""Prometheus metrics at /metrics: what the pipeline did is counted."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.web.health import add_health_routes
from tests.factories import ScriptedResponder, entries, inbound


def value(text: str, sample: str) -> float:
    found = re.search(rf"^{re.escape(sample)} (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else 0.0


async def scrape(engine: AsyncEngine, bus: MemoryBus) -> str:
    app = web.Application()
    add_health_routes(app, engine, bus)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        assert response.status == 200
        return await response.text()


async def test_the_pipeline_counts_messages_answers_handoffs_and_latency(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    before = await scrape(engine, memory_bus)
    responder = ScriptedResponder(lambda text: 0.97 if text == "тариф?" else 0.1)
    pipeline = Pipeline(engine, memory_bus, settings, responder)

    await pipeline.handle(entries(inbound(1, 1, "тариф?"), inbound(2, 1, "?!"), b"not json"))

    after = await scrape(engine, memory_bus)
    for sample, grew in [
        ('sb_inbound_messages_total{network="telegram"}', 2),
        ('sb_auto_answers_total{network="telegram"}', 1),
        ('sb_handoffs_total{reason="low_confidence"}', 1),
        ("sb_dead_letters_total", 1),
        ("sb_pipeline_latency_seconds_count", 2),
    ]:
        assert value(after, sample) - value(before, sample) == grew, sample
    assert value(after, "sb_inbound_stream_lag") == 0
