"""`SB_METRICS_TOKEN`: /readyz and /metrics answer only requests bearing it, /healthz stays open,
and the health checks of docker-compose.yml and the Dockerfile keep working with it set."""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from bench.ports import free_port
from bridge.bus.memory import MemoryBus
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.web.health import add_health_routes
from bridge.web.server import make_app, serve_http
from tests.conftest import REPO

ROOT = REPO
TOKEN = "metrics-token-0123456789abcdef"


@pytest.fixture
async def port(tmp_path: Path) -> AsyncIterator[int]:
    """A role's HTTP port (health routes only) served with the metrics token set."""
    settings = Settings(data_dir=tmp_path, http_port=free_port(), metrics_token=TOKEN)
    engine = make_engine(f"sqlite+aiosqlite:///{tmp_path}/store.db")
    bus = MemoryBus(1)
    app = make_app()
    add_health_routes(app, engine, bus)
    stop, listening = asyncio.Event(), asyncio.Event()
    serving = asyncio.create_task(serve_http(settings, app, stop, listening))
    await asyncio.wait_for(listening.wait(), 10)
    yield settings.http_port
    stop.set()
    await serving
    await engine.dispose()


async def status(port: int, path: str, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}", headers=headers) as response,
    ):
        return response.status


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Authorization": TOKEN}],
    ids=["none", "wrong", "not bearer"],
)
async def test_readyz_and_metrics_refuse_a_request_without_the_token(
    port: int, path: str, headers: dict[str, str]
) -> None:
    assert await status(port, path, headers) == 401


@pytest.mark.parametrize("path", ["/readyz", "/metrics"])
async def test_readyz_and_metrics_answer_the_token(port: int, path: str) -> None:
    assert await status(port, path, {"Authorization": f"Bearer {TOKEN}"}) == 200


async def test_healthz_stays_open_for_load_balancers(port: int) -> None:
    assert await status(port, "/healthz", {}) == 200


async def run_check(command: list[str], port: int) -> int:
    """A container's health check command, run here against `port` with the token set."""
    assert command[0] == "python"
    argv = [sys.executable, *[part.replace(":8080/", f":{port}/") for part in command[1:]]]
    check = await asyncio.create_subprocess_exec(*argv, env={"SB_METRICS_TOKEN": TOKEN})
    return await asyncio.wait_for(check.wait(), 20)


async def test_the_compose_health_check_passes_with_the_token_set(port: int) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    kind, *command = compose["x-supportbridge"]["healthcheck"]["test"]
    assert kind == "CMD"

    assert await run_check(command, port) == 0


async def test_the_image_health_check_passes_with_the_token_set(port: int) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    found = re.search(r"^HEALTHCHECK .*?CMD (\[.*?\])$", dockerfile, re.MULTILINE | re.DOTALL)
    assert found is not None

    assert await run_check(json.loads(found[1]), port) == 0
