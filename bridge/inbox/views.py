"""What the agents' inbox shows: the conversation list with its filters, counts and SLA clocks,
and one conversation with the customer's whole history. Read-only queries; actions live in
`bridge.inbox.actions`."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, replace
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import ConversationState, DecisionOutcome, DeliveryStatus, Direction, Network
from bridge.inbox.labels import Label, has_label, labels_on
from bridge.inbox.paging import PAGE_SIZE, Cursor
from bridge.inbox.public import PRIVATE_REPLY_RULES
from bridge.inbox.search import matching
from bridge.inbox.view_counts import Group, SharedCounts
from bridge.store.business_hours import BusinessHours, teams_hours
from bridge.store.models import (
    agents,
    an_agents_answer,
    conversation_labels,
    conversation_reads,
    conversations,
    decisions,
    identities,
    messages,
    teams,
    utcnow,
)

SLA_AMBER_SHARE = 0.75  # the clock turns amber when three quarters of the SLA are gone


class View(enum.StrEnum):
    WAITING = "waiting"
    MINE = "mine"
    OPEN = "open"
    RESOLVED = "resolved"


OPEN_STATES = (ConversationState.BOT, ConversationState.WAITING, ConversationState.ASSIGNED)


@dataclass(frozen=True, slots=True)
class InboxQuery:
    view: View = View.WAITING
    network: Network | None = None
    language: str | None = None
    limit: int = PAGE_SIZE
    after: Cursor | None = None  # where the previous page ended
    # words of the messages, a customer's name or network id; not blank
    search: str | None = None
    label: int | None = None  # a label's id: the conversations that carry it
    assignee: int | None = None  # an agent's id, or NOBODY: the unassigned ones
    team: int | None = None  # a team's id, or NOBODY: those of no team
    # the days the conversation started between, both included, as days of `time_zone`
    since: dt.date | None = None
    until: dt.date | None = None
    time_zone: str = "UTC"  # a name of the IANA database, checked by the caller


POST_SHOWN = 120  # characters of a public thread's post in the list
NOBODY = 0  # no row has the id 0: as an assignee or a team, "none"


@dataclass(frozen=True, slots=True)
class Sla:
    """The SLA clock of a conversation whose customer waits for a person."""

    waiting_s: float
    limit_s: float
    # False while the conversation's team is closed: its clock counts working time only
    running: bool = True

    @property
    def level(self) -> str:
        if self.waiting_s >= self.limit_s:
            return "red"
        if self.waiting_s >= SLA_AMBER_SHARE * self.limit_s:
            return "amber"
        return "ok"


@dataclass(frozen=True, slots=True)
class InboxRow:
    id: int
    network: Network
    state: ConversationState
    customer: str
    language: str | None
    preview: str
    last_message_at: dt.datetime
    handoff_reason: str | None
    assignee: str | None
    team: str | None
    sla: Sla | None
    unread: bool  # the customer wrote since this agent last opened it
    labels: list[Label]
    public: bool = False  # a public thread (comments under a post), not a private chat
    post: str | None = None  # a public thread's post, its beginning: what the thread is under
    priority: int = 0  # 1: urgent by a listening rule or angry; 2: both


@dataclass(frozen=True, slots=True)
class Inbox:
    rows: list[InboxRow]
    counts: dict[View, int]
    """Conversations in each view, within the network, language and label chosen."""
    by_network: dict[Network, int]
    """Conversations of the chosen view on each network, within the language chosen."""
    by_language: dict[str, int]
    """Conversations of the chosen view in each language, within the network chosen."""
    next_page: Cursor | None
    """Where the next page starts; None: this page is the last."""
    by_label: dict[int, int]
    """Conversations of the chosen view with each label (by id), within the network and language
    chosen."""


def _chosen(query: InboxQuery) -> list[sa.ColumnElement[bool]]:
    """The conditions of the assignee, team and dates chosen."""
    c = conversations.c
    chosen = []
    for column, value in ((c.assignee_id, query.assignee), (c.team_id, query.team)):
        if value is not None:
            chosen.append(column.is_(None) if value == NOBODY else column == value)
    zone = ZoneInfo(query.time_zone)

    def midnight(day: dt.date) -> dt.datetime | None:
        """In UTC, as the store keeps times (SQLite compares them as text); None past the
        calendar's ends, where the bound leaves nothing out."""
        try:
            return dt.datetime.combine(day, dt.time(tzinfo=zone)).astimezone(dt.UTC)
        except OverflowError:
            return None

    if query.since is not None and (start := midnight(query.since)) is not None:
        chosen.append(c.created_at >= start)
    if query.until is not None and query.until < dt.date.max:
        if (end := midnight(query.until + dt.timedelta(days=1))) is not None:
            chosen.append(c.created_at < end)
    return chosen


def _view_condition(view: View, agent_id: int) -> sa.ColumnElement[bool]:
    c = conversations.c
    if view is View.WAITING:
        return c.state == ConversationState.WAITING
    if view is View.MINE:
        return sa.and_(c.assignee_id == agent_id, c.state.in_(OPEN_STATES))
    if view is View.RESOLVED:
        return c.state == ConversationState.RESOLVED
    return c.state.in_(OPEN_STATES)


async def inbox(
    engine: AsyncEngine,
    agent_id: int,
    query: InboxQuery,
    sla_minutes: dict[Network, int],
    now: dt.datetime,
    shared: SharedCounts | None = None,
) -> Inbox:
    """One page of the view (longest-waiting first; resolved: latest first) and how many each
    view holds (`shared`: counted once for the agents asking at the same moment)."""
    c, i, a = conversations.c, identities.c, agents.c
    by_network = [] if query.network is None else [c.network == query.network]
    by_language = [] if query.language is None else [c.language == query.language]
    searched = []
    if query.search:
        async with engine.connect() as conn:
            searched.append(await matching(conn, query.search))
    labelled = [] if query.label is None else [has_label(query.label)]
    # who has it, which team, when it started: they narrow the counts of every view too
    chosen = _chosen(query)
    narrow = by_network + by_language + searched + labelled + chosen
    in_view = _view_condition(query.view, agent_id)
    # what the customer said last: the bot's acknowledgements would all read the same
    last_inbound = (
        sa.select(messages.c.id)
        .where(messages.c.conversation_id == c.id, messages.c.direction == "inbound")
        .order_by(messages.c.id.desc())
        .limit(1)
    )
    preview = last_inbound.with_only_columns(messages.c.text).scalar_subquery()
    read = conversation_reads.c
    unread = last_inbound.scalar_subquery() > sa.func.coalesce(read.read_message_id, 0)
    newest_first = query.view is View.RESOLVED
    key = (
        sa.func.coalesce(c.resolved_at, c.last_message_at)
        if newest_first
        else sa.func.coalesce(c.awaiting_since, c.last_message_at)
    )
    # the open views show urgent public threads first (listening rules), each part by its key
    order = (
        [key.desc(), c.id.desc()] if newest_first else [c.priority.desc(), key.asc(), c.id.asc()]
    )
    after = [] if query.after is None else [_after(key, query.after, newest_first)]
    # The page's conversations first, then what is shown of them: joined before the limit, a
    # search's tens of thousands of matches would each be joined to their customer.
    on_page = (
        sa.select(c.id)
        .where(in_view, *narrow, *after)
        .order_by(*order)
        # one row more than the page: whether another page follows
        .limit(query.limit + 1)
        .subquery("on_page")
    )
    page = (
        sa.select(
            c.id,
            c.network,
            c.state,
            c.language,
            c.last_message_at,
            c.handoff_reason,
            c.awaiting_since,
            c.team_id,
            c.public,
            sa.func.substr(c.post_text, 1, POST_SHOWN).label("post"),
            c.priority,
            i.display_name,
            i.external_user_id,
            a.display_name.label("assignee"),
            teams.c.name.label("team"),
            preview.label("preview"),
            sa.func.coalesce(unread, False).label("unread"),
            key.label("sort_key"),
        )
        .select_from(on_page)
        .join(conversations, c.id == on_page.c.id)
        .join(identities, i.id == c.identity_id)
        .outerjoin(agents, a.id == c.assignee_id)
        .outerjoin(teams, teams.c.id == c.team_id)
        .outerjoin(
            conversation_reads,
            sa.and_(read.conversation_id == c.id, read.agent_id == agent_id),
        )
        .order_by(*order)
    )
    # Every count from one scan: conversations grouped by what the views and filters ask of
    # them (a few dozen groups), then summed here.
    groups = (
        sa.select(c.state, c.assignee_id, c.network, c.language, sa.func.count().label("n"))
        .where(*searched, *labelled, *chosen)
        .group_by(c.state, c.assignee_id, c.network, c.language)
    )

    async def count() -> list[Group]:
        async with engine.connect() as conn:
            return [Group(*row) for row in await conn.execute(groups)]

    # the filters the counts depend on: not the view, the network, the language or the page
    filters = replace(query, view=View.OPEN, network=None, language=None, limit=0, after=None)
    cl = conversation_labels.c
    per_label = (
        sa.select(cl.label_id, sa.func.count())
        .join(conversations, c.id == cl.conversation_id)
        .where(in_view, *by_network, *by_language, *searched, *chosen)
        .group_by(cl.label_id)
    )
    counted = await (count() if shared is None else shared.groups(filters, count))
    async with engine.connect() as conn:
        rows = (await conn.execute(page)).all()
        by_label = {label_id: n for label_id, n in await conn.execute(per_label)}
        carried = await labels_on(conn, [row.id for row in rows[: query.limit]])
        hours = await teams_hours(conn, {row.team_id for row in rows} - {None})
    last = rows[query.limit - 1] if len(rows) > query.limit else None
    in_network = [g for g in counted if query.network in (None, g.network)]
    narrowed = [g for g in in_network if query.language in (None, g.language)]
    # Each filter's counts leave out its own choice, so they tell what choosing another gives.
    shown = [g for g in counted if _in_view(g, query.view, agent_id)]
    per_network = [g for g in shown if query.language in (None, g.language)]
    per_language: dict[str, int] = {}
    for g in shown:
        if g.language is not None and query.network in (None, g.network):
            per_language[g.language] = per_language.get(g.language, 0) + g.n
    return Inbox(
        [
            _row(row, sla_minutes, now, carried.get(row.id, []), hours.get(row.team_id))
            for row in rows[: query.limit]
        ],
        {view: sum(g.n for g in narrowed if _in_view(g, view, agent_id)) for view in View},
        {network: sum(g.n for g in per_network if g.network == network) for network in Network},
        per_language,
        None if last is None else Cursor(last.sort_key, last.id, last.priority),
        by_label,
    )


def _in_view(group: Group, view: View, agent_id: int) -> bool:
    """`_view_condition`, for a group already counted."""
    if view is View.WAITING:
        return group.state is ConversationState.WAITING
    if view is View.MINE:
        return group.assignee_id == agent_id and group.state in OPEN_STATES
    if view is View.RESOLVED:
        return group.state is ConversationState.RESOLVED
    return group.state in OPEN_STATES


def _after(
    key: sa.ColumnElement[dt.datetime], cursor: Cursor, newest_first: bool
) -> sa.ColumnElement[bool]:
    """The rows after the cursor's in the view's order."""
    c = conversations.c
    if newest_first:
        return sa.or_(key < cursor.key, sa.and_(key == cursor.key, c.id < cursor.id))
    later = sa.or_(key > cursor.key, sa.and_(key == cursor.key, c.id > cursor.id))
    return sa.or_(c.priority < cursor.priority, sa.and_(c.priority == cursor.priority, later))


def _row(
    row: Any,
    sla_minutes: dict[Network, int],
    now: dt.datetime,
    carried: list[Label],
    hours: BusinessHours | None,
) -> InboxRow:
    sla = None
    if row.awaiting_since is not None and row.state is not ConversationState.RESOLVED:
        limit = sla_minutes[row.network] * 60.0
        if hours is None:
            sla = Sla((now - row.awaiting_since).total_seconds(), limit)
        else:
            waited = hours.working_seconds(row.awaiting_since, now)
            sla = Sla(waited, limit, running=hours.is_open(now))
    return InboxRow(
        id=row.id,
        network=row.network,
        state=row.state,
        customer=row.display_name or row.external_user_id,
        language=row.language,
        preview=(row.preview or "")[:200],
        last_message_at=row.last_message_at,
        handoff_reason=row.handoff_reason,
        assignee=row.assignee,
        team=row.team,
        sla=sla,
        unread=bool(row.unread),
        labels=carried,
        public=row.public,
        post=row.post,
        priority=row.priority,
    )


class HistoryMessage(BaseModel):
    """One message of the customer's history, on any of their networks."""

    model_config = ConfigDict(frozen=True)

    id: int
    conversation_id: int
    network: Network
    direction: str
    author_kind: str
    author: str | None
    text: str
    attachments: list[dict[str, Any]]
    created_at: dt.datetime
    delivery_status: str | None
    delivery_error: str | None
    stuck: bool = Field(
        default=False, description="queued for longer than it should take: may be sent again"
    )
    article_id: str | None
    confidence: float | None
    # Shadow mode's suggestion: the inbox shows it; the API's answer has never carried it.
    suggested_article: str | None = Field(default=None, exclude=True)
    suggested_confidence: float | None = Field(default=None, exclude=True)
    verdict: str | None = Field(default=None, exclude=True)
    public: bool = Field(default=False, description="said in a public thread, seen by everyone")
    commenter: str | None = Field(
        default=None, description="in a public thread, the name of the comment's author"
    )
    commenter_allows_private: bool | None = Field(
        default=None,
        description="whether the comment's author lets the community write to them privately "
        "(null: the network never said)",
    )
    deleted: bool = Field(default=False, description="its author deleted it on the network")
    privately_answered: bool = Field(
        default=False, description="a comment whose author was sent a private reply to it"
    )
    private_reply_expired: bool = Field(
        default=False,
        description="a comment too old for the private reply its network allows only for a "
        "while after it (bridge.inbox.public.PRIVATE_REPLY_RULES)",
    )


@dataclass(frozen=True, slots=True)
class ConversationView:
    id: int
    network: Network
    state: ConversationState
    customer_id: int
    customer: str
    language: str | None
    handoff_reason: str | None
    assignee_id: int | None
    assignee: str | None
    team_id: int | None
    networks: list[Network]
    history: list[HistoryMessage]
    labels: list[Label]
    public: bool = False  # a public thread: the comments under one post, by many authors
    post_text: str | None = None
    post_url: str | None = None
    priority: int = 0  # a public thread's urgency, as the inbox list shows it


async def conversation_view(
    engine: AsyncEngine,
    conversation_id: int,
    limit: int = 2000,
    stuck_after: dt.timedelta = dt.timedelta(minutes=10),
) -> ConversationView | None:
    """The conversation and the latest `limit` messages of every conversation of the same
    customer (their other networks too), oldest first; a reply queued for longer than
    `stuck_after` is marked stuck."""
    now = utcnow()
    stuck_before = now - stuck_after
    c, i, a, m, d = conversations.c, identities.c, agents.c, messages.c, decisions.c
    async with engine.connect() as conn:
        head = (
            await conn.execute(
                sa.select(
                    c.id,
                    c.network,
                    c.state,
                    c.customer_id,
                    c.language,
                    c.handoff_reason,
                    c.assignee_id,
                    c.team_id,
                    c.public,
                    c.post_text,
                    c.post_url,
                    c.priority,
                    i.display_name,
                    i.external_user_id,
                    a.display_name.label("assignee"),
                )
                .join(identities, i.id == c.identity_id)
                .outerjoin(agents, a.id == c.assignee_id)
                .where(c.id == conversation_id)
            )
        ).first()
        if head is None:
            return None
        # a public thread is many customers' and shows only itself; a private chat shows the
        # customer's conversations on every network
        theirs = (
            sa.select(c.id).where(c.id == conversation_id)
            if head.public
            else sa.select(c.id).where(c.customer_id == head.customer_id)
        ).scalar_subquery()
        author = agents.alias("author")
        commenter = identities.alias("commenter")
        place = conversations.alias("place")
        suggested = decisions.alias("suggested")
        answer, answered_in = messages.alias("answer"), conversations.alias("answered_in")
        # an agent's private message stored as the answer to a comment, not refused by the
        # network; asked of public comments only
        privately_answered = sa.case(
            (
                sa.and_(place.c.public, m.direction == Direction.INBOUND),
                sa.exists().where(
                    an_agents_answer(answer, m.id),
                    answer.c.direction == Direction.OUTBOUND,
                    answer.c.delivery_status != DeliveryStatus.FAILED,
                    answered_in.c.id == answer.c.conversation_id,
                    sa.not_(answered_in.c.public),
                ),
            ),
            else_=False,
        ).label("privately_answered")
        rows = (
            await conn.execute(
                sa.select(
                    m.id,
                    m.conversation_id,
                    m.network,
                    m.direction,
                    m.author_kind,
                    author.c.display_name.label("author"),
                    m.text,
                    m.attachments,
                    m.created_at,
                    m.delivery_status,
                    m.delivery_error,
                    d.article_id,
                    d.confidence,
                    suggested.c.article_id.label("suggested_article"),
                    suggested.c.confidence.label("suggested_confidence"),
                    suggested.c.verdict,
                    place.c.public,
                    commenter.c.display_name.label("commenter"),
                    commenter.c.allows_private.label("commenter_allows_private"),
                    m.deleted_at,
                    privately_answered,
                )
                .join(place, place.c.id == m.conversation_id)
                .outerjoin(author, author.c.id == m.agent_id)
                .outerjoin(
                    commenter,
                    sa.and_(commenter.c.id == m.author_identity_id, place.c.public),
                )
                # a bot's answer carries the decision made on the question it answers
                .outerjoin(
                    decisions,
                    sa.and_(d.message_id == m.in_reply_to_id, m.author_kind == "bot"),
                )
                # shadow mode: what the bot would have answered to a customer's message
                .outerjoin(
                    suggested,
                    sa.and_(
                        suggested.c.message_id == m.id,
                        suggested.c.outcome == DecisionOutcome.SUGGESTED,
                    ),
                )
                .where(m.conversation_id.in_(theirs))
                .order_by(m.id.desc())
                .limit(limit)
            )
        ).all()
        networks = (
            await conn.execute(
                sa.select(i.network).where(i.customer_id == head.customer_id).distinct()
            )
        ).scalars()
        network_list = sorted(networks)
        carried = await labels_on(conn, [conversation_id])
    history = [
        HistoryMessage(
            id=row.id,
            conversation_id=row.conversation_id,
            network=row.network,
            direction=row.direction,
            author_kind=row.author_kind,
            author=row.author,
            text=row.text,
            attachments=row.attachments or [],
            created_at=row.created_at,
            delivery_status=row.delivery_status,
            delivery_error=row.delivery_error,
            stuck=row.delivery_status == DeliveryStatus.QUEUED and row.created_at < stuck_before,
            article_id=row.article_id,
            confidence=row.confidence,
            suggested_article=row.suggested_article,
            suggested_confidence=row.suggested_confidence,
            verdict=row.verdict,
            public=row.public,
            commenter=row.commenter,
            commenter_allows_private=row.commenter_allows_private,
            deleted=row.deleted_at is not None,
            privately_answered=bool(row.public and row.privately_answered),
            private_reply_expired=bool(
                row.public
                and row.direction == Direction.INBOUND
                and (rule := PRIVATE_REPLY_RULES.get(Network(row.network))) is not None
                and now - row.created_at > rule.within
            ),
        )
        for row in reversed(rows)
    ]
    return ConversationView(
        id=head.id,
        network=head.network,
        state=head.state,
        customer_id=head.customer_id,
        customer=head.display_name or head.external_user_id,
        language=head.language,
        handoff_reason=head.handoff_reason,
        assignee_id=head.assignee_id,
        assignee=head.assignee,
        team_id=head.team_id,
        networks=network_list,
        history=history,
        labels=carried.get(conversation_id, []),
        public=head.public,
        post_text=head.post_text,
        post_url=head.post_url,
        priority=head.priority,
    )
