"""The brand's share of questions no article answers, estimated from its judged questions, and
a confidence that allows for it."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.knowledge.articles import seed_articles
from bridge.knowledge.out_of_scope import MIN_JUDGED, estimate, estimate_out_of_scope
from bridge.knowledge.responder import KnowledgeResponder
from bridge.settings import Settings
from kb.io import read_articles
from tests.conftest import REPO
from tests.factories import judged_answers

SAMPLE_KB = REPO / "config" / "kb" / "sample.yaml"


def test_the_interval_holds_the_share_and_narrows_with_more_judged_questions() -> None:
    few, many = estimate(10, 40), estimate(100, 400)

    assert few.share == many.share == 0.25
    assert few.low < 0.25 < few.high
    assert many.high - many.low < few.high - few.low


def test_nothing_judged_says_nothing() -> None:
    nothing = estimate(0, 0)

    assert (nothing.low, nothing.high, nothing.usable) == (0.0, 1.0, False)


async def test_the_share_is_that_of_judged_questions_whose_best_article_was_wrong(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await judged_answers(engine, memory_bus, settings, right=30, wrong=10)

    found = await estimate_out_of_scope(engine)

    assert (found.share, found.judged, found.usable) == (0.25, 40, True)


async def test_too_few_judged_questions_are_not_used(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await judged_answers(
        engine, memory_bus, settings, right=MIN_JUDGED // 2 - 1, wrong=MIN_JUDGED // 2
    )

    assert not (await estimate_out_of_scope(engine)).usable


async def test_a_brand_whose_questions_articles_often_miss_gets_a_more_careful_bot(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await seed_articles(engine, SAMPLE_KB)
    # the examples' words without the first: near the articles, but not their own questions
    questions = [
        " ".join(text.split()[1:]) for a in read_articles(SAMPLE_KB) for text in a.examples
    ]
    before = await KnowledgeResponder(engine, refresh_seconds=0.01).best_matches(questions)

    await judged_answers(engine, memory_bus, settings, right=30, wrong=30)
    after = await KnowledgeResponder(engine, refresh_seconds=0.01).best_matches(questions)

    sure_before = sum(confidence >= 0.9 for _, confidence in before)
    sure_after = sum(confidence >= 0.9 for _, confidence in after)
    assert sure_after < sure_before
