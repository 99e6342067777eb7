"""A team's business hours: when its agents work, in its time zone, less its holidays. SLA clocks
count only this time, and a customer handed off while the team is closed is told when it opens.

Kept on the team's row (`teams.time_zone`, `hours`, `holidays`); no time zone: always open."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.models import teams

log = logging.getLogger(__name__)

_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")
# the next opening is looked for this far ahead: further, the team is taken as never open
LOOK_AHEAD_DAYS = 31


class HoursError(ValueError):
    """Business hours that make no sense, with the reason."""


Span = tuple[dt.time, dt.time | None]  # None: until midnight ("24:00")


@dataclass(frozen=True, slots=True)
class BusinessHours:
    zone: ZoneInfo
    # per weekday (0 Monday .. 6 Sunday) the spans it is open, in order
    week: Mapping[int, Sequence[Span]]
    holidays: frozenset[dt.date]

    def spans_on(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        """That local day's open spans as aware datetimes (none on a holiday)."""
        if day in self.holidays:
            return []
        found = []
        for start, end in self.week.get(day.weekday(), ()):
            opens = dt.datetime.combine(day, start, tzinfo=self.zone)
            closes = (
                dt.datetime.combine(day, end, tzinfo=self.zone)
                if end is not None
                else dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=self.zone)
            )
            found.append((opens, closes))
        return found

    def is_open(self, at: dt.datetime) -> bool:
        day = at.astimezone(self.zone).date()
        return any(opens <= at < closes for opens, closes in self.spans_on(day))

    def next_opening(self, at: dt.datetime) -> dt.datetime | None:
        """`at` itself if open then; else when it next opens (None: not within a month)."""
        day = at.astimezone(self.zone).date()
        for offset in range(LOOK_AHEAD_DAYS + 1):
            for opens, closes in self.spans_on(day + dt.timedelta(days=offset)):
                if closes > at:
                    return max(opens, at)
        return None

    def working_seconds(self, start: dt.datetime, end: dt.datetime) -> float:
        """The open time between `start` and `end`."""
        if end <= start:
            return 0.0
        total = 0.0
        day = start.astimezone(self.zone).date() - dt.timedelta(days=1)
        last = end.astimezone(self.zone).date()
        while day <= last:
            for opens, closes in self.spans_on(day):
                overlap = (min(closes, end) - max(opens, start)).total_seconds()
                total += max(overlap, 0.0)
            day += dt.timedelta(days=1)
        return total


def business_hours(
    time_zone: str | None,
    hours: Mapping[str, Sequence[Sequence[str]]] | None,
    holidays: Sequence[str] | None,
) -> BusinessHours | None:
    """From the team row's columns; None: no time zone set, always open. Raises HoursError."""
    if not time_zone:
        return None
    try:
        zone = ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise HoursError(f"unknown time zone {time_zone!r} (e.g. Europe/Moscow)") from None
    week: dict[int, list[Span]] = {}
    for weekday, spans in (hours or {}).items():
        if weekday not in {str(n) for n in range(7)}:
            raise HoursError(f"a weekday is 0 (Monday) to 6 (Sunday), not {weekday!r}")
        week[int(weekday)] = _apart(sorted((_span(span) for span in spans), key=lambda s: s[0]))
    try:
        days = frozenset(dt.date.fromisoformat(day) for day in holidays or ())
    except ValueError:
        raise HoursError("a holiday is a day written YYYY-MM-DD") from None
    return BusinessHours(zone, week, days)


def _apart(spans: list[Span]) -> list[Span]:
    for (_, end), (start, _) in itertools.pairwise(spans):
        if end is None or end > start:
            raise HoursError("a day's open hours must not overlap")
    return spans


def _span(span: Sequence[str]) -> Span:
    if len(span) != 2 or not all(_CLOCK.fullmatch(clock) for clock in span):
        raise HoursError(f"open hours are two times HH:MM, e.g. 09:00-18:00, not {span!r}")
    start, end = span
    if start == "24:00" or (end != "24:00" and end <= start):
        raise HoursError(f"open hours end after they start, within one day: {start}-{end}")
    return dt.time.fromisoformat(start), None if end == "24:00" else dt.time.fromisoformat(end)


async def teams_hours(conn: AsyncConnection, team_ids: Iterable[int]) -> dict[int, BusinessHours]:
    """The business hours of those of the teams that keep some (hours saved unchecked, by hand,
    count as none: around the clock)."""
    t = teams.c
    rows = await conn.execute(
        sa.select(t.id, t.time_zone, t.hours, t.holidays).where(
            t.id.in_(list(team_ids)), t.time_zone.is_not(None)
        )
    )
    found = {}
    for team_id, zone, week, holidays in rows:
        try:
            hours = business_hours(zone, week, holidays)
        except HoursError as exc:
            log.warning("team %d's business hours ignored: %s", team_id, exc)
            continue
        if hours is not None:
            found[team_id] = hours
    return found
