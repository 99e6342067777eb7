"""How long the product's port took to answer: a Server-Timing header on each answer, and a
histogram per route in /metrics that an operator can watch while messages flow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import REGISTRY

from bridge.web.server import make_app
from bridge.web.timing import UNMATCHED, server_time_ms

Client = TestClient[web.Request, web.Application]
SLOW_S = 0.05


async def slow(_request: web.Request) -> web.Response:
    await asyncio.sleep(SLOW_S)
    return web.Response(text="done")


async def refused(_request: web.Request) -> web.Response:
    raise web.HTTPForbidden()


async def live(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for _ in socket:
        pass
    return socket


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    app = make_app()
    app.router.add_get("/slow/{id}", slow)
    app.router.add_get("/refused", refused)
    app.router.add_get("/live", live)
    async with TestClient(TestServer(app)) as client:
        yield client


def count(method: str, route: str) -> float:
    found = REGISTRY.get_sample_value(
        "sb_http_request_duration_seconds_count", {"method": method, "route": route}
    )
    return found or 0.0


async def test_an_answer_says_how_long_the_server_took_in_its_server_timing_header(
    client: Client,
) -> None:
    response = await client.get("/slow/1")

    took = server_time_ms(response.headers)
    assert took is not None
    assert took >= SLOW_S * 1000


async def test_requests_are_counted_under_their_route_not_their_path(client: Client) -> None:
    before = count("GET", "/slow/{id}")

    await client.get("/slow/1")
    await client.get("/slow/2")

    assert count("GET", "/slow/{id}") == before + 2


async def test_a_refusal_is_timed_too(client: Client) -> None:
    before = count("GET", "/refused")

    response = await client.get("/refused")

    assert response.status == 403
    assert server_time_ms(response.headers) is not None
    assert count("GET", "/refused") == before + 1


async def test_paths_no_route_has_share_one_series(client: Client) -> None:
    before = count("GET", UNMATCHED)

    await client.get("/wp-admin.php")
    await client.get("/.env")

    assert count("GET", UNMATCHED) == before + 2


async def test_a_live_socket_is_not_timed_as_a_request(client: Client) -> None:
    before = count("GET", "/live")

    async with client.ws_connect("/live") as socket:
        await socket.close()

    assert count("GET", "/live") == before


def test_the_server_time_is_the_app_entry_among_others() -> None:
    assert server_time_ms({"Server-Timing": "db;dur=3, app;dur=12.5"}) == 12.5


def test_an_answer_without_the_header_has_no_server_time() -> None:
    assert server_time_ms({}) is None
