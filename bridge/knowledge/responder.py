"""The default responder: the best knowledge-base article for a question, with the matcher's
calibrated confidence, the answer in the customer's language.

Each process keeps its own matcher, fitted from the articles in the store and fitted again when
they change (checked at most every `kb_refresh_seconds`), so an import reaches every running
core process without a restart. A refit runs in the background: until it is done, questions are
answered by the matcher fitted before (only the first fit is waited for). With an embedding
backend (`kb_embeddings`), the examples' vectors are read from the store and only the examples it
lacks are embedded, then kept there. The brand's own share of questions no article answers,
estimated from its judged evidence at most hourly, enters the fit (`bridge.knowledge.out_of_scope`).
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
from bridge.knowledge.embedders import PROCESS_EMBEDDERS, Embedders, EmbeddingChoice
from bridge.knowledge.example_vectors import keep_vectors, load_vectors
from bridge.knowledge.out_of_scope import OutOfScopeEstimate, estimate_out_of_scope
from bridge.pipeline.responder import Answer, Question, Responder
from bridge.settings import Settings
from bridge.store.models import articles
from bridge.util.metrics import KB_EMBEDDING_FAILURES, KB_EMBEDDINGS_ACTIVE
from kb.articles import Article
from kb.embedding import EmbeddingError
from kb.embedding.base import Embedder, Vectors
from kb.matcher import Match, Matcher, MatcherConfig, MatcherError

log = logging.getLogger(__name__)
# the estimate reads weeks of decisions: far less often than the articles' version
OUT_OF_SCOPE_REFRESH_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class Suggestion:
    article_id: str
    title: str
    answer: str
    confidence: float


class KnowledgeResponder:
    def __init__(
        self,
        engine: AsyncEngine,
        refresh_seconds: float,
        embeddings: EmbeddingChoice | str = "none",
        embedders: Embedders = PROCESS_EMBEDDERS,
    ) -> None:
        """`embeddings`: the backend, or its name alone."""
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._embedding = EmbeddingChoice(embeddings) if isinstance(embeddings, str) else embeddings
        self._embedders = embedders
        self._checked_at = float("-inf")
        self._version: tuple[object, ...] | None = None
        self._matcher: Matcher | None = None
        self._articles: dict[str, Article] = {}
        self._lock = asyncio.Lock()
        self._refit: asyncio.Task[None] | None = None
        self._out_of_scope: OutOfScopeEstimate | None = None
        self._estimated_at = float("-inf")

    async def prepare(self) -> None:
        """Read the articles now and wait for their matcher: before the first customer's message
        (seconds of CPU), or to have a change answered from at once."""
        self._checked_at = float("-inf")
        await self._refresh()
        if self._refit is not None:
            await asyncio.shield(self._refit)

    @property
    def embedder_name(self) -> str | None:
        """The model the matcher matches with; None: lexically (or no matcher yet)."""
        return self._matcher.embedder_name if self._matcher is not None else None

    async def answer(self, question: Question) -> Answer | None:
        await self._refresh()
        found = await self._match([question.text], k=1)
        if not found or not found[0]:
            return None
        best = found[0][0]
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
            tags=article.tags,
        )

    async def search(self, text: str, language: str | None, k: int = 5) -> list[Suggestion]:
        """The best articles for an agent looking for an answer (no threshold: a person
        decides), each with its answer in the customer's language."""
        await self._refresh()
        if not text.strip():
            return []
        matched = await self._match([text], k)
        found = []
        for match in matched[0] if matched else []:
            article = self._articles[match.article_id]
            answer = article.answer_for(language)
            if answer is not None:
                found.append(Suggestion(article.id, article.title, answer, match.confidence))
        return found

    async def best_matches(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """(article id, confidence) of the best article for each text; empty without a KB."""
        await self._refresh()
        matched = await self._match(texts, 1)
        return [(matches[0].article_id, matches[0].confidence) for matches in matched]

    async def _match(self, texts: Sequence[str], k: int) -> list[list[Match]]:
        """The matcher's best `k` for each text; nothing without a matcher or when the model
        fails on the texts (the question goes to the agents: a worker never crashes on it)."""
        matcher = self._matcher
        if matcher is None:
            return []
        if matcher.embedder_name is None:
            # words alone: a millisecond or two, mostly holding the GIL, so a thread would free
            # the loop little and cost every message a hop
            return matcher.match_many(texts, k)
        try:
            # A model takes tens of milliseconds a question; on the event loop, a batch of them
            # would stall the process's leases, heartbeats and sockets for seconds.
            return await asyncio.to_thread(matcher.match_many, texts, k)
        except EmbeddingError as exc:
            log.warning(
                "knowledge base: embedding backend %r failed on a question (%s); not answered",
                self._embedding.backend,
                exc,
            )
            KB_EMBEDDING_FAILURES.labels(self._embedding.backend, "question").inc()
            return []

    async def _refresh(self) -> None:
        if time.monotonic() - self._checked_at >= self._refresh_seconds:
            await self._check()
        if self._version is None and self._refit is not None:
            # nothing to answer from yet: the first fit is worth waiting for
            await asyncio.shield(self._refit)

    async def _check(self) -> None:
        """Start a refit when the stored articles changed and none is under way."""
        async with self._lock:
            if time.monotonic() - self._checked_at < self._refresh_seconds:
                return
            self._checked_at = time.monotonic()
            if self._refit is not None and not self._refit.done():
                return
            version = await self._stored_version()
            if version != self._version:
                self._refit = asyncio.create_task(self._fit_version(version))
                self._refit.add_done_callback(_log_failure)

    async def _fit_version(self, version: tuple[object, ...]) -> None:
        """Fit on the stored articles and answer from them once done."""
        items = await load_articles(self._engine)
        config = MatcherConfig(out_of_scope_share=self._brand_share())
        # loading a model and fitting are CPU work of seconds: off the loop, so webhooks
        # are still answered
        embedder = await asyncio.to_thread(self._embedders.get, self._embedding)
        known: dict[str, Vectors] = {}
        if embedder is not None:
            known = await load_vectors(self._engine, embedder.name, _examples(items))
        matcher = await asyncio.to_thread(
            _fit, items, embedder, known, self._embedding.backend, config
        )
        self._matcher = matcher
        self._articles = {article.id: article for article in items}
        self._version = version
        computed = _computed(matcher, known)
        log.info(
            "knowledge base: %d articles, %s%s",
            len(items),
            _state(matcher, known, computed),
            _share_note(config.out_of_scope_share),
        )
        if embedder is not None:
            await self._keep_vectors(embedder, computed, items)

    async def _keep_vectors(
        self, embedder: Embedder, computed: dict[str, Vectors], items: Sequence[Article]
    ) -> None:
        """Store what was embedded, drop what no article uses any more; a store that fails here
        costs only embedding them again at the next fit."""
        try:
            await keep_vectors(
                self._engine, embedder.name, computed, _examples(items, enabled_only=False)
            )
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.warning("knowledge base: example vectors not kept (%s)", exc)

    async def _stored_version(self) -> tuple[object, ...]:
        """What a fit depends on: the articles, and the brand's share to the point."""
        a = articles.c
        async with self._engine.connect() as conn:
            row = (await conn.execute(sa.select(sa.func.count(), sa.func.max(a.updated_at)))).one()
        if time.monotonic() - self._estimated_at >= OUT_OF_SCOPE_REFRESH_SECONDS:
            self._out_of_scope = await estimate_out_of_scope(self._engine)
            self._estimated_at = time.monotonic()
        share = self._brand_share()
        return (*row, None if share is None else round(share, 2))

    def _brand_share(self) -> float | None:
        """The estimated share, once enough questions were judged for it to say something."""
        estimate = self._out_of_scope
        return estimate.share if estimate is not None and estimate.usable else None


def _log_failure(refit: asyncio.Task[None]) -> None:
    """A refit that failed (the store unreachable, say) is said, and tried again at the next
    check; the matcher fitted before keeps answering."""
    if not refit.cancelled() and (exc := refit.exception()) is not None:
        log.error("knowledge base: refit failed (%s); answering from the previous one", exc)


def _fit(
    items: Sequence[Article],
    embedder: Embedder | None,
    known: dict[str, Vectors],
    backend: str,
    config: MatcherConfig,
) -> Matcher | None:
    try:
        try:
            matcher = Matcher.fit(items, config=config, embedder=embedder, known_vectors=known)
        except EmbeddingError as exc:
            log.warning(
                "knowledge base: embedding backend %r cannot embed the examples (%s); "
                "matching lexically",
                backend,
                exc,
            )
            KB_EMBEDDING_FAILURES.labels(backend, "fit").inc()
            KB_EMBEDDINGS_ACTIVE.labels(backend).set(0)
            return Matcher.fit(items, config=config)
    except MatcherError as exc:
        log.warning("knowledge base cannot be used yet: %s", exc)
        return None
    if embedder is not None:
        KB_EMBEDDINGS_ACTIVE.labels(backend).set(1)
    return matcher


def _state(matcher: Matcher | None, known: dict[str, Vectors], computed: dict[str, Vectors]) -> str:
    if matcher is None:
        return "nothing to answer from"
    if matcher.embedder_name is None:
        return "matcher ready (lexical)"
    return (
        f"matcher ready with {matcher.embedder_name} "
        f"({len(known)} example vectors from the store, {len(computed)} computed)"
    )


def _share_note(share: float | None) -> str:
    if share is None:
        return ""
    return f"; {share:.0%} of judged questions had no right article (the confidence allows for it)"


def _examples(items: Sequence[Article], enabled_only: bool = True) -> set[str]:
    """The example texts the matcher embeds (those of enabled articles), or any article has."""
    return {
        text
        for article in items
        if article.enabled or not enabled_only
        for text in article.examples
        if text.strip()
    }


def _computed(matcher: Matcher | None, known: dict[str, Vectors]) -> dict[str, Vectors]:
    """The vectors this fit embedded (not read from the store)."""
    if matcher is None or matcher.embedder_name is None:
        return {}
    return {text: v for text, v in matcher.example_vectors.items() if text not in known}


def knowledge_responder(settings: Settings, engine: AsyncEngine) -> Responder:
    return KnowledgeResponder(engine, settings.kb_refresh_seconds, EmbeddingChoice.of(settings))
