"""Agents: who makes the request, and the admins' list of agents (add, change role or language,
disable)."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from bridge.inbox.agents import AgentError, AgentInfo, Role, add_agent, list_agents, update_agent
from bridge.web import auth
from bridge.web.api.common import Body, json_response, path_id, read_body
from bridge.web.keys import ENGINE
from bridge.web.openapi import Endpoints

endpoints = Endpoints()
Language = Annotated[str, StringConstraints(pattern="^(en|ru)$")]


class AgentIn(Body):
    login: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    password: Annotated[str, StringConstraints(min_length=8, max_length=1024)]
    display_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    role: Role = Role.AGENT
    language: Language = "en"


class AgentPatch(Body):
    role: Role | None = None
    active: bool | None = None
    language: Language | None = None


class AgentOut(BaseModel):
    id: int
    login: str
    display_name: str
    role: Role
    language: str
    active: bool


class AgentList(BaseModel):
    agents: list[AgentOut]


def _agent_out(agent: AgentInfo) -> AgentOut:
    return AgentOut.model_validate(agent, from_attributes=True)


@endpoints.route("GET", "/api/me", "The agent making the request", answer=AgentOut)
async def me(request: web.Request) -> web.Response:
    return json_response(_agent_out(auth.current_session(request).agent))


@endpoints.route("GET", "/api/admin/agents", "Every agent", answer=AgentList, admin=True)
async def agents_list(request: web.Request) -> web.Response:
    agents = await list_agents(request.app[ENGINE])
    return json_response(AgentList(agents=[_agent_out(a) for a in agents]))


@endpoints.route(
    "POST", "/api/admin/agents", "Add an agent", body=AgentIn, answer=AgentOut, admin=True
)
async def agents_add(request: web.Request) -> web.Response:
    body = await read_body(request, AgentIn)
    try:
        agent = await add_agent(
            request.app[ENGINE],
            body.login,
            body.password,
            display_name=body.display_name,
            role=body.role,
            language=body.language,
        )
    except AgentError as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    return json_response(_agent_out(agent))


@endpoints.route(
    "PATCH",
    "/api/admin/agents/{agent_id}",
    "Change an agent's role, language, or disable them (signed out at once)",
    body=AgentPatch,
    answer=AgentOut,
    admin=True,
)
async def agents_change(request: web.Request) -> web.Response:
    body = await read_body(request, AgentPatch)
    engine = request.app[ENGINE]
    agent_id = path_id(request, "agent_id")
    try:
        agent = await update_agent(
            engine, agent_id, role=body.role, active=body.active, language=body.language
        )
    except AgentError as exc:
        status = web.HTTPNotFound if str(exc).startswith("no agent") else web.HTTPConflict
        raise status(text=str(exc)) from None
    if body.active is False:
        await auth.end_sessions_of(engine, agent_id)
    return json_response(_agent_out(agent))
