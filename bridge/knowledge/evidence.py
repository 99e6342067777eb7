"""What each threshold would do, from evidence: the stored questions of the last weeks (their
best article's confidence) give the coverage; the customers' "did this help?", the agents'
verdicts on shadow-mode suggestions and an optional labelled file give the precision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import Network
from bridge.pipeline.phrases import FEEDBACK_NO, FEEDBACK_YES
from bridge.store.models import decisions, utcnow

STEPS = 101  # thresholds 0.00, 0.01, ... 1.00


@dataclass(frozen=True, slots=True)
class Evidence:
    confidence: float
    right: bool | None  # None: nobody said whether the article was right


@dataclass(frozen=True, slots=True)
class Point:
    threshold: float
    coverage: float  # share of questions the bot would answer
    precision: float | None  # share of judged answers that were right (None: none judged)
    answered_per_week: float
    judged: int


@dataclass(frozen=True, slots=True)
class Curve:
    questions: int
    judged: int
    weeks: float
    points: list[Point]

    def at(self, threshold: float) -> Point:
        return self.points[min(STEPS - 1, max(0, round(threshold * (STEPS - 1))))]


def label(feedback: str | None, verdict: str | None) -> bool | None:
    """The agent's verdict is the stronger evidence; a customer's "no" may mean another need."""
    if verdict is not None:
        return verdict == "accepted"
    if feedback == FEEDBACK_YES:
        return True
    if feedback == FEEDBACK_NO:
        return False
    return None


async def stored_evidence(
    engine: AsyncEngine,
    *,
    since: dt.datetime,
    network: Network | None = None,
    article_id: str | None = None,
) -> list[Evidence]:
    """Every customer question decided since then with a best article and its confidence."""
    d = decisions.c
    query = sa.select(d.confidence, d.feedback, d.verdict).where(
        d.created_at >= since, d.confidence.is_not(None)
    )
    if network is not None:
        query = query.where(d.network == network)
    if article_id is not None:
        query = query.where(d.article_id == article_id)
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [Evidence(float(c), label(f, v)) for c, f, v in rows]


def curve(questions: Sequence[Evidence], judged_extra: Sequence[Evidence], weeks: float) -> Curve:
    """Coverage from the questions; precision from their labels and `judged_extra` (a labelled
    file: judged, but not part of the traffic)."""
    judged = [e for e in questions if e.right is not None] + list(judged_extra)
    points = []
    for step in range(STEPS):
        t = step / (STEPS - 1)
        answered = sum(1 for e in questions if e.confidence >= t)
        over = [e for e in judged if e.confidence >= t]
        right = sum(1 for e in over if e.right)
        points.append(
            Point(
                threshold=round(t, 2),
                coverage=answered / len(questions) if questions else 0.0,
                precision=right / len(over) if over else None,
                answered_per_week=answered / weeks if weeks else 0.0,
                judged=len(over),
            )
        )
    return Curve(len(questions), len(judged), weeks, points)


async def threshold_curve(
    engine: AsyncEngine,
    *,
    weeks: float,
    network: Network | None = None,
    article_id: str | None = None,
    labelled: Sequence[Evidence] = (),
) -> Curve:
    since = utcnow() - dt.timedelta(weeks=weeks)
    questions = await stored_evidence(engine, since=since, network=network, article_id=article_id)
    return curve(questions, labelled, weeks)
