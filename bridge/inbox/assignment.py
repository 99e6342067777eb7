"""Giving conversations to agents without anyone clicking: a team's waiting conversations go in
turn to its members who are online and below the team's capacity, oldest wait first; and one whose
assignee has not answered the customer within the team's `reassign_after_minutes` passes to
another member (the first keeps it when nobody else can take it).

Each pass over a team holds the team's row locked, so that the core processes of the distributed
mode, which all run it, never give one conversation twice or a member more than the capacity."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.bus import Bus
from bridge.domain import ConversationState, Event, EventKind
from bridge.inbox.agent_status import is_online
from bridge.settings import Settings
from bridge.store.models import agent_presence, agents, conversations, team_members, teams, utcnow
from bridge.util.stopping import pause

log = logging.getLogger(__name__)

BATCH = 200  # conversations a pass gives at most per team: the next pass takes the rest
AUTO_ASSIGNED = "auto_assigned"
REASSIGNED = "reassigned"


@dataclass(slots=True)
class _Member:
    agent_id: int
    name: str
    last_assigned_at: dt.datetime | None
    open: int
    given: bool = False  # in this pass


async def assign_forever(
    engine: AsyncEngine, bus: Bus, settings: Settings, stop: asyncio.Event
) -> None:
    """Passes every `assign_interval_seconds` until `stop`; a failed pass is logged and retried."""
    while not stop.is_set():
        try:
            await assign_pass(engine, bus, utcnow(), settings.away_after)
        except Exception:
            log.exception("assigning waiting conversations failed; trying again at the next pass")
        await pause(stop, settings.assign_interval_seconds)


async def assign_pass(
    engine: AsyncEngine, bus: Bus, now: dt.datetime, away_after: dt.timedelta
) -> list[Event]:
    """One pass over every team that assigns automatically; the changes are announced."""
    async with engine.connect() as conn:
        team_ids = list(await conn.scalars(sa.select(teams.c.id).where(teams.c.auto_assign)))
    events: list[Event] = []
    for team_id in team_ids:
        async with engine.begin() as conn:
            events += await _assign_team(conn, team_id, now, away_after)
    if events:
        await bus.publish_events(events)
    return events


async def _assign_team(
    conn: AsyncConnection, team_id: int, now: dt.datetime, away_after: dt.timedelta
) -> list[Event]:
    t = teams.c
    team = (
        await conn.execute(
            sa.select(t.capacity, t.reassign_after_minutes, t.auto_assign)
            .where(t.id == team_id)
            .with_for_update()
        )
    ).one_or_none()
    if team is None or not team.auto_assign:
        return []  # deleted or changed since the list of teams was read
    members = await _online_members(conn, team_id, now, away_after)
    round_ = _Round(conn, members, team.capacity, now)
    if team.reassign_after_minutes is not None:
        late = now - dt.timedelta(minutes=team.reassign_after_minutes)
        await _pass_on_unanswered(round_, team_id, late)
    await _give_waiting(round_, team_id)
    if given := [m for m in members if m.given]:
        m = team_members.c
        await conn.execute(
            sa.update(team_members)
            .where(m.team_id == team_id, m.agent_id == sa.bindparam("member"))
            .values(last_assigned_at=sa.bindparam("turn")),
            [{"member": g.agent_id, "turn": g.last_assigned_at} for g in given],
        )
    return round_.events


async def _pass_on_unanswered(round_: _Round, team_id: int, late: dt.datetime) -> None:
    c = conversations.c
    unanswered = await round_.conn.execute(
        sa.select(c.id, c.assignee_id)
        .where(
            c.team_id == team_id,
            c.state == ConversationState.ASSIGNED,
            c.awaiting_since <= late,
            c.assigned_at <= late,
        )
        .order_by(c.awaiting_since, c.id)
        .limit(BATCH)
    )
    for conversation_id, late_one in unanswered.all():
        # the one who did not answer takes no turn, and keeps it if no one else can
        member = round_.next_turn(excluding=late_one)
        if member is not None:
            await round_.give(conversation_id, member, REASSIGNED, late_one)


async def _give_waiting(round_: _Round, team_id: int) -> None:
    c = conversations.c
    waiting = await round_.conn.execute(
        sa.select(c.id, c.assignee_id)
        .where(c.team_id == team_id, c.state == ConversationState.WAITING)
        .order_by(sa.func.coalesce(c.awaiting_since, c.last_message_at), c.id)
        .limit(BATCH)
    )
    for conversation_id, had_it in waiting.all():
        # a customer who comes back is given to the agent they had, if that one can take it
        member = round_.next_turn(only=had_it) or round_.next_turn()
        if member is None:
            return  # everyone is full or away: they wait for the next pass
        await round_.give(conversation_id, member, AUTO_ASSIGNED)


async def _online_members(
    conn: AsyncConnection, team_id: int, now: dt.datetime, away_after: dt.timedelta
) -> list[_Member]:
    """The team's members who may be given a conversation, with how many they have open."""
    m, a, p, c = team_members.c, agents.c, agent_presence.c, conversations.c
    open_count = (
        sa.select(sa.func.count())
        .where(c.assignee_id == m.agent_id, c.state == ConversationState.ASSIGNED)
        .scalar_subquery()
    )
    rows = await conn.execute(
        sa.select(m.agent_id, a.display_name, m.last_assigned_at, open_count)
        .select_from(
            team_members.join(agents, a.id == m.agent_id).join(
                agent_presence, p.agent_id == m.agent_id
            )
        )
        .where(m.team_id == team_id, a.active, is_online(now, away_after))
    )
    return [_Member(*row) for row in rows]


class _Round:
    """One pass's turns over a team's online members."""

    def __init__(
        self, conn: AsyncConnection, members: list[_Member], capacity: int, now: dt.datetime
    ) -> None:
        self.conn, self.members, self.capacity, self.now = conn, members, capacity, now
        self.events: list[Event] = []

    def next_turn(self, *, only: int | None = None, excluding: int | None = None) -> _Member | None:
        """Round robin: of those below the capacity (`only` that agent; not the one `excluding`),
        the one given a conversation longest ago."""
        free = [
            m
            for m in self.members
            if m.open < self.capacity
            and (only is None or m.agent_id == only)
            and m.agent_id != excluding
        ]
        if not free:
            return None
        never = dt.datetime.min.replace(tzinfo=dt.UTC)
        return min(free, key=lambda m: (m.last_assigned_at or never, m.agent_id))

    async def give(
        self, conversation_id: int, member: _Member, reason: str, taken_from: int | None = None
    ) -> None:
        c = conversations.c
        await self.conn.execute(
            sa.update(conversations)
            .where(c.id == conversation_id)
            .values(
                state=ConversationState.ASSIGNED, assignee_id=member.agent_id, assigned_at=self.now
            )
        )
        member.open += 1
        # a microsecond a turn keeps the order of one pass's turns for the next pass too
        turn = self.now + dt.timedelta(microseconds=len(self.events))
        member.last_assigned_at, member.given = turn, True
        # the shape of an agent's claim: the pages of both agents alert them
        data: dict[str, object] = {
            "state": ConversationState.ASSIGNED.value,
            "assignee_id": member.agent_id,
            "reason": reason,
        }
        if taken_from is not None:
            data |= {"previous_assignee_id": taken_from, "assignee_name": member.name}
            for previous in self.members:
                if previous.agent_id == taken_from:
                    previous.open -= 1
        self.events.append(
            Event(kind=EventKind.CONVERSATION_STATE, conversation_id=conversation_id, data=data)
        )
