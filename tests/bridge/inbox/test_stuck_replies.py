"""A reply still queued after `stuck_reply_minutes` (its sender died, or a network never answers)
is shown to the agent as stuck and can be sent again; one queued moments ago cannot."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import Network
from bridge.inbox.agents import add_agent
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations
from bridge.web.app import add_inbox
from bridge.web.auth import issue_api_token
from tests.factories import drain_outbound, entries, inbound

SHORT_STUCK_AFTER_S = 0.3


@pytest.fixture
def stuck_after_s() -> float:
    """Long enough that a busy machine never lets a fresh reply look stuck."""
    return 60.0


@pytest.fixture
async def client(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings, stuck_after_s: float
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], dict[str, str], int]]:
    settings = settings.model_copy(update={"stuck_reply_minutes": stuck_after_s / 60})
    app = web.Application()
    add_inbox(app, engine, memory_bus, settings)
    agent = await add_agent(engine, "anna", "correct horse battery")
    token = await issue_api_token(engine, agent.id, "crm")
    # The customer writes; the handoff notice is queued and no sender takes it (it died).
    await Pipeline(engine, memory_bus, settings, None).handle(entries(inbound(1, 1)))
    drain_outbound(memory_bus, Network.TELEGRAM)
    async with engine.connect() as conn:
        cid = int((await conn.execute(sa.select(conversations.c.id))).scalar_one())
    async with TestClient(TestServer(app)) as test_client:
        yield test_client, {"Authorization": f"Bearer {token}"}, cid


async def the_notice(client: TestClient[web.Request, web.Application], auth, cid):  # type: ignore[no-untyped-def]
    body = await (await client.get(f"/api/conversations/{cid}", headers=auth)).json()
    return next(m for m in body["history"] if m["direction"] == "outbound")


@pytest.mark.parametrize("stuck_after_s", [SHORT_STUCK_AFTER_S])
async def test_a_reply_queued_too_long_is_shown_stuck_and_sent_again(
    client: tuple[TestClient[web.Request, web.Application], dict[str, str], int],
    memory_bus: MemoryBus,
) -> None:
    test_client, auth, cid = client
    await asyncio.sleep(SHORT_STUCK_AFTER_S + 0.1)

    notice = await the_notice(test_client, auth, cid)
    retried = await test_client.post(
        f"/api/conversations/{cid}/messages/{notice['id']}/retry", headers=auth
    )

    assert (notice["delivery_status"], notice["stuck"]) == ("queued", True)
    assert retried.status == 200
    (again,) = drain_outbound(memory_bus, Network.TELEGRAM)
    assert again.message_id == notice["id"], "the same reply, with its idempotency key"


async def test_a_reply_queued_moments_ago_is_neither_stuck_nor_sent_again(
    client: tuple[TestClient[web.Request, web.Application], dict[str, str], int],
    memory_bus: MemoryBus,
) -> None:
    test_client, auth, cid = client

    notice = await the_notice(test_client, auth, cid)
    retried = await test_client.post(
        f"/api/conversations/{cid}/messages/{notice['id']}/retry", headers=auth
    )

    assert notice["stuck"] is False
    assert retried.status == 409
    assert drain_outbound(memory_bus, Network.TELEGRAM) == []
