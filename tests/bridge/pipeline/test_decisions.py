"""The auto-answer decision: each rule, the thresholds that apply, feedback and shadow mode."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import AuthorKind, ConversationState, DecisionOutcome, HandoffReason, Network
from bridge.inbox.actions import SuggestionNotFound, judge_suggestion
from bridge.pipeline.phrases import FEEDBACK_NO, FEEDBACK_YES, feedback_buttons
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import agents, conversations, decisions, messages
from tests.factories import ScriptedResponder, drain_outbound, entries, inbound


def make_pipeline(
    engine: AsyncEngine, bus: MemoryBus, settings: Settings, responder: ScriptedResponder
) -> Pipeline:
    return Pipeline(engine, bus, settings, responder)


async def conversation(engine: AsyncEngine) -> sa.Row[tuple[object, ...]]:
    async with engine.connect() as conn:
        return (await conn.execute(sa.select(conversations))).one()


async def decision_rows(engine: AsyncEngine) -> list[sa.Row[tuple[object, ...]]]:
    async with engine.connect() as conn:
        return list((await conn.execute(sa.select(decisions).order_by(decisions.c.id))).all())


async def replies(engine: AsyncEngine) -> list[sa.Row[tuple[object, ...]]]:
    async with engine.connect() as conn:
        query = sa.select(messages).where(messages.c.direction == "outbound")
        return list((await conn.execute(query.order_by(messages.c.id))).all())


async def question_id(engine: AsyncEngine, seq: int) -> int:
    async with engine.connect() as conn:
        query = sa.select(messages.c.id).where(messages.c.network_message_id == f"7-{seq}")
        return int((await conn.execute(query)).scalar_one())


async def add_agent(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        query = sa.insert(agents).values(login="anna", display_name="Anna").returning(agents.c.id)
        return int((await conn.execute(query)).scalar_one())


async def test_a_confident_answer_asks_whether_it_helped_with_buttons(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.97))
    await pipeline.handle(entries(inbound(7, 1, "how much is the tariff?")))

    reply = (await replies(engine))[0]
    asked = await question_id(engine, 1)
    assert reply.author_kind is AuthorKind.BOT
    assert reply.text == "answer to how much is the tariff?\n\nDid this answer help?"
    assert reply.buttons == [b.model_dump() for b in feedback_buttons(asked, "en")]
    assert [b.data for b in drain_outbound(memory_bus, Network.TELEGRAM)[0].buttons] == [
        f"fb:{FEEDBACK_YES}:{asked}",
        f"fb:{FEEDBACK_NO}:{asked}",
    ]


async def test_an_answer_is_stored_with_its_article_and_confidence(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.97))
    await pipeline.handle(entries(inbound(7, 1, "how much is the tariff?")))

    (decision,) = await decision_rows(engine)
    assert decision.outcome is DecisionOutcome.ANSWERED
    assert (decision.article_id, decision.confidence, decision.threshold) == (
        "article-1",
        0.97,
        0.9,
    )
    assert decision.message_id == await question_id(engine, 1)


@pytest.mark.parametrize(
    ("overrides", "article_threshold", "applies"),
    [
        ({}, None, 0.9),
        ({"network_thresholds": {Network.TELEGRAM: 0.99}}, None, 0.99),
        ({"network_thresholds": {Network.VK: 0.5}}, None, 0.9),
        ({"network_thresholds": {Network.TELEGRAM: 0.99}}, 0.95, 0.95),
    ],
    ids=["global", "network over global", "another network's", "article over network"],
)
async def test_the_threshold_that_applies_is_article_then_network_then_global(
    engine: AsyncEngine,
    memory_bus: MemoryBus,
    settings: Settings,
    overrides: dict[str, object],
    article_threshold: float | None,
    applies: float,
) -> None:
    settings = settings.model_copy(update=overrides)
    responder = ScriptedResponder(0.97, threshold=article_threshold)
    await make_pipeline(engine, memory_bus, settings, responder).handle(
        entries(inbound(7, 1, "question"))
    )

    (decision,) = await decision_rows(engine)
    assert decision.threshold == applies
    assert (decision.outcome is DecisionOutcome.ANSWERED) == (0.97 >= applies)


@pytest.mark.parametrize("text", ["Позовите человека, пожалуйста", "talk to a human"])
async def test_a_request_for_a_person_hands_off_even_when_the_bot_is_sure(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings, text: str
) -> None:
    await make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.99)).handle(
        entries(inbound(7, 1, text))
    )

    row = await conversation(engine)
    assert (row.state, row.handoff_reason) == (
        ConversationState.WAITING,
        HandoffReason.ASKED_FOR_HUMAN,
    )
    assert [r.author_kind for r in await replies(engine)] == [AuthorKind.SYSTEM]


async def test_a_never_auto_article_is_handed_to_an_agent(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    responder = ScriptedResponder(0.99, never_auto=True)
    await make_pipeline(engine, memory_bus, settings, responder).handle(
        entries(inbound(7, 1, "cancel my contract"))
    )

    row = await conversation(engine)
    assert row.handoff_reason == HandoffReason.NEVER_AUTO
    (decision,) = await decision_rows(engine)
    assert (decision.outcome, decision.article_id) == (DecisionOutcome.HANDOFF, "article-1")


async def test_a_question_just_under_the_threshold_is_asked_again_in_other_words(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.8)).handle(
        entries(inbound(7, 1, "hm, the thing with the box"))
    )

    row = await conversation(engine)
    assert (row.state, row.misses) == (ConversationState.BOT, 1)
    (reply,) = await replies(engine)
    assert reply.author_kind is AuthorKind.BOT
    assert "another way" in reply.text


async def test_a_second_unconfident_question_in_a_row_hands_off(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.8))
    await pipeline.handle(entries(inbound(7, 1, "hm, the thing with the box")))
    await pipeline.handle(entries(inbound(7, 2, "the box, blinking")))

    row = await conversation(engine)
    assert (row.state, row.handoff_reason) == (
        ConversationState.WAITING,
        HandoffReason.REPEATED_MISSES,
    )


async def test_a_confident_answer_between_two_misses_starts_the_count_again(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    responder = ScriptedResponder(lambda text: 0.97 if "tariff" in text else 0.8)
    pipeline = make_pipeline(engine, memory_bus, settings, responder)
    for seq, text in enumerate(["the box", "tariff?", "the box again"], 1):
        await pipeline.handle(entries(inbound(7, seq, text)))

    row = await conversation(engine)
    assert (row.state, row.misses) == (ConversationState.BOT, 1)


async def test_a_question_far_below_the_threshold_hands_off_at_once(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.3)).handle(
        entries(inbound(7, 1, "what is the meaning of life"))
    )

    row = await conversation(engine)
    assert row.handoff_reason == HandoffReason.LOW_CONFIDENCE
    (decision,) = await decision_rows(engine)
    assert (decision.outcome, decision.reason, decision.confidence) == (
        DecisionOutcome.HANDOFF,
        HandoffReason.LOW_CONFIDENCE,
        0.3,
    )


async def test_no_on_the_feedback_buttons_hands_off_at_once_and_is_stored(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.97))
    await pipeline.handle(entries(inbound(7, 1, "tariff?")))
    asked = await question_id(engine, 1)
    await pipeline.handle(entries(inbound(7, 2, "No", button_data=f"fb:{FEEDBACK_NO}:{asked}")))

    row = await conversation(engine)
    assert (row.state, row.handoff_reason) == (
        ConversationState.WAITING,
        HandoffReason.NOT_HELPFUL,
    )
    answered = (await decision_rows(engine))[0]
    assert (answered.outcome, answered.feedback) == (DecisionOutcome.ANSWERED, FEEDBACK_NO)


async def test_yes_on_the_feedback_buttons_is_stored_and_closes_the_conversation(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.97))
    await pipeline.handle(entries(inbound(7, 1, "tariff?")))
    asked = await question_id(engine, 1)
    await pipeline.handle(entries(inbound(7, 2, "Yes", button_data=f"fb:{FEEDBACK_YES}:{asked}")))

    row = await conversation(engine)
    assert row.state is ConversationState.RESOLVED
    assert row.handoff_reason is None
    assert (await decision_rows(engine))[0].feedback == FEEDBACK_YES


async def test_feedback_cannot_touch_another_conversations_answer(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.97))
    await pipeline.handle(entries(inbound(7, 1, "tariff?")))
    asked = await question_id(engine, 1)
    await pipeline.handle(entries(inbound(8, 1, "No", button_data=f"fb:{FEEDBACK_NO}:{asked}")))

    assert (await decision_rows(engine))[0].feedback is None


@pytest.mark.parametrize("text", ["не помогло", "that didn't help"])
async def test_saying_it_did_not_help_after_an_answer_hands_off(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings, text: str
) -> None:
    responder = ScriptedResponder(lambda question: 0.3 if question == text else 0.97)
    pipeline = make_pipeline(engine, memory_bus, settings, responder)
    await pipeline.handle(entries(inbound(7, 1, "tariff?")))
    await pipeline.handle(entries(inbound(7, 2, text)))

    row = await conversation(engine)
    assert row.handoff_reason == HandoffReason.NOT_HELPFUL
    assert (await decision_rows(engine))[0].feedback == FEEDBACK_NO


async def test_a_strongly_negative_message_hands_off(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.99)).handle(
        entries(inbound(7, 1, "Ужасный сервис, третий день нет интернета!!!"))
    )

    assert (await conversation(engine)).handoff_reason == HandoffReason.NEGATIVE_TONE


async def test_in_shadow_mode_the_bot_only_suggests(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    settings = settings.model_copy(update={"shadow_mode": True})
    await make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.99)).handle(
        entries(inbound(7, 1, "tariff?"))
    )

    row = await conversation(engine)
    assert (row.state, row.handoff_reason) == (
        ConversationState.WAITING,
        HandoffReason.SHADOW_MODE,
    )
    assert [r.author_kind for r in await replies(engine)] == [AuthorKind.SYSTEM]
    (decision,) = await decision_rows(engine)
    assert (decision.outcome, decision.article_id) == (DecisionOutcome.SUGGESTED, "article-1")


async def test_shadow_mode_of_one_network_leaves_the_others_answering(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    settings = settings.model_copy(update={"shadow_networks": [Network.VK]})
    pipeline = make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.99))
    await pipeline.handle(
        entries(inbound(7, 1, "tariff?"), inbound(7, 1, "tariff?", network=Network.VK))
    )

    outcomes = {d.network: d.outcome for d in await decision_rows(engine)}
    assert outcomes == {
        Network.TELEGRAM: DecisionOutcome.ANSWERED,
        Network.VK: DecisionOutcome.SUGGESTED,
    }


async def test_in_shadow_mode_every_later_question_gets_a_suggestion_too(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    settings = settings.model_copy(update={"shadow_mode": True})
    pipeline = make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.99))
    await pipeline.handle(entries(inbound(7, 1, "tariff?")))
    await pipeline.handle(entries(inbound(7, 2, "and the router?")))

    assert [d.outcome for d in await decision_rows(engine)] == [DecisionOutcome.SUGGESTED] * 2


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "rejected"])
async def test_an_agents_verdict_on_a_suggestion_is_stored(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings, accepted: bool
) -> None:
    settings = settings.model_copy(update={"shadow_mode": True})
    await make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.99)).handle(
        entries(inbound(7, 1, "tariff?"))
    )
    row = await conversation(engine)
    agent = await add_agent(engine)
    await judge_suggestion(engine, row.id, await question_id(engine, 1), agent, accepted=accepted)

    (decision,) = await decision_rows(engine)
    assert decision.verdict == ("accepted" if accepted else "rejected")
    assert decision.verdict_agent_id == agent


async def test_a_verdict_on_a_question_without_a_suggestion_is_refused(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.99)).handle(
        entries(inbound(7, 1, "tariff?"))
    )
    row = await conversation(engine)
    with pytest.raises(SuggestionNotFound):
        await judge_suggestion(engine, row.id, await question_id(engine, 1), 1, accepted=True)


async def test_a_redelivered_answer_is_queued_again_with_its_buttons(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = make_pipeline(engine, memory_bus, settings, ScriptedResponder(0.97))
    batch = entries(inbound(7, 1, "tariff?"))
    await pipeline.handle(batch)
    await pipeline.handle(batch)

    first, again = drain_outbound(memory_bus, Network.TELEGRAM)
    assert again.idempotency_key == first.idempotency_key
    assert again.buttons == first.buttons and len(first.buttons) == 2
