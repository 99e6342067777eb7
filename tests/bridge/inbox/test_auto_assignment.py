"""Waiting conversations are given in turn to the team's members who are online and below the
team's capacity; an assignee who does not answer in time loses the conversation to a colleague."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import ConversationState, EventKind
from bridge.inbox import actions
from bridge.inbox.agent_status import OFFLINE_AFTER, Status, choose_status, page_seen
from bridge.inbox.agents import AgentInfo, add_agent
from bridge.inbox.assignment import assign_forever, assign_pass
from bridge.inbox.routing_rules import RuleDraft, add_rule
from bridge.inbox.teams import TeamDraft, create_team
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.models import conversations, utcnow
from tests.factories import entries, inbound
from tests.web_client import PASSWORD

AWAY_AFTER = dt.timedelta(minutes=10)


async def _agents(engine: AsyncEngine, *logins: str) -> list[AgentInfo]:
    return [await add_agent(engine, login, PASSWORD) for login in logins]


async def _team(engine: AsyncEngine, members: list[AgentInfo], **draft: object) -> int:
    """A team that takes every handoff."""
    team = await create_team(engine, TeamDraft("Desk", [m.id for m in members], **draft))  # type: ignore[arg-type]
    await add_rule(engine, RuleDraft(team_id=team.id))
    return team.id


async def _waiting(engine: AsyncEngine, bus: MemoryBus, settings: Settings, *chats: int) -> None:
    await Pipeline(engine, bus, settings, None).handle(entries(*(inbound(c, 1) for c in chats)))


async def _assignees(engine: AsyncEngine) -> dict[str, int | None]:
    c = conversations.c
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(c.chat_id, c.assignee_id).order_by(c.id))
        return {chat: agent for chat, agent in rows}


async def _online(engine: AsyncEngine, *agents: AgentInfo, at: dt.datetime | None = None) -> None:
    for agent in agents:
        await page_seen(engine, agent.id, at or utcnow(), active=True)


async def test_waiting_conversations_go_round_the_online_members(engine, memory_bus, settings):
    anna, boris = await _agents(engine, "anna", "boris")
    await _team(engine, [anna, boris])
    await _online(engine, anna, boris)
    await _waiting(engine, memory_bus, settings, 1, 2, 3, 4)
    await assign_pass(engine, memory_bus, utcnow(), AWAY_AFTER)
    given = list((await _assignees(engine)).values())
    assert sorted(given) == sorted([anna.id, boris.id] * 2)
    assert given[0] != given[1] and given[1] != given[2]  # in turn, not one after another


async def test_a_member_gets_no_more_than_the_capacity(engine, memory_bus, settings):
    anna, boris = await _agents(engine, "anna", "boris")
    await _team(engine, [anna, boris], capacity=2)
    await _online(engine, anna, boris)
    await _waiting(engine, memory_bus, settings, 1, 2, 3, 4, 5)
    await assign_pass(engine, memory_bus, utcnow(), AWAY_AFTER)
    assert list((await _assignees(engine)).values()).count(None) == 1
    await assign_pass(engine, memory_bus, utcnow(), AWAY_AFTER)
    assert list((await _assignees(engine)).values()).count(None) == 1  # still full


async def test_away_and_offline_members_get_nothing(engine, memory_bus, settings):
    anna, boris, vera, gleb = await _agents(engine, "anna", "boris", "vera", "gleb")
    await _team(engine, [anna, boris, vera, gleb])
    now = utcnow()
    await _online(engine, anna)
    await choose_status(engine, boris.id, Status.AWAY, now)  # said so
    await _online(engine, vera, at=now - OFFLINE_AFTER - dt.timedelta(seconds=1))  # page closed
    await page_seen(engine, gleb.id, now - AWAY_AFTER * 2, active=True)  # idle since
    await page_seen(engine, gleb.id, now)
    await _waiting(engine, memory_bus, settings, 1, 2)
    await assign_pass(engine, memory_bus, now, AWAY_AFTER)
    assert set((await _assignees(engine)).values()) == {anna.id}


async def test_nobody_online_leaves_the_conversation_waiting_for_the_team(
    engine, memory_bus, settings
):
    (anna,) = await _agents(engine, "anna")
    await _team(engine, [anna])
    await _waiting(engine, memory_bus, settings, 1)
    assert await assign_pass(engine, memory_bus, utcnow(), AWAY_AFTER) == []
    assert await _assignees(engine) == {"1": None}


async def test_a_team_without_auto_assignment_is_left_alone(engine, memory_bus, settings):
    (anna,) = await _agents(engine, "anna")
    await _team(engine, [anna], auto_assign=False)
    await _online(engine, anna)
    await _waiting(engine, memory_bus, settings, 1)
    await assign_pass(engine, memory_bus, utcnow(), AWAY_AFTER)
    assert await _assignees(engine) == {"1": None}


async def test_the_assignee_is_told_it_was_given_to_them(engine, memory_bus, settings):
    (anna,) = await _agents(engine, "anna")
    await _team(engine, [anna])
    await _online(engine, anna)
    await _waiting(engine, memory_bus, settings, 1)
    async with memory_bus.subscribe_events() as events:
        await assign_pass(engine, memory_bus, utcnow(), AWAY_AFTER)
        event = await anext(events)
    assert event.kind is EventKind.CONVERSATION_STATE
    assert event.data == {"state": "assigned", "assignee_id": anna.id, "reason": "auto_assigned"}


async def test_an_unanswered_conversation_passes_to_a_colleague_in_time(
    engine, memory_bus, settings
):
    anna, boris = await _agents(engine, "anna", "boris")
    await _team(engine, [anna, boris], reassign_after_minutes=5)
    await _online(engine, anna)
    await _waiting(engine, memory_bus, settings, 1)
    start = utcnow()
    await assign_pass(engine, memory_bus, start, AWAY_AFTER)
    assert await _assignees(engine) == {"1": anna.id}
    await _online(engine, boris)
    later = start + dt.timedelta(minutes=4)
    await _online(engine, anna, boris, at=later)
    assert await assign_pass(engine, memory_bus, later, AWAY_AFTER) == []
    late = start + dt.timedelta(minutes=6)
    await _online(engine, anna, boris, at=late)
    (event,) = await assign_pass(engine, memory_bus, late, AWAY_AFTER)
    assert await _assignees(engine) == {"1": boris.id}
    assert event.data["previous_assignee_id"] == anna.id  # her page tells her


async def test_an_answered_conversation_stays_with_its_assignee(engine, memory_bus, settings):
    anna, boris = await _agents(engine, "anna", "boris")
    await _team(engine, [anna, boris], reassign_after_minutes=5)
    await _online(engine, anna)
    await _waiting(engine, memory_bus, settings, 1)
    await assign_pass(engine, memory_bus, utcnow(), AWAY_AFTER)
    (conversation_id,) = await _conversation_ids(engine)
    await actions.reply_as_agent(engine, memory_bus, conversation_id, anna.id, "Looking into it")
    late = utcnow() + dt.timedelta(minutes=6)
    await _online(engine, anna, boris, at=late)
    assert await assign_pass(engine, memory_bus, late, AWAY_AFTER) == []
    assert await _assignees(engine) == {"1": anna.id}


async def test_with_no_colleague_to_take_it_the_assignee_keeps_it(engine, memory_bus, settings):
    (anna,) = await _agents(engine, "anna")
    await _team(engine, [anna], reassign_after_minutes=5)
    await _online(engine, anna)
    await _waiting(engine, memory_bus, settings, 1)
    await assign_pass(engine, memory_bus, utcnow(), AWAY_AFTER)
    late = utcnow() + dt.timedelta(minutes=6)
    await _online(engine, anna, at=late)
    assert await assign_pass(engine, memory_bus, late, AWAY_AFTER) == []
    assert await _assignees(engine) == {"1": anna.id}


async def test_a_customer_who_comes_back_gets_the_agent_they_had(engine, memory_bus, settings):
    anna, boris = await _agents(engine, "anna", "boris")
    await _team(engine, [anna, boris])
    await _online(engine, anna, boris)
    await _waiting(engine, memory_bus, settings, 1)
    await assign_pass(engine, memory_bus, utcnow(), AWAY_AFTER)
    (conversation_id,) = await _conversation_ids(engine)
    had = (await _assignees(engine))["1"]
    assert had is not None
    await actions.resolve(engine, memory_bus, conversation_id)
    pipeline = Pipeline(engine, memory_bus, settings, None)
    await pipeline.handle(entries(inbound(1, 2, "и ещё вопрос")))
    await assign_pass(engine, memory_bus, utcnow(), AWAY_AFTER)
    assert await _assignees(engine) == {"1": had}


async def test_the_loop_stops_when_asked(engine, memory_bus, settings):
    stop = asyncio.Event()
    running = asyncio.create_task(assign_forever(engine, memory_bus, settings, stop))
    await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(running, timeout=5)


@pytest.mark.postgres
async def test_two_cores_passing_at_once_give_each_conversation_once(postgres_url, settings):
    engines = [make_engine(postgres_url) for _ in range(2)]
    bus = MemoryBus(1)
    try:
        engine = engines[0]
        agents = await _agents(engine, "anna", "boris", "vera")
        await _team(engine, agents, capacity=3)
        await _online(engine, *agents)
        await _waiting(engine, bus, settings, *range(1, 13))
        now = utcnow()
        passes = await asyncio.gather(*(assign_pass(e, bus, now, AWAY_AFTER) for e in engines))
        given = [event.conversation_id for events in passes for event in events]
        assert len(given) == len(set(given)) == 9  # three each, nobody over the capacity
        async with engine.connect() as conn:
            c = conversations.c
            counts = await conn.execute(
                sa.select(c.assignee_id, sa.func.count())
                .where(c.state == ConversationState.ASSIGNED)
                .group_by(c.assignee_id)
            )
            assert sorted(n for _, n in counts) == [3, 3, 3]
    finally:
        for e in engines:
            await e.dispose()


async def _conversation_ids(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list(await conn.scalars(sa.select(conversations.c.id)))
