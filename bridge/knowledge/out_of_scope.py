"""How many of a brand's questions no article answers, estimated from its own evidence.

Brands differ: one KB covers nearly every question, another a third of them, and a confidence
fitted as if the share were small over-promises where it is large. The evidence is the judged
questions of the last weeks: an agent's shadow-mode verdict or the customer's "did this help?" on
the best article. A question whose best article was judged wrong is counted as one no article
answers; it may instead be one another article answers, so the share is an upper bound, which
errs on the careful side.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.knowledge.evidence import label
from bridge.store.models import decisions, utcnow
from kb.calibration import wilson_lower

WEEKS = 4
# fewer judged questions than this say too little to move the confidence
MIN_JUDGED = 30
# 95 % two-sided interval
Z = 1.96


@dataclass(frozen=True, slots=True)
class OutOfScopeEstimate:
    share: float
    low: float
    high: float
    judged: int

    @property
    def usable(self) -> bool:
        """Enough judged questions for the matcher to take the share into account."""
        return self.judged >= MIN_JUDGED


def estimate(wrong: int, judged: int) -> OutOfScopeEstimate:
    """The share `wrong / judged` with its Wilson interval."""
    if not judged:
        return OutOfScopeEstimate(0.0, 0.0, 1.0, 0)
    counts = np.array([float(wrong), float(judged - wrong)])
    low, right_low = wilson_lower(counts, np.full(2, float(judged)), Z)
    return OutOfScopeEstimate(wrong / judged, float(low), float(1 - right_low), judged)


async def estimate_out_of_scope(engine: AsyncEngine, weeks: float = WEEKS) -> OutOfScopeEstimate:
    """The share from the judged questions decided in the last `weeks`."""
    d = decisions.c
    since = utcnow() - dt.timedelta(weeks=weeks)
    query = sa.select(d.feedback, d.verdict).where(
        d.created_at >= since,
        d.confidence.is_not(None),
        sa.or_(d.feedback.is_not(None), d.verdict.is_not(None)),
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    verdicts = [label(feedback, verdict) for feedback, verdict in rows]
    judged = [v for v in verdicts if v is not None]
    return estimate(sum(1 for v in judged if not v), len(judged))
