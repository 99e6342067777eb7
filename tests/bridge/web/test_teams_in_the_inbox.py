"""Teams in the inbox: the list filters by assignee, team and the day a conversation started;
an agent moves a conversation to a team; agents' presence follows their open pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.inbox import actions
from bridge.inbox.agent_status import Status, page_seen, statuses
from bridge.inbox.agents import AgentInfo, add_agent
from bridge.inbox.teams import TeamDraft, create_team
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import agent_presence, conversations, utcnow
from bridge.web.agent_activity import ACTIVE_NOTE, PageActivity
from bridge.web.app import add_inbox
from bridge.web.auth import issue_api_token
from bridge.web.server import make_app
from tests.factories import entries, inbound
from tests.web_client import PASSWORD, sign_in

# the pages and the API over the store's queries, which the inbox's own tests run on both stores
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@dataclass
class Desk:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    bus: MemoryBus
    settings: Settings
    anna: AgentInfo
    boris: AgentInfo
    conversation_ids: list[int]

    async def api(self, method: str, path: str, **kwargs: object) -> tuple[int, object]:
        token = await issue_api_token(self.engine, self.anna.id, "test")
        response = await self.client.request(
            method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs
        )
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body

    async def listed(self, **params: str) -> list[int]:
        status, body = await self.api(
            "GET", "/api/conversations", params={"view": "open", **params}
        )
        assert status == 200, body
        return sorted(row["id"] for row in body["conversations"])  # type: ignore[index]


@pytest.fixture
async def desk(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Desk]:
    """Two agents and three waiting conversations (the third started two days ago)."""
    app = make_app()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    anna = await add_agent(engine, "anna", PASSWORD, display_name="Anna")
    boris = await add_agent(engine, "boris", PASSWORD, display_name="Boris")
    await Pipeline(engine, memory_bus, settings, None).handle(
        entries(inbound(1, 1), inbound(2, 1), inbound(3, 1))
    )
    async with engine.begin() as conn:
        ids = list(await conn.scalars(sa.select(conversations.c.id).order_by(conversations.c.id)))
        two_days_ago = utcnow() - dt.timedelta(days=2)
        await conn.execute(
            sa.update(conversations)
            .where(conversations.c.id == ids[2])
            .values(created_at=two_days_ago)
        )
    yield Desk(client, engine, memory_bus, settings, anna, boris, ids)
    await client.close()


async def test_the_list_filters_by_assignee_and_by_nobody(desk: Desk) -> None:
    first, second, _ = desk.conversation_ids
    await actions.assign(desk.engine, desk.bus, first, desk.anna.id)
    await actions.assign(desk.engine, desk.bus, second, desk.boris.id)
    assert await desk.listed(assignee=str(desk.anna.id)) == [first]
    assert await desk.listed(assignee="none") == [desk.conversation_ids[2]]


async def test_the_list_filters_by_team_and_by_no_team(desk: Desk) -> None:
    billing = await create_team(desk.engine, TeamDraft("Billing"))
    first, second, third = desk.conversation_ids
    status, _ = await desk.api(
        "PUT", f"/api/conversations/{first}/team", json={"team_id": billing.id}
    )
    assert status == 200
    assert await desk.listed(team=str(billing.id)) == [first]
    assert await desk.listed(team="none") == [second, third]


async def test_the_list_filters_by_the_day_a_conversation_started(desk: Desk) -> None:
    today = utcnow().date()
    yesterday = today - dt.timedelta(days=1)
    first, second, third = desk.conversation_ids
    assert await desk.listed(since=today.isoformat()) == [first, second]
    assert await desk.listed(until=yesterday.isoformat()) == [third]
    assert await desk.listed(since=yesterday.isoformat(), until=yesterday.isoformat()) == []


async def test_the_days_of_the_filter_are_those_of_the_time_zone_asked(desk: Desk) -> None:
    first, *_ = desk.conversation_ids
    # 22:30 UTC on the 1st is 01:30 on the 2nd in Moscow (UTC+3)
    async with desk.engine.begin() as conn:
        await conn.execute(
            sa.update(conversations)
            .where(conversations.c.id == first)
            .values(created_at=dt.datetime(2025, 3, 1, 22, 30, tzinfo=dt.UTC))
        )
    moscow = {"since": "2025-03-02", "until": "2025-03-02", "tz": "Europe/Moscow"}

    assert await desk.listed(**moscow) == [first]
    assert await desk.listed(since="2025-03-02", until="2025-03-02") == []
    assert await desk.listed(since="2025-03-01", until="2025-03-01") == [first]


@pytest.mark.parametrize("zone", ["Asia/Tokyo", "America/Los_Angeles"])
async def test_the_calendars_ends_in_any_time_zone_leave_nothing_out(desk: Desk, zone: str) -> None:
    ends = {"since": "0001-01-01", "until": "9999-12-31", "tz": zone}

    assert await desk.listed(**ends) == sorted(desk.conversation_ids)


async def test_the_counts_of_the_views_follow_the_filters(desk: Desk) -> None:
    await actions.assign(desk.engine, desk.bus, desk.conversation_ids[0], desk.anna.id)
    status, body = await desk.api("GET", "/api/conversations", params={"assignee": "none"})
    assert status == 200
    assert body["counts"]["open"] == 2  # type: ignore[index]


@pytest.mark.parametrize(
    "params",
    [
        {"assignee": "anna"},
        {"team": "-1"},
        {"since": "06.12.2026"},
        {"until": "2026-13-01"},
        {"tz": "Mars/Olympus"},
        {"tz": "../../etc/passwd"},
        {"tz": "Europe/" + "x" * 300},
    ],
)
async def test_a_filter_that_makes_no_sense_is_refused_with_the_reason(desk: Desk, params) -> None:
    status, body = await desk.api("GET", "/api/conversations", params=params)
    assert status == 400
    assert next(iter(params)) in str(body)


async def test_moving_to_a_team_that_is_not_there_is_refused(desk: Desk) -> None:
    status, _ = await desk.api(
        "PUT", f"/api/conversations/{desk.conversation_ids[0]}/team", json={"team_id": 999}
    )
    assert status == 409


async def test_an_agent_moves_a_conversation_to_a_team_from_its_page(desk: Desk) -> None:
    billing = await create_team(desk.engine, TeamDraft("Billing"))
    csrf = await sign_in(desk.client, desk.anna)
    conversation_id = desk.conversation_ids[0]
    response = await desk.client.post(
        f"/c/{conversation_id}/team", data={"team_id": str(billing.id), "csrf": csrf}
    )
    assert response.status == 200
    assert await desk.listed(team=str(billing.id)) == [conversation_id]
    page = await (await desk.client.get(f"/?view=open&team={billing.id}")).text()
    assert 'class="team">Billing</span>' in page


async def test_an_open_inbox_page_makes_its_agent_online(desk: Desk) -> None:
    await sign_in(desk.client, desk.anna)
    origin = str(desk.client.make_url("/")).rstrip("/")
    socket = await desk.client.ws_connect("/ws/inbox", origin=origin)
    assert (await socket.receive_json())["kind"] == "subscribed"
    await socket.send_str(ACTIVE_NOTE)
    await socket.close()
    found = await statuses(desk.engine, utcnow(), desk.settings.away_after)
    assert found == {desk.anna.id: Status.ONLINE, desk.boris.id: Status.OFFLINE}


async def test_an_agent_who_says_away_shows_away(desk: Desk) -> None:
    csrf = await sign_in(desk.client, desk.anna)
    await desk.client.post("/me/status", data={"status": "away", "csrf": csrf, "next": "/"})
    status, body = await desk.api("GET", "/api/agents/status")
    assert status == 200
    assert {"agent_id": desk.anna.id, "status": "away"} in body["agents"]  # type: ignore[index]
    status, _ = await desk.api("PUT", "/api/me/status", json={"status": "online"})
    assert status == 200
    found = await statuses(desk.engine, utcnow(), desk.settings.away_after)
    assert found[desk.anna.id] is Status.ONLINE


async def test_an_agent_whose_page_is_open_but_unused_shows_away(desk: Desk) -> None:
    now = utcnow()
    await page_seen(desk.engine, desk.anna.id, now - desk.settings.away_after * 2, active=True)
    await page_seen(desk.engine, desk.anna.id, now)
    found = await statuses(desk.engine, now, desk.settings.away_after)
    assert found[desk.anna.id] is Status.AWAY


async def test_a_page_says_it_is_used_no_more_often_than_it_would(desk: Desk) -> None:
    ticks = iter([0.0, 1.0])
    activity = PageActivity(desk.engine, desk.anna.id, clock=lambda: next(ticks))
    assert await activity.heard(ACTIVE_NOTE)
    first = await _active_at(desk.engine, desk.anna.id)
    assert await activity.heard(ACTIVE_NOTE)  # taken, not written again a second later
    assert await _active_at(desk.engine, desk.anna.id) == first
    assert not await activity.heard('{"viewing": 3}')  # the colleagues' note, not this one


async def _active_at(engine: AsyncEngine, agent_id: int) -> dt.datetime:
    async with engine.connect() as conn:
        query = sa.select(agent_presence.c.active_at).where(agent_presence.c.agent_id == agent_id)
        return (await conn.execute(query)).scalar_one()
