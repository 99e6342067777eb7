"""`supportbridge run --sandbox` with the bundled embedding model (SB_KB_EMBEDDINGS=bundled): a
Telegram customer's question worded with none of its article's example words is answered from
the sample knowledge base, which the lexical matcher alone would hand to an agent."""

from __future__ import annotations

import contextlib
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bridge.settings import Settings
from kb.io import read_articles
from kb.matcher import Matcher
from kb.normalize import stem, tokens
from tests.conftest import REPO, running_sandbox, sandbox_bot_messages, sandbox_customer_writes

SAMPLE_KB = REPO / "config" / "kb" / "sample.yaml"
# "a list of TV programmes": the article's examples say каналы, пакет, список, тв
QUESTION = "перечень телепередач"
ARTICLE = "tv-channels"


@dataclass(frozen=True)
class Sandbox:
    base: str
    data_dir: Path


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """The sandbox with the bundled model, once it reports ready (the model loaded, the matcher
    fitted, the examples' vectors kept)."""
    data_dir = tmp_path_factory.mktemp("run")
    with running_sandbox(data_dir, SB_KB_EMBEDDINGS="bundled") as base:
        yield Sandbox(base, data_dir)


def first_bot_message(base: str, user_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        messages = sandbox_bot_messages(base, user_id)
        if messages:
            return messages[0]
        assert time.monotonic() < deadline, "the bot did not reply"
        time.sleep(0.2)


def test_the_question_shares_no_word_with_its_articles_examples() -> None:
    (article,) = [a for a in read_articles(SAMPLE_KB) if a.id == ARTICLE]
    example_words = {stem(word) for text in article.examples for word in tokens(text)}

    assert {stem(word) for word in tokens(QUESTION)} & example_words == set()


def test_the_lexical_matcher_alone_would_not_answer_the_question() -> None:
    best = Matcher.fit(read_articles(SAMPLE_KB)).match(QUESTION, k=1)[0]

    assert best.confidence < Settings().auto_answer_threshold


@pytest.mark.slow
def test_a_question_worded_unlike_any_example_is_answered_by_meaning(sandbox: Sandbox) -> None:
    sandbox_customer_writes(sandbox.base, 9101, QUESTION, "Ольга")

    reply = first_bot_message(sandbox.base, 9101)

    assert reply["text"].startswith("В пакете «Базовый» — 120 каналов")
    assert reply["text"].endswith("Этот ответ помог?")


@pytest.mark.slow
def test_the_examples_vectors_are_kept_in_the_store_under_the_models_name(
    sandbox: Sandbox,
) -> None:
    examples = {text for a in read_articles(SAMPLE_KB) for text in a.examples if text.strip()}

    with contextlib.closing(sqlite3.connect(sandbox.data_dir / "supportbridge.db")) as conn:
        models = conn.execute("SELECT model, count(*) FROM example_vectors GROUP BY model")
        kept = [(model.split("@")[0], count) for model, count in models]

    assert kept == [("multilingual-e5-small-q4", len(examples))]


@pytest.mark.slow
def test_metrics_show_the_bundled_model_matching(sandbox: Sandbox) -> None:
    with urllib.request.urlopen(f"{sandbox.base}/metrics", timeout=5) as response:
        metrics = response.read().decode()

    assert 'sb_kb_embeddings_active{backend="bundled"} 1.0' in metrics
