"""Whether an agent can take conversations: online, away or offline. An open inbox page renews
its agent's `seen_at` (every `RENEW_S`) and `active_at` (while they use it); an agent may also say
they are away. Colleagues see the status; only online agents are given new conversations."""

from __future__ import annotations

import datetime as dt
import enum

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.engine import dialect_insert
from bridge.store.models import agent_presence, agents

RENEW_S = 30.0
# three renewals missed: the page is closed, or its process gone
OFFLINE_AFTER = dt.timedelta(seconds=3 * RENEW_S)


class Status(enum.StrEnum):
    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


CHOSEN = (Status.ONLINE, Status.AWAY)  # what an agent may say of themselves


async def page_seen(
    engine: AsyncEngine, agent_id: int, now: dt.datetime, *, active: bool = False
) -> None:
    """An inbox page of the agent's is open (`active`: and in use)."""
    values: dict[str, object] = {"seen_at": now}
    if active:
        values["active_at"] = now
    # a page that opens is in use
    insert = dialect_insert(engine.dialect.name, agent_presence).values(
        agent_id=agent_id, status=Status.ONLINE.value, seen_at=now, active_at=now
    )
    async with engine.begin() as conn:
        await conn.execute(insert.on_conflict_do_update(index_elements=["agent_id"], set_=values))


async def choose_status(
    engine: AsyncEngine, agent_id: int, status: Status, now: dt.datetime
) -> None:
    """The agent says they are online or away (from the page or the API)."""
    if status not in CHOSEN:
        raise ValueError(f"an agent chooses {' or '.join(CHOSEN)}")
    values = {"status": status.value, "seen_at": now, "active_at": now}
    insert = dialect_insert(engine.dialect.name, agent_presence).values(agent_id=agent_id, **values)
    async with engine.begin() as conn:
        await conn.execute(insert.on_conflict_do_update(index_elements=["agent_id"], set_=values))


def is_online(now: dt.datetime, away_after: dt.timedelta) -> sa.ColumnElement[bool]:
    """The agents who may be given a conversation now (a condition on `agent_presence`)."""
    p = agent_presence.c
    return sa.and_(
        p.status == Status.ONLINE.value,
        p.seen_at >= now - OFFLINE_AFTER,
        p.active_at >= now - away_after,
    )


def status_of(
    chosen: str | None,
    seen_at: dt.datetime | None,
    active_at: dt.datetime | None,
    now: dt.datetime,
    away_after: dt.timedelta,
) -> Status:
    if seen_at is None or seen_at < now - OFFLINE_AFTER:
        return Status.OFFLINE
    if chosen == Status.AWAY.value or active_at is None or active_at < now - away_after:
        return Status.AWAY
    return Status.ONLINE


async def statuses(
    engine: AsyncEngine, now: dt.datetime, away_after: dt.timedelta
) -> dict[int, Status]:
    """Every active agent's status (one whose page never opened is offline)."""
    p, a = agent_presence.c, agents.c
    query = (
        sa.select(a.id, p.status, p.seen_at, p.active_at)
        .select_from(agents.outerjoin(agent_presence, p.agent_id == a.id))
        .where(a.active)
    )
    async with engine.connect() as conn:
        rows = await conn.execute(query)
        return {
            row.id: status_of(row.status, row.seen_at, row.active_at, now, away_after)
            for row in rows
        }
