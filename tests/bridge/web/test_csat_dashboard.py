"""CSAT and the public threads apart from private conversations on the admin's dashboard, in
Russian, and their tables as CSV, on the ratings of tests/rated_week.py."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.inbox.agents import Role, add_agent
from bridge.settings import Settings
from bridge.web.app import add_inbox
from bridge.web.server import make_app
from tests.rated_week import rated_week
from tests.web_client import PASSWORD, sign_in

Client = TestClient[web.Request, web.Application]
WEEK_QUERY = "from=2026-11-02&to=2026-11-08"


@pytest.fixture
async def admin(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Client]:
    """An admin signed in to the inbox, reading it in Russian, over the rated week."""
    app = make_app()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    boss = await add_agent(engine, "boss", PASSWORD, role=Role.ADMIN, language="ru")
    await sign_in(client, boss)
    await rated_week(engine)
    yield client
    await client.close()


async def test_the_dashboard_shows_csat_overall_per_agent_and_per_network(admin: Client) -> None:
    page = await (await admin.get(f"/admin/dashboard?{WEEK_QUERY}")).text()

    assert 'id="fig-csat">3.5 / 5<' in page
    assert "50% поставили 4–5 · ответили 4 из 5" in page
    assert "Ответы бота, которые помогли" in page
    agents = re.search(r'<table class="table" id="csat-agents">.*?</table>', page, re.S)
    assert agents is not None
    assert "<td>Anna</td><td>3.7</td><td>66%</td><td>3</td><td>4</td>" in agents[0]
    networks = re.search(r'<table class="table" id="csat-networks">.*?</table>', page, re.S)
    assert networks is not None
    assert "<td>Vk</td><td>2.0</td><td>0%</td><td>1</td><td>2</td>" in networks[0]


async def test_the_csat_tables_export_as_csv(admin: Client) -> None:
    per_agent = await admin.get(f"/admin/dashboard.csv?table=csat_agents&{WEEK_QUERY}")
    per_network = await admin.get(f"/admin/dashboard.csv?table=csat_networks&{WEEK_QUERY}")

    assert (await per_agent.text()).splitlines() == [
        "agent,asked,ratings,mean,rated_4_5_rate",
        "Anna,4,3,3.67,0.6667",
        "Boris,1,1,3.0,0.0",
    ]
    assert (await per_network.text()).splitlines()[1:] == [
        "telegram,3,3,4.0,0.6667",
        "vk,2,1,2.0,0.0",
    ]


async def test_the_dashboard_shows_public_threads_and_private_conversations_apart(
    admin: Client,
) -> None:
    page = await (await admin.get(f"/admin/dashboard?{WEEK_QUERY}")).text()
    csv = await (await admin.get(f"/admin/dashboard.csv?table=places&{WEEK_QUERY}")).text()

    places = re.search(r'<table class="table" id="places-figures">.*?</table>', page, re.S)
    assert places is not None
    assert "Публичные обсуждения и личные диалоги" in page
    assert "<td>Публично</td><td>0</td><td>0</td>" in places[0]
    assert csv.splitlines()[0] == (
        "place,conversations,customer_messages,resolved,resolved_rate,"
        "first_response_median_min,moved_to_private"
    )
