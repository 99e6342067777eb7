"""Knowledge gaps: the customer questions the bot could not answer with confidence, grouped into
clusters of alike questions (character n-grams, so typos and word forms still meet), biggest
first, each the seed of a new article."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sklearn.cluster import AgglomerativeClustering
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import DecisionOutcome, Network
from bridge.store.models import decisions, messages

MAX_QUESTIONS = 2000  # the most recent ones: clustering is quadratic in their number
EXAMPLES = 5
# cosine distance under which two groups of questions are one gap
DISTANCE = 0.82


@dataclass(frozen=True, slots=True)
class Gap:
    count: int
    examples: list[str]  # the most typical first


async def unanswered_questions(
    engine: AsyncEngine, since: dt.datetime, network: Network | None = None
) -> list[str]:
    """Questions the bot met with a handoff for want of confidence, or asked to rephrase."""
    d, m = decisions.c, messages.c
    unsure = sa.or_(
        d.outcome == DecisionOutcome.REPHRASE,
        sa.and_(
            d.outcome == DecisionOutcome.HANDOFF,
            d.reason.in_(["low_confidence", "repeated_misses"]),
        ),
    )
    query = (
        sa.select(m.text)
        .join(messages, m.id == d.message_id)
        .where(d.created_at >= since, unsure, m.text != "")
        .order_by(d.id.desc())
        .limit(MAX_QUESTIONS)
    )
    if network is not None:
        query = query.where(d.network == network)
    async with engine.connect() as conn:
        return list((await conn.execute(query)).scalars())


def cluster(questions: list[str]) -> list[Gap]:
    texts = [" ".join(q.lower().replace("ё", "е").split()) for q in questions]
    if len(texts) < 2:
        return [Gap(1, questions)] if questions else []
    vectors = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(3, 5), sublinear_tf=True
    ).fit_transform(texts)
    labels = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=DISTANCE
    ).fit_predict(vectors.toarray())
    gaps = []
    for label in np.unique(labels):
        rows = np.flatnonzero(labels == label)
        centre = np.asarray(vectors[rows].mean(axis=0))
        closeness = np.asarray(vectors[rows] @ centre.T).ravel()
        typical = [questions[rows[i]] for i in np.argsort(-closeness)]
        unique = list(dict.fromkeys(typical))
        gaps.append(Gap(len(rows), unique[:EXAMPLES]))
    return sorted(gaps, key=lambda gap: (-gap.count, gap.examples[0]))


async def knowledge_gaps(
    engine: AsyncEngine, since: dt.datetime, network: Network | None = None
) -> list[Gap]:
    return cluster(await unanswered_questions(engine, since, network))
