"""Routing rules: a conversation handed to people goes to the team of the first rule that holds
(network, language, the best article's tags, the handoff reason) and gets every holding rule's
label."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import HandoffReason, Network
from bridge.inbox.labels import create_label, delete_label
from bridge.inbox.routing_rules import RuleDraft, add_rule
from bridge.inbox.teams import TeamDraft, create_team, delete_team
from bridge.pipeline.responder import Responder
from bridge.pipeline.team_routing import Rule, route_to_team
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversation_labels, conversations, utcnow
from tests.factories import ScriptedResponder, drain_outbound, entries, inbound


async def _hand_off(
    engine: AsyncEngine,
    bus: MemoryBus,
    settings: Settings,
    *messages: object,
    responder: Responder | None = None,
) -> dict[str, int | None]:
    """Each message handed off; the team each chat's conversation went to."""
    await Pipeline(engine, bus, settings, responder).handle(entries(*messages))  # type: ignore[arg-type]
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(conversations.c.chat_id, conversations.c.team_id))
        return {chat: team for chat, team in rows}


def test_a_rule_without_conditions_holds_for_every_conversation():
    assert route_to_team([Rule(team_id=1)], Network.VK, None, (), "low_confidence").team_id == 1


def test_the_first_rule_that_names_a_team_decides_and_every_holding_rule_adds_its_label():
    rules = [
        Rule(network="vk", label_id=7),
        Rule(language="ru", team_id=1, label_id=8),
        Rule(team_id=2, label_id=9),
        Rule(network="telegram", team_id=3, label_id=10),
    ]
    routing = route_to_team(rules, Network.VK, "ru", (), "asked_for_human")
    assert routing.team_id == 1
    assert routing.label_ids == (7, 8, 9)


def test_every_condition_of_a_rule_must_hold():
    rule = Rule(network="vk", language="ru", tag="billing", reason="low_confidence", team_id=1)
    assert rule.holds(Network.VK, "ru", ("billing", "cards"), "low_confidence")
    assert not rule.holds(Network.TELEGRAM, "ru", ("billing",), "low_confidence")
    assert not rule.holds(Network.VK, "en", ("billing",), "low_confidence")
    assert not rule.holds(Network.VK, "ru", ("cards",), "low_confidence")
    assert not rule.holds(Network.VK, "ru", ("billing",), "asked_for_human")


async def test_a_handoff_goes_to_the_team_of_its_network(engine, memory_bus, settings):
    vk = await create_team(engine, TeamDraft("VK desk"))
    await add_rule(engine, RuleDraft(network=Network.VK, team_id=vk.id))
    teams = await _hand_off(
        engine,
        memory_bus,
        settings,
        inbound(1, 1, network=Network.VK),
        inbound(2, 1, network=Network.TELEGRAM),
    )
    assert teams == {"1": vk.id, "2": None}


async def test_a_handoff_goes_by_the_best_articles_tags(engine, memory_bus, settings):
    billing = await create_team(engine, TeamDraft("Billing"))
    await add_rule(engine, RuleDraft(tag="billing", team_id=billing.id))
    unsure = ScriptedResponder(0.1, tags=("billing",))
    teams = await _hand_off(engine, memory_bus, settings, inbound(1, 1), responder=unsure)
    assert teams == {"1": billing.id}


async def test_a_handoff_goes_by_its_reason(engine, memory_bus, settings):
    people = await create_team(engine, TeamDraft("People"))
    await add_rule(engine, RuleDraft(reason=HandoffReason.ASKED_FOR_HUMAN, team_id=people.id))
    teams = await _hand_off(
        engine,
        memory_bus,
        settings,
        inbound(1, 1, "позовите оператора"),
        inbound(2, 1, "сколько стоит доставка"),
        responder=ScriptedResponder(0.1),
    )
    assert teams == {"1": people.id, "2": None}


async def test_a_rules_label_is_put_on_the_conversation(engine, memory_bus, settings):
    urgent = await create_label(engine, "Urgent", "#d92d20")
    await add_rule(engine, RuleDraft(reason=HandoffReason.NEGATIVE_TONE, label_id=urgent.id))
    await _hand_off(engine, memory_bus, settings, inbound(1, 1, "это ужасно, верните деньги!!!"))
    async with engine.connect() as conn:
        carried = list(await conn.scalars(sa.select(conversation_labels.c.label_id)))
    assert carried == [urgent.id]


async def test_a_team_or_label_deleted_after_the_rules_were_read_fails_nothing(
    engine, memory_bus, settings
):
    gone_team = await create_team(engine, TeamDraft("Gone"))
    gone_label = await create_label(engine, "Gone", "#123456")
    await add_rule(engine, RuleDraft(team_id=gone_team.id, label_id=gone_label.id))
    pipeline = Pipeline(engine, memory_bus, settings, None)
    await pipeline.handle(entries(inbound(1, 1)))  # the rules are read now
    await delete_team(engine, gone_team.id)
    await delete_label(engine, gone_label.id)
    await pipeline.handle(entries(inbound(2, 1)))
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(conversations.c.team_id))).scalars().all()
        carried = (await conn.execute(sa.select(conversation_labels))).all()
    assert rows == [None, None]
    assert carried == []
    assert pipeline.stats.dead_lettered == 0


async def test_a_customer_handed_to_a_closed_team_is_told_when_it_opens(
    engine, memory_bus, settings
):
    # open one hour a week, on the day after tomorrow, so that it is closed now
    opens_on = utcnow() + dt.timedelta(days=2)
    week = {str(opens_on.weekday()): [["10:00", "11:00"]]}
    night = await create_team(engine, TeamDraft("Day shift", time_zone="UTC", hours=week))
    await add_rule(engine, RuleDraft(team_id=night.id))
    await _hand_off(engine, memory_bus, settings, inbound(1, 1, "позовите оператора"))
    (ack,) = drain_outbound(memory_bus, Network.TELEGRAM)
    assert "не работаем" in ack.text
    assert f"{opens_on.day} " in ack.text and "10:00" in ack.text


async def test_a_customer_handed_to_an_open_team_is_told_it_will_be_soon(
    engine, memory_bus, settings
):
    always = {str(day): [["00:00", "24:00"]] for day in range(7)}
    day = await create_team(engine, TeamDraft("Always", time_zone="Europe/Moscow", hours=always))
    await add_rule(engine, RuleDraft(team_id=day.id))
    await _hand_off(engine, memory_bus, settings, inbound(1, 1, "позовите оператора"))
    (ack,) = drain_outbound(memory_bus, Network.TELEGRAM)
    assert "Скоро вам ответит оператор" in ack.text
