"""The service's results over a period: self-service rate, handoffs by reason, first response
times, SLA breaches, the bot's helpfulness, CSAT (customers' ratings of the help agents gave,
overall, per agent and per network), volume per network per day, load per agent, conversations
per label, per team, and public threads apart from private conversations. One function computes
them for the dashboard, the CSV exports and the weekly report alike."""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.domain import AuthorKind, ConversationState, Direction, Network
from bridge.pipeline.phrases import FEEDBACK_YES
from bridge.store.business_hours import teams_hours
from bridge.store.models import (
    agents,
    conversation_labels,
    conversations,
    csat_ratings,
    decisions,
    labels,
    messages,
    teams,
    utcnow,
)
from bridge.store.ratings import SATISFIED


@dataclass(frozen=True, slots=True)
class Period:
    start: dt.datetime
    end: dt.datetime  # exclusive
    network: Network | None = None

    @property
    def days(self) -> list[dt.date]:
        first, last = self.start.date(), (self.end - dt.timedelta(microseconds=1)).date()
        return [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]


@dataclass(frozen=True, slots=True)
class Durations:
    """Seconds until a first response: how many, median and 90th percentile."""

    count: int
    median_s: float | None
    p90_s: float | None

    @classmethod
    def of(cls, values: list[float]) -> Durations:
        if not values:
            return cls(0, None, None)
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        return cls(len(values), statistics.median(ordered), p90)


@dataclass(frozen=True, slots=True)
class AgentLoad:
    agent: str
    conversations: int
    replies: int


@dataclass(frozen=True, slots=True)
class Csat:
    """Customers' ratings (1-5) of the help agents gave: requests sent, ratings given (a
    conversation rated twice counts once, with its latest), their sum, and how many were 4 or 5."""

    asked: int = 0
    rated: int = 0
    total: int = 0
    satisfied: int = 0

    @property
    def mean(self) -> float | None:
        return self.total / self.rated if self.rated else None

    @property
    def satisfied_rate(self) -> float | None:
        return self.satisfied / self.rated if self.rated else None


@dataclass(frozen=True, slots=True)
class AgentCsat:
    agent: str
    csat: Csat


@dataclass(frozen=True, slots=True)
class LabelCount:
    """The conversations started in the period that carry a label, and how many are resolved."""

    label: str
    conversations: int
    resolved: int

    @property
    def resolved_rate(self) -> float | None:
        return self.resolved / self.conversations if self.conversations else None


@dataclass(frozen=True, slots=True)
class TeamFigures:
    """A team's conversations started in the period (those with it now), how many are resolved,
    the agents' first response to those of them handed off, and the CSAT of the requests sent in
    the period for its conversations (the conversation's team, whoever the agent credited)."""

    team: str
    conversations: int
    resolved: int
    first_response: Durations
    csat: Csat

    @property
    def resolved_rate(self) -> float | None:
        return self.resolved / self.conversations if self.conversations else None


@dataclass(frozen=True, slots=True)
class PlaceFigures:
    """Public threads (comments under the brand's posts) or private conversations, apart: those
    started in the period, the customers' messages written in it, how many are resolved, the
    agents' first response to those handed off, and (public only) how many commenters an agent
    took to a private conversation in the period."""

    place: str  # PUBLIC or PRIVATE
    conversations: int
    customer_messages: int
    resolved: int
    first_response: Durations
    moved_to_private: int = 0

    @property
    def resolved_rate(self) -> float | None:
        return self.resolved / self.conversations if self.conversations else None


PUBLIC, PRIVATE = "public", "private"


@dataclass(frozen=True)
class Report:
    period: Period
    conversations: int
    self_service: int
    handoffs: dict[str, int]
    bot_first_response: Durations
    agent_first_response: Durations
    sla_breaches: int
    feedback: int
    helped: int
    volume: dict[Network, dict[dt.date, int]] = field(default_factory=dict)
    load: list[AgentLoad] = field(default_factory=list)
    ratings: Csat = Csat()
    ratings_by_agent: list[AgentCsat] = field(default_factory=list)
    ratings_by_network: dict[Network, Csat] = field(default_factory=dict)
    by_label: list[LabelCount] = field(default_factory=list)
    by_team: list[TeamFigures] = field(default_factory=list)
    by_place: list[PlaceFigures] = field(default_factory=list)

    @property
    def self_service_rate(self) -> float | None:
        return self.self_service / self.conversations if self.conversations else None

    @property
    def csat(self) -> float | None:
        """The share of the bot's answers the customer said helped ("did this help?"): the bot's
        helpfulness, not the customers' rating of the service (that is `ratings`)."""
        return self.helped / self.feedback if self.feedback else None


async def compute(
    engine: AsyncEngine,
    period: Period,
    sla_minutes: dict[Network, int],
    now: dt.datetime | None = None,
) -> Report:
    c, d = conversations.c, decisions.c
    created = [c.created_at >= period.start, c.created_at < period.end]
    if period.network is not None:
        created.append(c.network == period.network)
    async with engine.connect() as conn:
        started = (
            await conn.execute(
                sa.select(
                    c.id, c.network, c.state, c.handed_off_at, c.created_at, c.team_id, c.public
                ).where(*created)
            )
        ).all()
        # a team's SLA counts its working time only
        hours = await teams_hours(conn, {row.team_id for row in started} - {None})
        reasons = (
            await conn.execute(
                sa.select(c.handoff_reason, sa.func.count())
                .where(*created, c.handed_off_at.is_not(None))
                .group_by(c.handoff_reason)
            )
        ).all()
        firsts = await _first_responses(conn, created)
        feedback = (
            await conn.execute(
                sa.select(d.feedback, sa.func.count())
                .join(conversations, c.id == d.conversation_id)
                .where(*created, d.feedback.is_not(None))
                .group_by(d.feedback)
            )
        ).all()
        volume = await _volume(conn, period)
        written = await _written_by_place(conn, period)
        moved = await _moved_to_private(conn, period)
        load = await _load(conn, period)
        ratings = await _ratings(conn, period)
        by_agent = await _ratings(conn, period, agents.c.id, agents.c.display_name)
        by_network = await _ratings(conn, period, csat_ratings.c.network)
        by_label = await _labels(conn, created)
        by_team = await _ratings(conn, period, c.team_id)
        names = sa.select(teams.c.id, teams.c.name).order_by(teams.c.name_key)
        team_names = {team_id: name for team_id, name in await conn.execute(names)}
    self_service = sum(
        1
        for row in started
        if row.state is ConversationState.RESOLVED and row.handed_off_at is None
    )
    bot, agent, breaches = [], [], 0
    waits: dict[int, float] = {}  # per conversation answered after its handoff
    for row in started:
        first_bot, first_agent = firsts.get(row.id, (None, None))
        if first_bot is not None:
            bot.append((first_bot - row.created_at).total_seconds())
        if row.handed_off_at is None:
            continue
        limit = sla_minutes[row.network] * 60.0
        team_hours = hours.get(row.team_id)
        if first_agent is not None:
            waits[row.id] = (first_agent - row.handed_off_at).total_seconds()
            agent.append(waits[row.id])
        # still waiting: at the end of the period, or now if that is sooner
        until = first_agent or min(period.end, now or utcnow())
        waited = (
            team_hours.working_seconds(row.handed_off_at, until)
            if team_hours is not None
            else (until - row.handed_off_at).total_seconds()
        )
        breaches += waited > limit
    counts = {value: n for value, n in feedback}
    return Report(
        period=period,
        conversations=len(started),
        self_service=self_service,
        handoffs={reason or "unknown": n for reason, n in reasons},
        bot_first_response=Durations.of(bot),
        agent_first_response=Durations.of(agent),
        sla_breaches=breaches,
        feedback=sum(counts.values()),
        helped=counts.get(FEEDBACK_YES, 0),
        volume=volume,
        load=load,
        ratings=ratings.get((), Csat()),
        ratings_by_agent=sorted(
            (AgentCsat(name, csat) for (agent, name), csat in by_agent.items() if agent),
            key=lambda row: row.agent,
        ),
        ratings_by_network={network: csat for (network,), csat in sorted(by_network.items())},
        by_label=by_label,
        by_team=_teams(started, waits, by_team, team_names),
        by_place=_places(started, waits, written, moved),
    )


async def _first_responses(
    conn: AsyncConnection, created: list[sa.ColumnElement[bool]]
) -> dict[int, tuple[dt.datetime | None, dt.datetime | None]]:
    """Per conversation: the bot's first answer, and the first agent reply after the handoff."""
    c, m = conversations.c, messages.c
    rows = (
        await conn.execute(
            sa.select(
                m.conversation_id,
                sa.func.min(m.created_at).filter(m.author_kind == AuthorKind.BOT),
                sa.func.min(m.created_at).filter(
                    m.author_kind == AuthorKind.AGENT,
                    m.direction == Direction.OUTBOUND,
                    m.created_at >= c.handed_off_at,
                ),
            )
            .join(conversations, c.id == m.conversation_id)
            .where(*created)
            .group_by(m.conversation_id)
        )
    ).all()
    return {cid: (bot, agent) for cid, bot, agent in rows}


def _messages_in(
    period: Period, *conditions: sa.ColumnElement[bool]
) -> list[sa.ColumnElement[bool]]:
    """The messages written in the period (on its network, if it has one) that meet `conditions`."""
    m = messages.c
    where = [*conditions, m.created_at >= period.start, m.created_at < period.end]
    if period.network is not None:
        where.append(m.network == period.network)
    return where


async def _volume(conn: AsyncConnection, period: Period) -> dict[Network, dict[dt.date, int]]:
    """Customer messages per network per day."""
    m = messages.c
    where = _messages_in(period, m.direction == Direction.INBOUND)
    rows = (await conn.execute(sa.select(m.network, m.created_at).where(*where))).all()
    volume: dict[Network, dict[dt.date, int]] = {}
    for network, created_at in rows:
        day = created_at.astimezone(dt.UTC).date()
        per_day = volume.setdefault(network, {d: 0 for d in period.days})
        per_day[day] = per_day.get(day, 0) + 1
    return volume


async def _written_by_place(conn: AsyncConnection, period: Period) -> dict[bool, int]:
    """Customers' messages written in the period, in public threads (True) and in private."""
    m, c = messages.c, conversations.c
    where = _messages_in(period, m.direction == Direction.INBOUND)
    rows = await conn.execute(
        sa.select(c.public, sa.func.count())
        .join(conversations, c.id == m.conversation_id)
        .where(*where)
        .group_by(c.public)
    )
    return {bool(public): n for public, n in rows}


async def _moved_to_private(conn: AsyncConnection, period: Period) -> int:
    """Agents' private messages of the period that answer a public comment: commenters taken to
    a private conversation (bridge.inbox.public)."""
    m, c = messages.c, conversations.c
    comment, thread = messages.alias("comment"), conversations.alias("thread")
    where = _messages_in(
        period,
        m.author_kind == AuthorKind.AGENT,
        m.direction == Direction.OUTBOUND,
        sa.not_(c.public),
        thread.c.public,
    )
    query = (
        sa.select(sa.func.count())
        .select_from(messages)
        .join(conversations, c.id == m.conversation_id)
        .join(comment, comment.c.id == m.in_reply_to_id)
        .join(thread, thread.c.id == comment.c.conversation_id)
        .where(*where)
    )
    return int((await conn.execute(query)).scalar_one())


async def _load(conn: AsyncConnection, period: Period) -> list[AgentLoad]:
    """Per agent: the conversations they replied in and their replies."""
    m, a = messages.c, agents.c
    where = _messages_in(
        period, m.author_kind == AuthorKind.AGENT, m.direction == Direction.OUTBOUND
    )
    rows = (
        await conn.execute(
            sa.select(
                a.display_name, sa.func.count(sa.distinct(m.conversation_id)), sa.func.count()
            )
            .join(agents, a.id == m.agent_id)
            .where(*where)
            .group_by(a.display_name)
            .order_by(sa.func.count().desc(), a.display_name)
        )
    ).all()
    return [AgentLoad(name, conversations_n, replies) for name, conversations_n, replies in rows]


async def _ratings(
    conn: AsyncConnection, period: Period, *by: sa.ColumnElement[Any]
) -> dict[tuple[Any, ...], Csat]:
    """CSAT of the requests sent in the period, grouped by `by` (nothing: overall), any column
    of the ratings, of the agent credited or of the conversation rated."""
    r, a, c = csat_ratings.c, agents.c, conversations.c
    where = [r.asked_at >= period.start, r.asked_at < period.end]
    if period.network is not None:
        where.append(r.network == period.network)
    rows = await conn.execute(
        sa.select(
            *by,
            sa.func.count(),
            sa.func.count(r.rating),
            sa.func.coalesce(sa.func.sum(r.rating), 0),
            sa.func.count().filter(r.rating >= SATISFIED),
        )
        .select_from(
            csat_ratings.outerjoin(agents, a.id == r.agent_id).join(
                conversations, c.id == r.conversation_id
            )
        )
        .where(*where)
        .group_by(*by)
    )
    width = len(by)
    return {tuple(row[:width]): Csat(*row[width:]) for row in rows}


async def _labels(conn: AsyncConnection, created: list[sa.ColumnElement[bool]]) -> list[LabelCount]:
    """Per label: the conversations started in the period that carry it now, and how many of
    them are resolved; most used first."""
    c, cl, lb = conversations.c, conversation_labels.c, labels.c
    count = sa.func.count()
    rows = await conn.execute(
        sa.select(lb.name, count, count.filter(c.state == ConversationState.RESOLVED))
        .select_from(conversation_labels)
        .join(labels, lb.id == cl.label_id)
        .join(conversations, c.id == cl.conversation_id)
        .where(*created)
        .group_by(lb.id, lb.name)
        .order_by(count.desc(), lb.name)
    )
    return [LabelCount(*row) for row in rows]


def _teams(
    started: Sequence[sa.Row[*tuple[Any, ...]]],
    waits: dict[int, float],
    ratings: dict[tuple[Any, ...], Csat],
    names: dict[int, str],
) -> list[TeamFigures]:
    """Per team with a conversation or a rating request in the period, by name."""
    per_team: dict[int, list[sa.Row[*tuple[Any, ...]]]] = {}
    for row in started:
        per_team.setdefault(row.team_id, []).append(row)
    return [
        TeamFigures(
            team=name,
            conversations=len(rows),
            resolved=sum(1 for row in rows if row.state is ConversationState.RESOLVED),
            first_response=Durations.of([waits[row.id] for row in rows if row.id in waits]),
            csat=ratings.get((team_id,), Csat()),
        )
        for team_id, name in names.items()
        if (rows := per_team.get(team_id, [])) or (team_id,) in ratings
    ]


def _places(
    started: Sequence[sa.Row[*tuple[Any, ...]]],
    waits: dict[int, float],
    written: dict[bool, int],
    moved: int,
) -> list[PlaceFigures]:
    """Public threads, then private conversations."""
    found = []
    for public, place in ((True, PUBLIC), (False, PRIVATE)):
        rows = [row for row in started if bool(row.public) is public]
        found.append(
            PlaceFigures(
                place=place,
                conversations=len(rows),
                customer_messages=written.get(public, 0),
                resolved=sum(1 for row in rows if row.state is ConversationState.RESOLVED),
                first_response=Durations.of([waits[row.id] for row in rows if row.id in waits]),
                moved_to_private=moved if public else 0,
            )
        )
    return found


Table = tuple[list[str], list[list[object]]]


def _minutes(seconds: float | None) -> float | None:
    return round(seconds / 60, 1) if seconds is not None else None


def _share(value: float | None) -> float | None:
    return round(value, 4) if value is not None else None


def _csat_row(csat: Csat) -> list[object]:
    mean = round(csat.mean, 2) if csat.mean is not None else None
    return [csat.asked, csat.rated, mean, _share(csat.satisfied_rate)]


CSAT_HEADERS = ["asked", "ratings", "mean", "rated_4_5_rate"]
PLACE_HEADERS = [
    "place",
    "conversations",
    "customer_messages",
    "resolved",
    "resolved_rate",
    "first_response_median_min",
    "moved_to_private",
]
TEAM_HEADERS = [
    "team",
    "conversations",
    "resolved",
    "resolved_rate",
    "first_response_median_min",
    *(f"csat_{name}" for name in CSAT_HEADERS),
]


def tables(report: Report) -> dict[str, Table]:
    """The report as named tables (headers, rows): the dashboard shows them, CSV exports them."""
    rate, helped_rate, ratings = report.self_service_rate, report.csat, report.ratings
    bot, agent = report.bot_first_response, report.agent_first_response
    summary: list[list[object]] = [
        ["conversations", report.conversations],
        ["self_service", report.self_service],
        ["self_service_rate", round(rate, 4) if rate is not None else None],
        ["bot_first_response_median_s", bot.median_s],
        ["bot_first_response_p90_s", bot.p90_s],
        ["agent_first_response_median_min", _minutes(agent.median_s)],
        ["agent_first_response_p90_min", _minutes(agent.p90_s)],
        ["sla_breaches", report.sla_breaches],
        ["feedback", report.feedback],
        ["bot_helped_rate", _share(helped_rate)],
        *(
            [f"csat_{name}", value]
            for name, value in zip(CSAT_HEADERS, _csat_row(ratings), strict=True)
        ),
    ]
    days = report.period.days
    networks = sorted(report.volume)
    return {
        "summary": (["figure", "value"], summary),
        "handoffs": (
            ["reason", "conversations"],
            [[reason, n] for reason, n in sorted(report.handoffs.items(), key=lambda x: -x[1])],
        ),
        "volume": (
            ["day", *[n.value for n in networks]],
            [[day.isoformat(), *[report.volume[n].get(day, 0) for n in networks]] for day in days],
        ),
        "load": (
            ["agent", "conversations", "replies"],
            [[a.agent, a.conversations, a.replies] for a in report.load],
        ),
        "csat_agents": (
            ["agent", *CSAT_HEADERS],
            [[row.agent, *_csat_row(row.csat)] for row in report.ratings_by_agent],
        ),
        "csat_networks": (
            ["network", *CSAT_HEADERS],
            [[n.value, *_csat_row(csat)] for n, csat in report.ratings_by_network.items()],
        ),
        "labels": (
            ["label", "conversations", "resolved", "resolved_rate"],
            [
                [row.label, row.conversations, row.resolved, _share(row.resolved_rate)]
                for row in report.by_label
            ],
        ),
        "places": (
            PLACE_HEADERS,
            [
                [
                    row.place,
                    row.conversations,
                    row.customer_messages,
                    row.resolved,
                    _share(row.resolved_rate),
                    _minutes(row.first_response.median_s),
                    row.moved_to_private,
                ]
                for row in report.by_place
            ],
        ),
        "teams": (
            TEAM_HEADERS,
            [
                [
                    row.team,
                    row.conversations,
                    row.resolved,
                    _share(row.resolved_rate),
                    _minutes(row.first_response.median_s),
                    *_csat_row(row.csat),
                ]
                for row in report.by_team
            ],
        ),
    }
