"""The headers every answer of the product's port carries: the pages' security headers on
redirects and errors too, HSTS when the public address is https, a Server header without
versions."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.inbox.agents import add_agent, find_agent
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.migrate import upgrade
from bridge.web.app import add_inbox
from bridge.web.health import add_health_routes
from bridge.web.server import make_app
from tests.web_client import PASSWORD, sign_in

SECURITY_HEADERS = [
    "Content-Security-Policy",
    "X-Frame-Options",
    "X-Content-Type-Options",
    "Referrer-Policy",
]
Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    url = f"sqlite+aiosqlite:///{tmp_path}/store.db"
    await upgrade(url)
    engine = make_engine(url)
    await add_agent(engine, "anna", PASSWORD)
    yield engine
    await engine.dispose()


async def broken(_request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


async def inbox(engine: AsyncEngine, settings: Settings) -> Client:
    """The inbox's port, and a page with a bug (the answer to an error nobody foresaw)."""
    app = make_app()
    add_inbox(app, engine, MemoryBus(1), settings)
    app.router.add_get("/broken", broken)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.fixture
async def client(store: AsyncEngine, settings: Settings) -> AsyncIterator[Client]:
    client = await inbox(store, settings)
    yield client
    await client.close()


# (what, method, path, signed in, status)
ANSWERS = [
    ("page", "GET", "/login", False, 200),
    ("redirect to sign in", "GET", "/", False, 303),
    ("redirect after a form", "POST", "/me/language", True, 303),
    ("refused form", "POST", "/c/1/resolve", False, 401),
    ("not found", "GET", "/c/999", True, 404),
    ("bad request", "GET", "/?view=nonsense", True, 400),
    ("server error", "GET", "/broken", True, 500),
]


@pytest.mark.parametrize(
    ("method", "path", "signed_in", "expected"),
    [answer[1:] for answer in ANSWERS],
    ids=[answer[0] for answer in ANSWERS],
)
async def test_every_answer_carries_the_security_headers(
    client: Client, store: AsyncEngine, method: str, path: str, signed_in: bool, expected: int
) -> None:
    data = {}
    if signed_in:
        data = {"csrf": await sign_in(client, await find_agent(store, "anna")), "language": "ru"}

    response = await client.request(method, path, data=data, allow_redirects=False)

    assert response.status == expected
    assert [name for name in SECURITY_HEADERS if name not in response.headers] == []


@pytest.mark.parametrize(
    ("public_url", "hsts"),
    [("https://support.example.com", True), ("http://10.0.0.5:8080", False), (None, False)],
)
@pytest.mark.parametrize("path", ["/login", "/"], ids=["page", "redirect"])
async def test_browsers_are_told_to_use_https_only_when_the_public_url_is_https(
    store: AsyncEngine, tmp_path: Path, public_url: str | None, hsts: bool, path: str
) -> None:
    client = await inbox(store, Settings(data_dir=tmp_path, public_url=public_url))
    try:
        response = await client.get(path, allow_redirects=False)
    finally:
        await client.close()

    assert ("max-age=" in response.headers.get("Strict-Transport-Security", "")) is hsts


async def role_port(store: AsyncEngine) -> Client:
    """A role without the inbox (core, bot): health checks only."""
    app = make_app()
    add_health_routes(app, store, MemoryBus(1))
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


@pytest.mark.parametrize("port", ["inbox", "role"])
@pytest.mark.parametrize("path", ["/healthz", "/login", "/nowhere"])
async def test_the_server_header_names_no_versions(
    store: AsyncEngine, settings: Settings, port: str, path: str
) -> None:
    client = await inbox(store, settings) if port == "inbox" else await role_port(store)
    try:
        response = await client.get(path, allow_redirects=False)
    finally:
        await client.close()

    assert not re.search(r"\d", response.headers.get("Server", "")), response.headers["Server"]
