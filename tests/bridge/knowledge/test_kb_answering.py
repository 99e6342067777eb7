"""The knowledge base answering through the real pipeline, embedded mode: the sample KB in the
store, the matcher fitted from it, the answer in the customer's language."""

from __future__ import annotations

import asyncio
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import AuthorKind, ConversationState, HandoffReason, Network
from bridge.knowledge import responder as responder_module
from bridge.knowledge.articles import seed_articles, upsert_articles
from bridge.knowledge.responder import KnowledgeResponder
from bridge.pipeline.responder import Question
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations, decisions, messages
from kb.articles import Article
from tests.bus_helpers import eventually
from tests.conftest import REPO
from tests.factories import entries, inbound

SAMPLE_KB = REPO / "config" / "kb" / "sample.yaml"


@pytest.fixture
async def pipeline(engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings) -> Pipeline:
    await seed_articles(engine, SAMPLE_KB)
    return Pipeline(engine, memory_bus, settings, KnowledgeResponder(engine, refresh_seconds=0.01))


async def outcome(engine: AsyncEngine) -> tuple[ConversationState, str | None, list[str]]:
    async with engine.connect() as conn:
        state, reason = (
            await conn.execute(sa.select(conversations.c.state, conversations.c.handoff_reason))
        ).one()
        replies = (
            await conn.execute(
                sa.select(messages.c.text)
                .where(messages.c.author_kind == AuthorKind.BOT)
                .order_by(messages.c.id)
            )
        ).scalars()
        return state, reason, list(replies)


async def test_the_sample_knowledge_base_is_seeded_once(engine: AsyncEngine) -> None:
    assert await seed_articles(engine, SAMPLE_KB) == 30
    assert await seed_articles(engine, SAMPLE_KB) == 0


async def test_a_confident_russian_question_gets_the_russian_answer_and_stays_with_the_bot(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(inbound(1, 1, "Как поменять пароль от вайфая?")))

    state, reason, replies = await outcome(engine)
    assert (state, reason) == (ConversationState.BOT, None)
    assert replies[0].startswith("Пароль Wi-Fi меняется в настройках роутера")
    assert replies[0].endswith("Этот ответ помог?")


async def test_a_confident_english_question_gets_the_english_answer(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(inbound(1, 1, "how can I change my wifi password")))

    state, _, replies = await outcome(engine)
    assert state is ConversationState.BOT
    assert replies[0].startswith("The Wi-Fi password is changed in the router settings")


async def test_the_answer_is_recorded_with_its_article(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(inbound(1, 1, "how can I change my wifi password")))

    async with engine.connect() as conn:
        article, confidence = (
            await conn.execute(sa.select(decisions.c.article_id, decisions.c.confidence))
        ).one()
    assert article == "wifi-password"
    assert confidence >= 0.9


async def test_a_question_the_knowledge_base_does_not_cover_is_handed_off(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(inbound(1, 1, "как испечь торт с вишней?")))

    state, reason, replies = await outcome(engine)
    assert (state, reason, replies) == (
        ConversationState.WAITING,
        HandoffReason.LOW_CONFIDENCE,
        [],
    )


GIFT_CARDS = Article(
    id="gift-cards",
    answers={"en": "Gift cards are sold in our shops."},
    examples=(
        "do you sell gift cards",
        "can I buy a gift card",
        "gift card for a friend",
        "where to get a gift certificate",
        "gift cards available?",
    ),
)


def answers_with(responder: KnowledgeResponder, article_id: str, text: str):
    async def check() -> bool:
        found = await responder.best_matches([text])
        return bool(found) and found[0][0] == article_id

    return check


async def test_an_article_imported_while_running_is_answered_without_a_restart(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await seed_articles(engine, SAMPLE_KB)
    responder = KnowledgeResponder(engine, refresh_seconds=0.01)
    pipeline = Pipeline(engine, memory_bus, settings, responder)
    await pipeline.handle(entries(inbound(1, 1, "Как поменять пароль от вайфая?")))
    await upsert_articles(engine, [GIFT_CARDS])
    await eventually(answers_with(responder, "gift-cards", "can I buy a gift card"), 30, "refit")
    await pipeline.handle(entries(inbound(2, 1, "can I buy a gift card")))

    async with engine.connect() as conn:
        article_ids = (await conn.execute(sa.select(decisions.c.article_id))).scalars().all()
    assert article_ids[-1] == "gift-cards"


async def test_questions_are_answered_by_the_previous_matcher_while_a_refit_runs(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    await seed_articles(engine, SAMPLE_KB)
    responder = KnowledgeResponder(engine, refresh_seconds=0.01)
    await responder.prepare()
    gate = threading.Event()
    real_fit = responder_module._fit

    def held_fit(*args):
        gate.wait(timeout=60)
        return real_fit(*args)

    monkeypatch.setattr(responder_module, "_fit", held_fit)
    await upsert_articles(engine, [GIFT_CARDS])
    await asyncio.sleep(0.05)
    try:
        answer = await asyncio.wait_for(
            responder.answer(Question(1, Network.TELEGRAM, "Как поменять пароль от вайфая?", "ru")),
            timeout=5,
        )
        assert answer is not None and answer.article_id == "wifi-password"
    finally:
        gate.set()
    await eventually(answers_with(responder, "gift-cards", "can I buy a gift card"), 30, "refit")


async def test_a_refit_that_fails_leaves_the_previous_matcher_answering(
    engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    await seed_articles(engine, SAMPLE_KB)
    responder = KnowledgeResponder(engine, refresh_seconds=0.01)
    await responder.prepare()

    async def unreachable(engine: AsyncEngine) -> list[Article]:
        raise OSError("the store is unreachable")

    monkeypatch.setattr(responder_module, "load_articles", unreachable)
    await upsert_articles(engine, [GIFT_CARDS])
    await asyncio.sleep(0.05)
    await responder.answer(Question(1, Network.TELEGRAM, "can I buy a gift card", "en"))

    async def said() -> bool:
        return "refit failed (the store is unreachable)" in caplog.text

    await eventually(said, 10, "the failure logged")
    answer = await responder.answer(
        Question(1, Network.TELEGRAM, "Как поменять пароль от вайфая?", "ru")
    )
    assert answer is not None and answer.article_id == "wifi-password"


async def test_without_articles_every_conversation_goes_to_the_agents(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = Pipeline(engine, memory_bus, settings, KnowledgeResponder(engine, 0.01))
    await pipeline.handle(entries(inbound(1, 1, "how can I change my wifi password")))

    state, reason, _ = await outcome(engine)
    assert (state, reason) == (ConversationState.WAITING, HandoffReason.NO_RESPONDER)
