"""The routing rules admins keep: when a conversation is handed to people, which team takes it and
which labels it gets, by its network, language, the best article's tags and the handoff reason.
A rule with words is a listening rule: it holds for a public comment that contains any of its
words or phrases (in any word form), and may mark the thread urgent. They are applied by the
pipeline (`bridge.pipeline.team_routing`), in their order."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import HandoffReason, Network
from bridge.store.models import labels, routing_rules, teams, utcnow

_LANGUAGE = re.compile(r"^[a-z]{2,3}$")
MAX_TAG_CHARS = 64
MAX_WORD_CHARS = 64
MAX_WORDS = 50


class RuleError(ValueError):
    """A rule refused, with the reason."""


class RuleNotFound(LookupError):
    """No rule has this id."""


@dataclass(frozen=True, slots=True)
class RuleDraft:
    """Conditions (None: any) and what a conversation that meets them gets (one at least)."""

    network: Network | None = None
    language: str | None = None
    tag: str | None = None
    reason: HandoffReason | None = None
    team_id: int | None = None
    label_id: int | None = None
    words: tuple[str, ...] = ()
    urgent: bool = False


@dataclass(frozen=True, slots=True)
class RoutingRule:
    id: int
    position: int
    network: Network | None
    language: str | None
    tag: str | None
    reason: HandoffReason | None
    team_id: int | None
    label_id: int | None
    words: tuple[str, ...]
    urgent: bool


def split_words(text: str) -> tuple[str, ...]:
    """Words or phrases as an admin types them: separated by commas or lines."""
    return tuple(w for w in (p.strip() for p in text.replace(",", "\n").splitlines()) if w)


def _checked_words(words: tuple[str, ...]) -> tuple[str, ...]:
    kept = tuple(dict.fromkeys(" ".join(w.split()) for w in words if w.strip()))
    if len(kept) > MAX_WORDS:
        raise RuleError(f"a rule has at most {MAX_WORDS} words or phrases")
    for word in kept:
        if len(word) > MAX_WORD_CHARS or not word.isprintable():
            raise RuleError(f"a word or phrase has at most {MAX_WORD_CHARS} printable characters")
        if not any(ch.isalnum() for ch in word):
            raise RuleError(f"{word!r} has no letter or digit to look for")
    return kept


def _checked(draft: RuleDraft) -> RuleDraft:
    words = _checked_words(draft.words)
    if draft.urgent and not words:
        raise RuleError("only a rule with words marks comments urgent")
    if draft.team_id is None and draft.label_id is None and not draft.urgent:
        raise RuleError("a rule gives a team, a label or both, or marks comments urgent")
    language = draft.language.strip().lower() if draft.language else None
    if language is not None and not _LANGUAGE.fullmatch(language):
        raise RuleError("a language is its two- or three-letter code, e.g. ru or en")
    tag = draft.tag.strip() if draft.tag else None
    if tag is not None and (len(tag) > MAX_TAG_CHARS or not tag.isprintable()):
        raise RuleError(f"a tag has at most {MAX_TAG_CHARS} printable characters")
    return RuleDraft(
        draft.network,
        language,
        tag,
        draft.reason,
        draft.team_id,
        draft.label_id,
        words,
        draft.urgent,
    )


_COLUMNS = tuple(routing_rules.c[name] for name in RoutingRule.__slots__)


def _rule(row: sa.Row[tuple[object, ...]]) -> RoutingRule:
    values = dict(row._mapping)
    values["network"] = Network(values["network"]) if values["network"] else None
    values["reason"] = HandoffReason(values["reason"]) if values["reason"] else None
    values["words"] = tuple((values["words"] or "").splitlines())
    return RoutingRule(**values)


async def list_rules(engine: AsyncEngine) -> list[RoutingRule]:
    """Every rule, in the order they are tried."""
    r = routing_rules.c
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(*_COLUMNS).order_by(r.position, r.id))
        return [_rule(row) for row in rows]


async def add_rule(engine: AsyncEngine, draft: RuleDraft) -> RoutingRule:
    """A new rule, tried after those there are."""
    draft = _checked(draft)
    r = routing_rules.c
    async with engine.begin() as conn:
        if draft.team_id is not None and (
            await conn.scalar(sa.select(teams.c.id).where(teams.c.id == draft.team_id)) is None
        ):
            raise RuleError(f"no team has the id {draft.team_id}")
        if draft.label_id is not None and (
            await conn.scalar(sa.select(labels.c.id).where(labels.c.id == draft.label_id)) is None
        ):
            raise RuleError(f"no label has the id {draft.label_id}")
        last = await conn.scalar(sa.select(sa.func.max(r.position)))
        inserted = await conn.execute(
            sa.insert(routing_rules)
            .values(
                position=(last or 0) + 1,
                network=draft.network.value if draft.network else None,
                language=draft.language,
                tag=draft.tag,
                reason=draft.reason.value if draft.reason else None,
                team_id=draft.team_id,
                label_id=draft.label_id,
                words="\n".join(draft.words) or None,
                urgent=draft.urgent,
                created_at=utcnow(),
            )
            .returning(*_COLUMNS)
        )
        return _rule(inserted.one())


async def delete_rule(engine: AsyncEngine, rule_id: int) -> None:
    async with engine.begin() as conn:
        deleted = await conn.execute(sa.delete(routing_rules).where(routing_rules.c.id == rule_id))
    if deleted.rowcount != 1:
        raise RuleNotFound(rule_id)


async def move_rule(engine: AsyncEngine, rule_id: int, *, earlier: bool) -> list[RoutingRule]:
    """Swap the rule with the one tried before it (`earlier`) or after it; at an end, nothing."""
    rules = await list_rules(engine)
    at = next((n for n, rule in enumerate(rules) if rule.id == rule_id), None)
    if at is None:
        raise RuleNotFound(rule_id)
    other = at - 1 if earlier else at + 1
    if not 0 <= other < len(rules):
        return rules
    rules[at], rules[other] = rules[other], rules[at]
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(routing_rules)
            .where(routing_rules.c.id == sa.bindparam("rule_id"))
            .values(position=sa.bindparam("new_position")),
            [{"rule_id": rule.id, "new_position": n + 1} for n, rule in enumerate(rules)],
        )
    return await list_rules(engine)
