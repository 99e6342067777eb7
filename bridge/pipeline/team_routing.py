"""Which team takes a conversation handed to people, and which labels it gets: the admins'
routing rules (`routing_rules`, kept by `bridge.inbox.routing_rules`), and the teams' business
hours (a customer handed to a closed team is told when it opens). A rule with words is also a
listening rule: every public comment that contains one of them (in any of its word forms) is
routed by it, even in a thread people have already, and marked urgent if the rule says so
(`bridge.pipeline.route`). Both are re-read from the store
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
from kb.normalize import stem, tokens


@dataclass(frozen=True, slots=True)
class Rule:
    """Conditions (None holds always) and what a conversation that meets them gets."""

    network: str | None = None
    language: str | None = None
    tag: str | None = None
    reason: str | None = None
    team_id: int | None = None
    label_id: int | None = None
    phrases: tuple[tuple[str, ...], ...] = ()  # the words condition, each phrase as its stems
    urgent: bool = False

    def holds(
        self,
        network: Network,
        language: str | None,
        tags: Sequence[str],
        reason: str,
        stems: Sequence[str] = (),
    ) -> bool:
        return (
            (self.network is None or self.network == network.value)
            and (self.language is None or self.language == language)
            and (self.tag is None or self.tag in tags)
            and (self.reason is None or self.reason == reason)
            and (not self.phrases or any(contains(stems, p) for p in self.phrases))
        )


def phrase_stems(phrase: str) -> tuple[str, ...]:
    """A word or phrase as the stems of its words: "не работает" also finds "не работают"."""
    return tuple(stem(word) for word in tokens(phrase))


def contains(stems: Sequence[str], phrase: Sequence[str]) -> bool:
    """Whether the phrase's stems occur in `stems` one after another."""
    size = len(phrase)
    return size > 0 and any(
        tuple(stems[at : at + size]) == tuple(phrase) for at in range(len(stems) - size + 1)
    )


@dataclass(frozen=True, slots=True)
class Routing:
    team_id: int | None
    label_ids: tuple[int, ...]
    urgent: bool = False


def route_to_team(
    rules: Sequence[Rule],
    network: Network,
    language: str | None,
    tags: Sequence[str],
    reason: str,
    text: str = "",
) -> Routing:
    """The first rule that holds and names a team decides the team; every rule that holds adds
    its label; any that holds and is urgent makes it urgent. `text`: the customer's words, for
    the rules with words."""
    stems = phrase_stems(text) if text else ()
    holding = [rule for rule in rules if rule.holds(network, language, tags, reason, stems)]
    team = next((rule.team_id for rule in holding if rule.team_id is not None), None)
    labels = dict.fromkeys(rule.label_id for rule in holding if rule.label_id is not None)
    return Routing(team, tuple(labels), any(rule.urgent for rule in holding))


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
                sa.select(
                    r.network, r.language, r.tag, r.reason, r.team_id, r.label_id, r.words, r.urgent
                ).order_by(r.position, r.id)
            )
            self._rules = [
                Rule(
                    row.network,
                    row.language,
                    row.tag,
                    row.reason,
                    row.team_id,
                    row.label_id,
                    tuple(filter(None, map(phrase_stems, (row.words or "").splitlines()))),
                    row.urgent,
                )
                for row in rows
            ]
            self._hours = await teams_hours(conn, await conn.scalars(sa.select(teams.c.id)))

    def hours_of(self, team_id: int | None) -> BusinessHours | None:
        """The team's business hours; None: no team, or one open around the clock."""
        return self._hours.get(team_id) if team_id is not None else None

    def route(
        self, network: Network, language: str | None, tags: Sequence[str], reason: str
    ) -> Routing:
        return route_to_team(self._rules, network, language, tags, reason)

    def listen(
        self, network: Network, language: str | None, reason: str | None, text: str
    ) -> Routing:
        """The rules with words only, for each public comment: the others decided when the
        thread was handed off, and an agent may have moved it since."""
        listening = [rule for rule in self._rules if rule.phrases]
        return route_to_team(listening, network, language, (), reason or "", text)
