"""Teams of agents: admins make them (name, members, how many open conversations each member
takes, when an unanswered one passes to a colleague) and move conversations between them; agents
see which team a conversation is with. Which conversations a team gets is said by the routing
rules (`bridge.inbox.routing_rules`); who in the team gets one, by `bridge.inbox.assignment`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.bus import Bus
from bridge.domain import ConversationState, Event, EventKind
from bridge.inbox.actions import ConversationNotFound
from bridge.store.business_hours import HoursError, business_hours
from bridge.store.models import agents, conversations, team_members, teams, utcnow

MAX_NAME_CHARS = 50
MAX_CAPACITY = 100
MAX_REASSIGN_MINUTES = 7 * 24 * 60


class TeamError(ValueError):
    """A team refused (a name blank or taken, a capacity out of range), with the reason."""


class TeamNotFound(LookupError):
    """No team has this id."""


@dataclass(frozen=True, slots=True)
class TeamDraft:
    """What an admin says of a team."""

    name: str
    member_ids: Sequence[int] = ()
    auto_assign: bool = True
    capacity: int = 5
    reassign_after_minutes: int | None = None
    # business hours (`bridge.store.business_hours`): no time zone, open around the clock
    time_zone: str | None = None
    hours: Mapping[str, Sequence[Sequence[str]]] | None = None
    holidays: Sequence[str] = ()


@dataclass(frozen=True, slots=True)
class Team:
    id: int
    name: str
    auto_assign: bool
    capacity: int
    reassign_after_minutes: int | None
    time_zone: str | None
    hours: Mapping[str, Sequence[Sequence[str]]] | None
    holidays: Sequence[str] | None
    member_ids: tuple[int, ...] = field(default=())


def _checked(draft: TeamDraft) -> TeamDraft:
    name = " ".join(draft.name.split())
    if not name or len(name) > MAX_NAME_CHARS or not name.isprintable():
        raise TeamError(f"a team's name needs 1 to {MAX_NAME_CHARS} printable characters")
    if not 1 <= draft.capacity <= MAX_CAPACITY:
        raise TeamError(f"a capacity is 1 to {MAX_CAPACITY} open conversations an agent")
    minutes = draft.reassign_after_minutes
    if minutes is not None and not 1 <= minutes <= MAX_REASSIGN_MINUTES:
        raise TeamError(f"re-assignment comes after 1 to {MAX_REASSIGN_MINUTES} minutes, or never")
    zone = draft.time_zone.strip() if draft.time_zone else None
    try:
        business_hours(zone, draft.hours, draft.holidays)
    except HoursError as exc:
        raise TeamError(str(exc)) from None
    return TeamDraft(
        name,
        tuple(sorted(set(draft.member_ids))),
        draft.auto_assign,
        draft.capacity,
        minutes,
        zone,
        {day: [list(span) for span in spans] for day, spans in (draft.hours or {}).items()}
        if zone
        else None,
        sorted(set(draft.holidays)) if zone else (),
    )


_COLUMNS = (
    teams.c.id,
    teams.c.name,
    teams.c.auto_assign,
    teams.c.capacity,
    teams.c.reassign_after_minutes,
    teams.c.time_zone,
    teams.c.hours,
    teams.c.holidays,
)


async def list_teams(engine: AsyncEngine) -> list[Team]:
    """Every team, by name, with its members."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(*_COLUMNS).order_by(teams.c.name_key))).all()
        members = await _members(conn, [row.id for row in rows])
    return [Team(*row, member_ids=members.get(row.id, ())) for row in rows]


async def get_team(engine: AsyncEngine, team_id: int) -> Team:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(*_COLUMNS).where(teams.c.id == team_id))).first()
        if row is None:
            raise TeamNotFound(team_id)
        members = await _members(conn, [team_id])
    return Team(*row, member_ids=members.get(team_id, ()))


async def team_usage(engine: AsyncEngine) -> dict[int, int]:
    """How many open (not resolved) conversations each team has (one with none is left out)."""
    c = conversations.c
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(c.team_id, sa.func.count())
            .where(c.team_id.is_not(None), c.state != ConversationState.RESOLVED)
            .group_by(c.team_id)
        )
        return {team_id: n for team_id, n in rows}


async def _members(conn: AsyncConnection, team_ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
    m = team_members.c
    rows = await conn.execute(
        sa.select(m.team_id, m.agent_id).where(m.team_id.in_(team_ids)).order_by(m.agent_id)
    )
    found: dict[int, tuple[int, ...]] = {}
    for team_id, agent_id in rows:
        found[team_id] = (*found.get(team_id, ()), agent_id)
    return found


async def create_team(engine: AsyncEngine, draft: TeamDraft) -> Team:
    draft = _checked(draft)
    try:
        async with engine.begin() as conn:
            team_id = (
                await conn.execute(
                    sa.insert(teams)
                    .values(_values(draft) | {"created_at": utcnow()})
                    .returning(teams.c.id)
                )
            ).scalar_one()
            await _set_members(conn, team_id, draft.member_ids)
    except IntegrityError:  # the unique name key
        raise _taken(draft.name) from None
    return await get_team(engine, team_id)


async def change_team(engine: AsyncEngine, team_id: int, draft: TeamDraft) -> Team:
    """Replace what the team is (a member who stays keeps their turn in the round)."""
    draft = _checked(draft)
    try:
        async with engine.begin() as conn:
            changed = await conn.execute(
                sa.update(teams).where(teams.c.id == team_id).values(_values(draft))
            )
            if changed.rowcount != 1:
                raise TeamNotFound(team_id)
            await _set_members(conn, team_id, draft.member_ids)
    except IntegrityError:
        raise _taken(draft.name) from None
    return await get_team(engine, team_id)


async def delete_team(engine: AsyncEngine, team_id: int) -> None:
    """Delete a team: its conversations stay where they are, with no team; its rules go."""
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(conversations).where(conversations.c.team_id == team_id).values(team_id=None)
        )
        deleted = await conn.execute(sa.delete(teams).where(teams.c.id == team_id))
    if deleted.rowcount != 1:
        raise TeamNotFound(team_id)


def _values(draft: TeamDraft) -> dict[str, object]:
    return {
        "name": draft.name,
        "name_key": draft.name.casefold(),
        "auto_assign": draft.auto_assign,
        "capacity": draft.capacity,
        "reassign_after_minutes": draft.reassign_after_minutes,
        "time_zone": draft.time_zone,
        "hours": draft.hours,
        "holidays": list(draft.holidays) or None,
    }


def _taken(name: str) -> TeamError:
    return TeamError(f"a team named “{name}” exists already")


async def _set_members(conn: AsyncConnection, team_id: int, agent_ids: Sequence[int]) -> None:
    if agent_ids:
        known = set(await conn.scalars(sa.select(agents.c.id).where(agents.c.id.in_(agent_ids))))
        if missing := set(agent_ids) - known:
            raise TeamError(f"no agent has the id {min(missing)}")
    m = team_members.c
    await conn.execute(
        sa.delete(team_members).where(m.team_id == team_id, m.agent_id.not_in(agent_ids))
    )
    staying = set(await conn.scalars(sa.select(m.agent_id).where(m.team_id == team_id)))
    if joining := [a for a in agent_ids if a not in staying]:
        await conn.execute(
            sa.insert(team_members), [{"team_id": team_id, "agent_id": a} for a in joining]
        )


async def move_to_team(
    engine: AsyncEngine, bus: Bus, conversation_id: int, team_id: int | None
) -> None:
    """An agent sends the conversation to another team (None: to no team). Its assignee keeps
    it; a waiting one waits for the new team's members."""
    async with engine.begin() as conn:
        if team_id is not None:
            found = await conn.scalar(sa.select(teams.c.id).where(teams.c.id == team_id))
            if found is None:
                raise TeamNotFound(team_id)
        moved = await conn.execute(
            sa.update(conversations)
            .where(conversations.c.id == conversation_id)
            .values(team_id=team_id)
        )
    if moved.rowcount != 1:
        raise ConversationNotFound(conversation_id)
    await bus.publish_events(
        [
            Event(
                kind=EventKind.CONVERSATION_TEAM,
                conversation_id=conversation_id,
                data={"team_id": team_id},
            )
        ]
    )
