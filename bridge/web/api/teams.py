"""Teams: every agent reads who is in which (for pickers and filters), admins create, change and
delete them. Which conversations a team gets is `routing_rules`. Refusals: 404 no such team, 400
a body the document refuses, 409 a team its own rules refuse (the reason: a name blank or taken, a
time zone unknown, …)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from bridge.inbox.teams import (
    MAX_CAPACITY,
    MAX_NAME_CHARS,
    MAX_REASSIGN_MINUTES,
    Team,
    TeamDraft,
    TeamError,
    TeamNotFound,
    change_team,
    create_team,
    delete_team,
    list_teams,
)
from bridge.web.api.common import Body, Done, RowId, json_response, path_id, read_body
from bridge.web.keys import ENGINE
from bridge.web.openapi import Endpoints

endpoints = Endpoints()


class TeamBrief(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    member_ids: list[int]


class TeamBriefList(BaseModel):
    teams: list[TeamBrief]


Clock = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
Weekday = Literal["0", "1", "2", "3", "4", "5", "6"]
# a span, opening and closing: a list of two (OpenAPI 3.0 has no tuples)
Span = Annotated[list[Clock], Field(min_length=2, max_length=2)]
HOURS_DESCRIPTION = (
    "per weekday (0 Monday .. 6 Sunday) the spans it is open, e.g. "
    '{"0": [["09:00", "13:00"], ["14:00", "18:00"]]}; a day left out is closed'
)


class TeamOut(TeamBrief):
    auto_assign: bool
    capacity: int
    reassign_after_minutes: int | None
    time_zone: str | None
    hours: dict[Weekday, list[Span]] | None = Field(description=HOURS_DESCRIPTION)
    holidays: list[dt.date] | None


class TeamList(BaseModel):
    teams: list[TeamOut]


class TeamIn(Body):
    """A team as a whole: a field left out takes its default (on a change too)."""

    name: Annotated[str, Field(min_length=1, max_length=MAX_NAME_CHARS)]
    member_ids: Annotated[list[RowId], Field(max_length=1000, default_factory=list)]
    auto_assign: bool = True
    capacity: Annotated[int, Field(ge=1, le=MAX_CAPACITY)] = 5
    # None: an unanswered conversation stays with its assignee
    reassign_after_minutes: Annotated[int, Field(ge=1, le=MAX_REASSIGN_MINUTES)] | None = None
    # business hours; no time zone: open around the clock
    time_zone: Annotated[str, Field(min_length=1, max_length=64)] | None = Field(
        default=None, description="an IANA time zone, e.g. Europe/Moscow"
    )
    hours: dict[Weekday, list[Span]] | None = Field(default=None, description=HOURS_DESCRIPTION)
    holidays: list[dt.date] = Field(default_factory=list, max_length=366)

    def draft(self) -> TeamDraft:
        return TeamDraft(
            self.name,
            self.member_ids,
            self.auto_assign,
            self.capacity,
            self.reassign_after_minutes,
            self.time_zone,
            {day: [list(span) for span in spans] for day, spans in (self.hours or {}).items()},
            [day.isoformat() for day in self.holidays],
        )


def _out(team: Team) -> TeamOut:
    return TeamOut.model_validate(team)


@endpoints.route("GET", "/api/teams", "Every team, by name, with its members", answer=TeamBriefList)
async def teams_list(request: web.Request) -> web.Response:
    known = await list_teams(request.app[ENGINE])
    return json_response(TeamBriefList(teams=[TeamBrief.model_validate(team) for team in known]))


@endpoints.route(
    "GET",
    "/api/admin/teams",
    "Every team, by name, with its members and how it assigns",
    answer=TeamList,
    admin=True,
)
async def teams_admin_list(request: web.Request) -> web.Response:
    known = await list_teams(request.app[ENGINE])
    return json_response(TeamList(teams=[_out(team) for team in known]))


@endpoints.route(
    "POST",
    "/api/admin/teams",
    "Add a team (a name is taken whatever its case)",
    body=TeamIn,
    answer=TeamOut,
    admin=True,
)
async def team_add(request: web.Request) -> web.Response:
    body = await read_body(request, TeamIn)
    try:
        team = await create_team(request.app[ENGINE], body.draft())
    except TeamError as exc:  # a valid body the team's own rules refuse, as a label's (409)
        raise web.HTTPConflict(text=str(exc)) from None
    return json_response(_out(team))


@endpoints.route(
    "PUT",
    "/api/admin/teams/{team_id}",
    "Replace what a team is; a member who stays keeps their turn",
    body=TeamIn,
    answer=TeamOut,
    admin=True,
)
async def team_change(request: web.Request) -> web.Response:
    body = await read_body(request, TeamIn)
    try:
        team = await change_team(request.app[ENGINE], path_id(request, "team_id"), body.draft())
    except TeamNotFound:
        raise web.HTTPNotFound(text="no such team") from None
    except TeamError as exc:  # a valid body the team's own rules refuse, as a label's (409)
        raise web.HTTPConflict(text=str(exc)) from None
    return json_response(_out(team))


@endpoints.route(
    "DELETE",
    "/api/admin/teams/{team_id}",
    "Delete a team: its conversations stay, with no team; its routing rules go",
    answer=Done,
    admin=True,
)
async def team_delete(request: web.Request) -> web.Response:
    try:
        await delete_team(request.app[ENGINE], path_id(request, "team_id"))
    except TeamNotFound:
        raise web.HTTPNotFound(text="no such team") from None
    return json_response(Done())
