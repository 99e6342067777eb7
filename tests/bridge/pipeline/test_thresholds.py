"""Thresholds chosen from evidence: the curve computed by hand on known data, saving with an
audit, and the pipeline deciding with the saved value without a restart."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import DecisionOutcome, Network
from bridge.inbox.agents import Role, add_agent
from bridge.knowledge.articles import upsert_articles
from bridge.knowledge.evidence import Evidence, curve, label, threshold_curve
from bridge.pipeline.phrases import FEEDBACK_NO, FEEDBACK_YES
from bridge.pipeline.thresholds import (
    GLOBAL,
    LiveThresholds,
    ThresholdError,
    article_scope,
    network_scope,
    save_threshold,
)
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import articles, decisions, threshold_changes
from kb.articles import Article
from tests.factories import ScriptedResponder, entries, inbound

KNOWN = [
    Evidence(0.2, None),
    Evidence(0.5, False),
    Evidence(0.8, True),
    Evidence(0.95, True),
]


def test_coverage_and_precision_at_a_threshold_are_counted_as_by_hand() -> None:
    result = curve(KNOWN, [], weeks=2)

    at_half = result.at(0.5)
    assert (at_half.coverage, at_half.precision, at_half.answered_per_week) == (0.75, 2 / 3, 1.5)
    at_090 = result.at(0.9)
    assert (at_090.coverage, at_090.precision) == (0.25, 1.0)
    at_096 = result.at(0.96)
    assert (at_096.coverage, at_096.precision) == (0.0, None)
    assert (result.questions, result.judged, len(result.points)) == (4, 3, 101)


def test_a_labelled_file_adds_judged_answers_but_not_traffic() -> None:
    result = curve(KNOWN, [Evidence(0.9, False)], weeks=1)

    assert result.at(0.9).coverage == 0.25
    assert result.at(0.9).precision == 0.5


def test_an_agents_verdict_outweighs_the_customers_feedback() -> None:
    assert label(FEEDBACK_NO, "accepted") is True
    assert label(FEEDBACK_YES, None) is True
    assert label(None, None) is None


async def test_the_curve_is_replayed_from_the_stored_decisions(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    responder = ScriptedResponder(lambda text: {"a": 0.95, "b": 0.5}[text])
    pipeline = Pipeline(engine, memory_bus, settings, responder)
    await pipeline.handle(entries(inbound(1, 1, "a"), inbound(2, 1, "b")))
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(decisions)
            .where(decisions.c.outcome == DecisionOutcome.ANSWERED)
            .values(feedback=FEEDBACK_YES)
        )

    result = await threshold_curve(engine, weeks=1)

    assert (result.questions, result.judged) == (2, 1)
    assert (result.at(0.9).coverage, result.at(0.9).precision) == (0.5, 1.0)
    on_vk = await threshold_curve(engine, weeks=1, network=Network.VK)
    assert on_vk.questions == 0


async def test_a_saved_threshold_decides_the_next_question_without_a_restart(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    settings = settings.model_copy(update={"kb_refresh_seconds": 0.001})
    pipeline = Pipeline(engine, memory_bus, settings, ScriptedResponder(0.95))
    await pipeline.handle(entries(inbound(1, 1, "first")))

    await save_threshold(engine, Settings(), GLOBAL, 0.99, None)
    await pipeline.handle(entries(inbound(2, 1, "second")))

    async with engine.connect() as conn:
        outcomes = (
            await conn.execute(
                sa.select(decisions.c.outcome, decisions.c.threshold).order_by(decisions.c.id)
            )
        ).all()
    assert [tuple(row) for row in outcomes] == [
        (DecisionOutcome.ANSWERED, 0.9),
        (DecisionOutcome.REPHRASE, 0.99),
    ]


async def test_a_network_threshold_overrides_the_global_one_until_removed(
    engine: AsyncEngine, settings: Settings
) -> None:
    await save_threshold(engine, Settings(), GLOBAL, 0.8, None)
    await save_threshold(engine, Settings(), network_scope(Network.VK), 0.97, None)
    live = LiveThresholds(engine, settings)
    await live.refresh()
    assert (live.for_network(Network.VK), live.for_network(Network.TELEGRAM)) == (0.97, 0.8)

    await save_threshold(engine, Settings(), network_scope(Network.VK), None, None)
    live = LiveThresholds(engine, settings)
    await live.refresh()
    assert live.for_network(Network.VK) == 0.8


async def test_an_article_threshold_is_kept_on_the_article(engine: AsyncEngine) -> None:
    await upsert_articles(engine, [Article(id="tariffs", answers={"en": "x"}, examples=("q",))])

    await save_threshold(engine, Settings(), article_scope("tariffs"), 0.97, None)

    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(articles.c.threshold))).scalar_one()
    assert stored == 0.97


@pytest.mark.parametrize(
    ("scope", "value"),
    [(GLOBAL, 1.5), (GLOBAL, None), ("network:myspace", 0.5), ("article:missing", 0.5)],
    ids=["out of range", "global removed", "unknown network", "unknown article"],
)
async def test_a_threshold_that_cannot_be_is_refused_and_not_recorded(
    engine: AsyncEngine, scope: str, value: float | None
) -> None:
    with pytest.raises(ThresholdError):
        await save_threshold(engine, Settings(), scope, value, None)

    async with engine.connect() as conn:
        assert (
            await conn.execute(sa.select(sa.func.count()).select_from(threshold_changes))
        ).scalar_one() == 0


async def test_every_change_is_recorded_with_who_old_and_new(engine: AsyncEngine) -> None:
    admin = await add_agent(engine, "boss", "long enough password", role=Role.ADMIN)

    await save_threshold(engine, Settings(), GLOBAL, 0.8, admin.id)
    await save_threshold(engine, Settings(), GLOBAL, 0.85, admin.id)

    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    threshold_changes.c.scope,
                    threshold_changes.c.old_value,
                    threshold_changes.c.new_value,
                    threshold_changes.c.agent_id,
                ).order_by(threshold_changes.c.id)
            )
        ).all()
    assert [tuple(r) for r in rows] == [
        (GLOBAL, 0.9, 0.8, admin.id),
        (GLOBAL, 0.8, 0.85, admin.id),
    ]
