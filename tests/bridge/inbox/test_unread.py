"""Unread markers: a customer's message is unread for every agent until that agent opens the
conversation; a newer one makes it unread again."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import Network
from bridge.inbox.agents import add_agent
from bridge.inbox.reads import mark_read, mark_seen
from bridge.inbox.views import ConversationView, InboxQuery, View, conversation_view, inbox
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import utcnow
from tests.factories import entries, inbound

SLA = dict.fromkeys(Network, 30)


async def unread_for(engine: AsyncEngine, agent_id: int) -> list[bool]:
    result = await inbox(engine, agent_id, InboxQuery(View.WAITING), SLA, utcnow())
    return [row.unread for row in result.rows]


async def opens_the_first(engine: AsyncEngine, agent_id: int) -> ConversationView:
    """The agent opens the first waiting conversation (as its page does)."""
    rows = (await inbox(engine, agent_id, InboxQuery(View.WAITING), SLA, utcnow())).rows
    view = await conversation_view(engine, rows[0].id)
    assert view is not None
    await mark_seen(engine, agent_id, view)
    return view


async def test_opening_a_conversation_reads_it_for_that_agent_only(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    anna = await add_agent(engine, "anna", "correct horse battery")
    boris = await add_agent(engine, "boris", "correct horse battery")
    pipeline = Pipeline(engine, memory_bus, settings, responder=None)
    await pipeline.handle(entries(inbound(1, 1, "Где мой заказ?")))
    assert await unread_for(engine, anna.id) == [True]

    await opens_the_first(engine, anna.id)

    assert await unread_for(engine, anna.id) == [False]
    assert await unread_for(engine, boris.id) == [True]


async def test_a_newer_customer_message_makes_it_unread_again(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    anna = await add_agent(engine, "anna", "correct horse battery")
    pipeline = Pipeline(engine, memory_bus, settings, responder=None)
    await pipeline.handle(entries(inbound(1, 1, "Где мой заказ?")))
    await opens_the_first(engine, anna.id)

    await pipeline.handle(entries(inbound(1, 2, "Я ещё здесь")))

    assert await unread_for(engine, anna.id) == [True]


async def test_reading_never_moves_back(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    anna = await add_agent(engine, "anna", "correct horse battery")
    pipeline = Pipeline(engine, memory_bus, settings, responder=None)
    await pipeline.handle(entries(inbound(1, 1, "первое"), inbound(1, 2, "второе")))
    view = await opens_the_first(engine, anna.id)

    # a page rendered before the second message reports after the newer one
    await mark_read(engine, anna.id, view.id, min(m.id for m in view.history))

    assert await unread_for(engine, anna.id) == [False]
