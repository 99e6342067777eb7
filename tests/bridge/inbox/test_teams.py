"""Teams as admins keep them, and routing rules in their order."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from bridge.bus.memory import MemoryBus
from bridge.domain import ConversationState, EventKind, Network
from bridge.inbox.agents import add_agent
from bridge.inbox.routing_rules import (
    RuleDraft,
    RuleError,
    add_rule,
    delete_rule,
    list_rules,
    move_rule,
)
from bridge.inbox.teams import (
    TeamDraft,
    TeamError,
    TeamNotFound,
    change_team,
    create_team,
    delete_team,
    list_teams,
    move_to_team,
    team_usage,
)
from bridge.inbox.views import InboxQuery, View, inbox
from bridge.pipeline.worker import Pipeline
from bridge.store.models import conversations, utcnow
from tests.factories import entries, inbound
from tests.web_client import PASSWORD


async def test_a_team_keeps_its_members_and_settings(engine):
    anna = await add_agent(engine, "anna", PASSWORD)
    boris = await add_agent(engine, "boris", PASSWORD)
    team = await create_team(
        engine, TeamDraft("  Billing   desk ", [boris.id, anna.id, anna.id], True, 3, 20)
    )
    assert (team.name, team.member_ids, team.capacity) == ("Billing desk", (anna.id, boris.id), 3)
    assert team.reassign_after_minutes == 20
    changed = await change_team(engine, team.id, TeamDraft("Billing", [boris.id], False, 4))
    assert (changed.name, changed.member_ids) == ("Billing", (boris.id,))
    assert not changed.auto_assign
    assert await list_teams(engine) == [changed]


@pytest.mark.parametrize(
    "draft",
    [
        TeamDraft(""),
        TeamDraft("x" * 51),
        TeamDraft("Billing", capacity=0),
        TeamDraft("Billing", capacity=101),
        TeamDraft("Billing", reassign_after_minutes=0),
        TeamDraft("Billing", member_ids=[999]),
        TeamDraft("Billing", time_zone="Mars/Olympus"),
        TeamDraft("Billing", time_zone="UTC", hours={"0": [["18:00", "09:00"]]}),
    ],
)
@pytest.mark.parametrize("backend", ["sqlite"])  # refused before the store is asked
async def test_a_team_that_makes_no_sense_is_refused_with_the_reason(engine, draft):
    with pytest.raises(TeamError):
        await create_team(engine, draft)
    assert await list_teams(engine) == []


async def test_a_team_name_is_taken_whatever_its_case(engine):
    await create_team(engine, TeamDraft("Billing"))
    with pytest.raises(TeamError, match="exists already"):
        await create_team(engine, TeamDraft("BILLING"))


async def test_deleting_a_team_leaves_its_conversations_with_no_team(engine, settings):
    bus = MemoryBus(1)
    team = await create_team(engine, TeamDraft("Billing"))
    await Pipeline(engine, bus, settings, None).handle(entries(inbound(1, 1)))
    conversation_id = await _only_conversation(engine)
    await move_to_team(engine, bus, conversation_id, team.id)
    assert await _team_of(engine, conversation_id) == team.id
    await delete_team(engine, team.id)
    assert await _team_of(engine, conversation_id) is None
    with pytest.raises(TeamNotFound):
        await delete_team(engine, team.id)


async def test_a_teams_usage_counts_its_open_conversations_only(engine, settings):
    bus = MemoryBus(1)
    billing = await create_team(engine, TeamDraft("Billing"))
    await create_team(engine, TeamDraft("Sales"))
    await Pipeline(engine, bus, settings, None).handle(entries(*(inbound(n, 1) for n in (1, 2, 3))))
    async with engine.connect() as conn:
        first, second, _third = await conn.scalars(
            sa.select(conversations.c.id).order_by(conversations.c.id)
        )
    for conversation_id in (first, second):
        await move_to_team(engine, bus, conversation_id, billing.id)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(conversations)
            .where(conversations.c.id == second)
            .values(state=ConversationState.RESOLVED)
        )
    assert await team_usage(engine) == {billing.id: 1}


async def test_moving_a_conversation_to_a_team_is_announced(engine, settings):
    bus = MemoryBus(1)
    team = await create_team(engine, TeamDraft("Billing"))
    await Pipeline(engine, bus, settings, None).handle(entries(inbound(1, 1)))
    conversation_id = await _only_conversation(engine)
    async with bus.subscribe_events() as events:
        await move_to_team(engine, bus, conversation_id, team.id)
        event = await anext(events)
    assert (event.kind, event.data) == (EventKind.CONVERSATION_TEAM, {"team_id": team.id})
    with pytest.raises(TeamNotFound):
        await move_to_team(engine, bus, conversation_id, team.id + 1)


async def test_rules_are_tried_in_the_order_the_admin_gives(engine):
    team = await create_team(engine, TeamDraft("VK"))
    first = await add_rule(engine, RuleDraft(network=Network.VK, team_id=team.id))
    second = await add_rule(engine, RuleDraft(language=" RU ", team_id=team.id))
    assert second.language == "ru"
    assert [r.id for r in await move_rule(engine, second.id, earlier=True)] == [second.id, first.id]
    assert [r.id for r in await move_rule(engine, second.id, earlier=True)] == [second.id, first.id]
    await delete_rule(engine, second.id)
    assert [r.id for r in await list_rules(engine)] == [first.id]


@pytest.mark.parametrize(
    "draft",
    [
        RuleDraft(network=Network.VK),  # gives nothing
        RuleDraft(language="russian", team_id=1),
        RuleDraft(team_id=999),
        RuleDraft(label_id=999),
    ],
)
@pytest.mark.parametrize("backend", ["sqlite"])
async def test_a_rule_that_makes_no_sense_is_refused_with_the_reason(engine, draft):
    await create_team(engine, TeamDraft("Any"))
    with pytest.raises(RuleError):
        await add_rule(engine, draft)


async def _only_conversation(engine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(conversations.c.id))).scalar_one())


async def _team_of(engine, conversation_id: int) -> int | None:
    async with engine.connect() as conn:
        query = sa.select(conversations.c.team_id).where(conversations.c.id == conversation_id)
        return (await conn.execute(query)).scalar_one()


async def test_the_sla_clock_of_a_closed_team_counts_working_time_and_waits(engine, settings):
    bus = MemoryBus(1)
    closed = {str(day): [] for day in range(7)}  # never open: no working time passes
    team = await create_team(engine, TeamDraft("Nights", time_zone="UTC", hours=closed))
    await Pipeline(engine, bus, settings, None).handle(entries(inbound(1, 1)))
    conversation_id = await _only_conversation(engine)
    await move_to_team(engine, bus, conversation_id, team.id)
    later = utcnow() + dt.timedelta(hours=3)
    listed = await inbox(engine, 1, InboxQuery(view=View.WAITING), settings.sla_for(), later)
    (row,) = listed.rows
    assert row.sla is not None
    assert (row.sla.waiting_s, row.sla.running, row.team) == (0.0, False, "Nights")
