"""Who a conversation is given to: an active agent only, whether the inbox's form or the API
transfers it (both through `bridge.inbox.actions.assign`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
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
    admin: AgentInfo
    gone: AgentInfo
    conversation_id: int

    async def assignee(self) -> int | None:
        async with self.engine.connect() as conn:
            query = sa.select(conversations.c.assignee_id)
            return (await conn.execute(query)).scalar_one_or_none()


@pytest.fixture
async def team(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Team]:
    """An admin, a disabled agent, and one waiting conversation."""
    app = make_app()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin = await add_agent(engine, "boss", PASSWORD, role=Role.ADMIN)
    gone = await add_agent(engine, "gone", PASSWORD)
    await update_agent(engine, gone.id, active=False)
    await Pipeline(engine, memory_bus, settings, responder=None).handle(
        entries(inbound(1, 1, "hello"))
    )
    async with engine.connect() as conn:
        cid = int((await conn.execute(sa.select(conversations.c.id))).scalar_one())
    yield Team(client, engine, admin, gone, cid)
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
