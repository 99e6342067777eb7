"""The default responder: the best knowledge-base article for a question, with the matcher's
calibrated confidence, the answer in the customer's language.

Each process keeps its own matcher, fitted from the articles in the store and fitted again when
they change (checked at most every `kb_refresh_seconds`), so an import reaches every running
core process without a restart.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.knowledge.articles import load_articles
from bridge.pipeline.responder import Answer, Question, Responder
from bridge.settings import Settings
from bridge.store.models import articles
from kb.articles import Article
from kb.matcher import Matcher, MatcherError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Suggestion:
    article_id: str
    title: str
    answer: str
    confidence: float


class KnowledgeResponder:
    def __init__(self, engine: AsyncEngine, refresh_seconds: float) -> None:
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._checked_at = float("-inf")
        self._version: tuple[object, ...] | None = None
        self._matcher: Matcher | None = None
        self._articles: dict[str, Article] = {}
        self._lock = asyncio.Lock()

    async def prepare(self) -> None:
        """Fit the matcher now, not on the first customer's message (seconds of CPU)."""
        await self._refresh()

    async def answer(self, question: Question) -> Answer | None:
        await self._refresh()
        if self._matcher is None:
            return None
        matches = self._matcher.match(question.text, k=1)
        if not matches:
            return None
        best = matches[0]
        article = self._articles[best.article_id]
        text = article.answer_for(question.language)
        if text is None:
            return None
        return Answer(
            text=text,
            confidence=best.confidence,
            article_id=article.id,
            threshold=article.threshold,
            never_auto=article.never_auto,
        )

    async def search(self, text: str, language: str | None, k: int = 5) -> list[Suggestion]:
        """The best articles for an agent looking for an answer (no threshold: a person
        decides), each with its answer in the customer's language."""
        await self._refresh()
        if self._matcher is None or not text.strip():
            return []
        found = []
        for match in self._matcher.match(text, k=k):
            article = self._articles[match.article_id]
            answer = article.answer_for(language)
            if answer is not None:
                found.append(Suggestion(article.id, article.title, answer, match.confidence))
        return found

    async def best_matches(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(article id, confidence) of the best article for each text; empty without a KB."""
        await self._refresh()
        if self._matcher is None:
            return []
        return [
            (matches[0].article_id, matches[0].confidence)
            for matches in self._matcher.match_many(texts, k=1)
        ]

    async def _refresh(self) -> None:
        if time.monotonic() - self._checked_at < self._refresh_seconds:
            return
        async with self._lock:
            if time.monotonic() - self._checked_at < self._refresh_seconds:
                return
            self._checked_at = time.monotonic()
            version = await self._stored_version()
            if version == self._version:
                return
            items = await load_articles(self._engine)
            # fitting is CPU work of up to seconds: off the loop, so webhooks are still answered
            matcher = await asyncio.to_thread(_fit, items)
            self._matcher = matcher
            self._articles = {article.id: article for article in items}
            self._version = version
            log.info(
                "knowledge base: %d articles, %s",
                len(items),
                "matcher ready" if matcher else "nothing to answer from",
            )

    async def _stored_version(self) -> tuple[object, ...]:
        a = articles.c
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(sa.func.count(), sa.func.max(a.updated_at)))).one()
        return tuple(row)


def _fit(items: Sequence[Article]) -> Matcher | None:
    try:
        return Matcher.fit(items)
    except MatcherError as exc:
        log.warning("knowledge base cannot be used yet: %s", exc)
        return None


def knowledge_responder(settings: Settings, engine: AsyncEngine) -> Responder:
    return KnowledgeResponder(engine, settings.kb_refresh_seconds)
