"""Which team takes a conversation handed to people, and which labels it gets: the admins'
routing rules (`routing_rules`, kept by `bridge.inbox.routing_rules`), and the teams' business
hours (a customer handed to a closed team is told when it opens). Both are re-read from the store
at most every `kb_refresh_seconds`, so that a change reaches every core without a restart."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import Network
from bridge.store.business_hours import BusinessHours, teams_hours
from bridge.store.models import routing_rules, teams


@dataclass(frozen=True, slots=True)
class Rule:
    """Conditions (None holds always) and what a conversation that meets them gets."""

    network: str | None = None
    language: str | None = None
    tag: str | None = None
    reason: str | None = None
    team_id: int | None = None
    label_id: int | None = None

    def holds(
        self, network: Network, language: str | None, tags: Sequence[str], reason: str
    ) -> bool:
        return (
            (self.network is None or self.network == network.value)
            and (self.language is None or self.language == language)
            and (self.tag is None or self.tag in tags)
            and (self.reason is None or self.reason == reason)
        )


@dataclass(frozen=True, slots=True)
class Routing:
    team_id: int | None
    label_ids: tuple[int, ...]


def route_to_team(
    rules: Sequence[Rule],
    network: Network,
    language: str | None,
    tags: Sequence[str],
    reason: str,
) -> Routing:
    """The first rule that holds and names a team decides the team; every rule that holds adds
    its label."""
    holding = [rule for rule in rules if rule.holds(network, language, tags, reason)]
    team = next((rule.team_id for rule in holding if rule.team_id is not None), None)
    labels = dict.fromkeys(rule.label_id for rule in holding if rule.label_id is not None)
    return Routing(team, tuple(labels))


class LiveRules:
    """The rules in force, in their order, and the business hours of the teams that keep them."""

    def __init__(self, engine: AsyncEngine | None, refresh_seconds: float) -> None:
        self._engine = engine
        self._refresh_seconds = refresh_seconds
        self._rules: list[Rule] = []
        self._hours: dict[int, BusinessHours] = {}
        self._read_at = float("-inf")

    async def refresh(self) -> None:
        if self._engine is None or time.monotonic() - self._read_at < self._refresh_seconds:
            return
        self._read_at = time.monotonic()
        r = routing_rules.c
        async with self._engine.connect() as conn:
            rows = await conn.execute(
                sa.select(r.network, r.language, r.tag, r.reason, r.team_id, r.label_id).order_by(
                    r.position, r.id
                )
            )
            self._rules = [Rule(**row._mapping) for row in rows]
            self._hours = await teams_hours(conn, await conn.scalars(sa.select(teams.c.id)))

    def hours_of(self, team_id: int | None) -> BusinessHours | None:
        """The team's business hours; None: no team, or one open around the clock."""
        return self._hours.get(team_id) if team_id is not None else None

    def route(
        self, network: Network, language: str | None, tags: Sequence[str], reason: str
    ) -> Routing:
        return route_to_team(self._rules, network, language, tags, reason)
