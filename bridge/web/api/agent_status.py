"""Agents' presence: who is online, away or offline, and an agent saying which they are. Only
online agents are given conversations by their teams (`bridge.inbox.assignment`)."""

from __future__ import annotations

from typing import Literal

from aiohttp import web
from pydantic import BaseModel

from bridge.inbox.agent_status import Status, choose_status, statuses
from bridge.store.models import utcnow
from bridge.web import auth
from bridge.web.api.common import Body, Done, json_response, read_body
from bridge.web.keys import ENGINE, SETTINGS
from bridge.web.openapi import Endpoints

endpoints = Endpoints()


class AgentStatusOut(BaseModel):
    agent_id: int
    status: Status


class AgentStatusList(BaseModel):
    agents: list[AgentStatusOut]


class StatusIn(Body):
    status: Literal["online", "away"]


@endpoints.route(
    "GET",
    "/api/agents/status",
    "Every active agent's status: online, away (said so, or idle) or offline (no inbox open)",
    answer=AgentStatusList,
)
async def list_statuses(request: web.Request) -> web.Response:
    found = await statuses(request.app[ENGINE], utcnow(), request.app[SETTINGS].away_after)
    return json_response(
        AgentStatusList(
            agents=[AgentStatusOut(agent_id=a, status=s) for a, s in sorted(found.items())]
        )
    )


@endpoints.route(
    "PUT",
    "/api/me/status",
    "Say you are online or away (away: your teams give you no new conversations)",
    body=StatusIn,
    answer=Done,
)
async def put_status(request: web.Request) -> web.Response:
    body = await read_body(request, StatusIn)
    agent = auth.current_session(request).agent
    await choose_status(request.app[ENGINE], agent.id, Status(body.status), utcnow())
    return json_response(Done())
