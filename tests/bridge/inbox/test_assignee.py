"""Who a conversation is given to: an active agent only, whether the inbox's form or the API
transfers it (both through `bridge.inbox.actions.assign`); claiming a colleague's asks first and
tells the colleague."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import EventKind
from bridge.inbox import actions
from bridge.inbox.agents import AgentInfo, Role, add_agent, update_agent
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations
from bridge.web.app import add_inbox
from bridge.web.auth import issue_api_token
from bridge.web.server import make_app
from tests.factories import entries, inbound
from tests.web_client import PASSWORD, sign_in


@dataclass
class Team:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    bus: MemoryBus
    admin: AgentInfo
    gone: AgentInfo
    anna: AgentInfo
    conversation_id: int

    async def assignee(self) -> int | None:
        async with self.engine.connect() as conn:
            query = sa.select(conversations.c.assignee_id)
            return (await conn.execute(query)).scalar_one_or_none()


@pytest.fixture
async def team(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Team]:
    """An admin, a disabled agent, an active one, and one waiting conversation."""
    app = make_app()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin = await add_agent(engine, "boss", PASSWORD, role=Role.ADMIN)
    gone = await add_agent(engine, "gone", PASSWORD)
    await update_agent(engine, gone.id, active=False)
    anna = await add_agent(engine, "anna", PASSWORD, display_name="Anna")
    await Pipeline(engine, memory_bus, settings, responder=None).handle(
        entries(inbound(1, 1, "hello"))
    )
    async with engine.connect() as conn:
        cid = int((await conn.execute(sa.select(conversations.c.id))).scalar_one())
    yield Team(client, engine, memory_bus, admin, gone, anna, cid)
    await client.close()


async def test_the_form_does_not_give_a_conversation_to_a_disabled_agent(team: Team) -> None:
    csrf = await sign_in(team.client, team.admin)

    response = await team.client.post(
        f"/c/{team.conversation_id}/transfer", data={"agent_id": team.gone.id, "csrf": csrf}
    )

    assert "is disabled" in await response.text()
    assert await team.assignee() is None


async def test_the_api_does_not_give_a_conversation_to_a_disabled_agent(team: Team) -> None:
    token = await issue_api_token(team.engine, team.admin.id, "transfer")

    response = await team.client.post(
        f"/api/conversations/{team.conversation_id}/transfer",
        json={"agent_id": team.gone.id},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status == 409
    assert await team.assignee() is None


async def test_claiming_a_colleagues_conversation_asks_first(team: Team) -> None:
    await actions.assign(team.engine, team.bus, team.conversation_id, team.anna.id)

    with pytest.raises(actions.HeldByColleague) as held:
        await actions.assign(
            team.engine, team.bus, team.conversation_id, team.admin.id, take_over=False
        )

    assert held.value.colleague == "Anna"
    assert await team.assignee() == team.anna.id


async def test_claiming_a_conversation_nobody_has_asks_nothing(team: Team) -> None:
    await actions.assign(
        team.engine, team.bus, team.conversation_id, team.admin.id, take_over=False
    )

    assert await team.assignee() == team.admin.id


async def test_taking_over_tells_the_colleague_who_has_it_now(team: Team) -> None:
    await actions.assign(team.engine, team.bus, team.conversation_id, team.anna.id)
    async with team.bus.subscribe_events() as events:
        await actions.assign(
            team.engine, team.bus, team.conversation_id, team.admin.id, take_over=True
        )
        event = await asyncio.wait_for(anext(aiter(events)), 5)

    assert event.kind is EventKind.CONVERSATION_STATE
    assert event.data["previous_assignee_id"] == team.anna.id
    assert event.data["assignee_name"] == team.admin.display_name
    assert await team.assignee() == team.admin.id


async def test_the_page_offers_to_take_over_a_colleagues_conversation_and_asks_first(
    team: Team,
) -> None:
    await actions.assign(team.engine, team.bus, team.conversation_id, team.anna.id)
    csrf = await sign_in(team.client, team.admin)

    page = await (await team.client.get(f"/c/{team.conversation_id}")).text()
    refused = await team.client.post(f"/c/{team.conversation_id}/claim", data={"csrf": csrf})
    assert await team.assignee() == team.anna.id
    await team.client.post(
        f"/c/{team.conversation_id}/claim", data={"csrf": csrf, "take_over": "1"}
    )

    assert 'data-confirm="Anna has this conversation. Take it over?' in page
    assert "Anna has this conversation" in await refused.text()
    assert await team.assignee() == team.admin.id


async def test_the_api_takes_a_colleagues_conversation_only_when_told_to(team: Team) -> None:
    await actions.assign(team.engine, team.bus, team.conversation_id, team.anna.id)
    token = await issue_api_token(team.engine, team.admin.id, "claim")
    headers = {"Authorization": f"Bearer {token}"}
    claim = f"/api/conversations/{team.conversation_id}/claim"

    refused = await team.client.post(claim, headers=headers)
    taken = await team.client.post(f"{claim}?take_over=true", headers=headers)

    assert refused.status == 409
    assert "Anna has this conversation" in (await refused.json())["error"]
    assert taken.status == 200
    assert await team.assignee() == team.admin.id
