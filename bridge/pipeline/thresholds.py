"""Auto-answer thresholds: the settings give the defaults; what an admin saves (audited) wins, and
every running process picks it up within `kb_refresh_seconds`, without a restart.

Scopes: "global", "network:<name>", "article:<id>" (an article's threshold is kept on the
article itself, where the knowledge base's import and export carry it too).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.domain import Network
from bridge.settings import Settings
from bridge.store.models import agents, articles, threshold_changes, thresholds, utcnow

GLOBAL = "global"


class ThresholdError(ValueError):
    """A threshold that cannot be saved, with the reason."""


def network_scope(network: Network) -> str:
    return f"network:{network.value}"


def article_scope(article_id: str) -> str:
    return f"article:{article_id}"


@dataclass(frozen=True, slots=True)
class Change:
    scope: str
    old_value: float | None
    new_value: float | None
    agent: str | None
    at: dt.datetime


class LiveThresholds:
    """The thresholds in force, re-read from the store at most every `refresh_seconds`."""

    def __init__(self, engine: AsyncEngine | None, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._stored: dict[str, float] = {}
        self._read_at = float("-inf")

    async def refresh(self) -> None:
        if self._engine is None:
            return
        if time.monotonic() - self._read_at < self._settings.kb_refresh_seconds:
            return
        self._read_at = time.monotonic()
        self._stored = await stored_thresholds(self._engine)

    def for_answer(self, network: Network, article_threshold: float | None) -> float:
        """Article › network › global, each the stored value over the setting."""
        if article_threshold is not None:
            return article_threshold
        return self.for_network(network)

    def for_network(self, network: Network) -> float:
        stored = self._stored.get(network_scope(network))
        if stored is not None:
            return stored
        configured = self._settings.network_thresholds.get(network)
        return configured if configured is not None else self.global_value()

    def global_value(self) -> float:
        return self._stored.get(GLOBAL, self._settings.auto_answer_threshold)


async def stored_thresholds(engine: AsyncEngine) -> dict[str, float]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(thresholds.c.scope, thresholds.c.value))).all()
    return {scope: value for scope, value in rows}


async def save_threshold(
    engine: AsyncEngine,
    settings: Settings,
    scope: str,
    value: float | None,
    agent_id: int | None,
) -> None:
    """Set (or with None, remove) the threshold of a scope, and record the change (from the
    value in force before: the stored one, else the configured one)."""
    if value is not None and not 0.0 <= value <= 1.0:
        raise ThresholdError("a threshold is between 0 and 1")
    if value is None and scope == GLOBAL:
        raise ThresholdError("the global threshold can be changed, not removed")
    async with engine.begin() as conn:
        old = await _current(conn, scope)
        if old is None:
            old = _configured(settings, scope)
        if scope.startswith("article:"):
            await _set_article(conn, scope.removeprefix("article:"), value)
        elif scope == GLOBAL or scope.removeprefix("network:") in {n.value for n in Network}:
            await conn.execute(sa.delete(thresholds).where(thresholds.c.scope == scope))
            if value is not None:
                await conn.execute(
                    sa.insert(thresholds).values(scope=scope, value=value, updated_at=utcnow())
                )
        else:
            raise ThresholdError(f"unknown scope {scope!r}")
        await conn.execute(
            sa.insert(threshold_changes).values(
                scope=scope, old_value=old, new_value=value, agent_id=agent_id, created_at=utcnow()
            )
        )


def _configured(settings: Settings, scope: str) -> float | None:
    if scope == GLOBAL:
        return settings.auto_answer_threshold
    name = scope.removeprefix("network:")
    if name != scope and name in {n.value for n in Network}:
        return settings.network_thresholds.get(Network(name))
    return None


async def _current(conn: AsyncConnection, scope: str) -> float | None:
    if scope.startswith("article:"):
        query = sa.select(articles.c.threshold).where(
            articles.c.id == scope.removeprefix("article:")
        )
    else:
        query = sa.select(thresholds.c.value).where(thresholds.c.scope == scope)
    return (await conn.execute(query)).scalar_one_or_none()


async def _set_article(conn: AsyncConnection, article_id: str, value: float | None) -> None:
    # updated_at moves too: that is how every process's knowledge base notices the change
    result = await conn.execute(
        sa.update(articles)
        .where(articles.c.id == article_id)
        .values(threshold=value, updated_at=utcnow())
    )
    if result.rowcount != 1:
        raise ThresholdError(f"no article {article_id!r}")


async def recent_changes(engine: AsyncEngine, limit: int = 20) -> list[Change]:
    t = threshold_changes.c
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(t.scope, t.old_value, t.new_value, agents.c.display_name, t.created_at)
                .outerjoin(agents, agents.c.id == t.agent_id)
                .order_by(t.id.desc())
                .limit(limit)
            )
        ).all()
    return [Change(*row) for row in rows]
