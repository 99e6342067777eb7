"""Agents: who makes the request, and the admins' list of agents (add, change role or language,
disable); API tokens: an agent's own (list, revoke), and any agent's for admins (issue too)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, Field, StringConstraints

from bridge.inbox.agents import (
    AgentError,
    AgentInfo,
    Role,
    add_agent,
    get_agent,
    list_agents,
    update_agent,
)
from bridge.inbox.passwords import MAX_CHARS, MIN_CHARS
from bridge.store.models import utcnow
from bridge.web import auth
from bridge.web.api.common import Body, Done, json_response, path_id, read_body
from bridge.web.keys import ENGINE
from bridge.web.openapi import Endpoints

endpoints = Endpoints()
Language = Annotated[str, StringConstraints(pattern="^(en|ru)$")]


class AgentIn(Body):
    login: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    # the rest of the policy (not common, not the login...) answers 409 with its reason
    password: Annotated[str, StringConstraints(min_length=MIN_CHARS, max_length=MAX_CHARS)]
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
    except AgentError as exc:  # a login taken, a password the policy refuses: the reason
        raise web.HTTPConflict(text=str(exc)) from None
    return json_response(_agent_out(agent))


@endpoints.route(
    "PATCH",
    "/api/admin/agents/{agent_id}",
    "Change an agent's role, language, or disable them (signed out, their tokens ended)",
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
    return json_response(_agent_out(agent))


class TokenIn(Body):
    name: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    scope: auth.TokenScope = auth.TokenScope.FULL
    expires_in_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class TokenOut(BaseModel):
    id: int
    name: str
    scope: auth.TokenScope
    created_at: dt.datetime
    expires_at: dt.datetime | None
    expired: bool


class TokenList(BaseModel):
    tokens: list[TokenOut]


class IssuedToken(TokenOut):
    token: str = Field(description="the token itself, shown this once: send it as a Bearer token")


def _token_out(token: auth.TokenInfo, now: dt.datetime) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        scope=token.scope,
        created_at=token.created_at,
        expires_at=token.expires_at,
        expired=token.expired(now),
    )


async def _tokens_of(request: web.Request, agent_id: int) -> web.Response:
    tokens = await auth.list_api_tokens(request.app[ENGINE], agent_id)
    now = utcnow()
    return json_response(TokenList(tokens=[_token_out(t, now) for t in tokens]))


async def _revoke(request: web.Request, agent_id: int) -> web.Response:
    if not await auth.revoke_api_token(request.app[ENGINE], agent_id, path_id(request, "token_id")):
        raise web.HTTPNotFound(text="no such token")
    return json_response(Done())


@endpoints.route(
    "GET", "/api/me/tokens", "The API tokens of the agent making the request", answer=TokenList
)
async def my_tokens(request: web.Request) -> web.Response:
    return await _tokens_of(request, auth.current_session(request).agent.id)


@endpoints.route(
    "DELETE", "/api/me/tokens/{token_id}", "Revoke one of one's own API tokens", answer=Done
)
async def my_token_revoke(request: web.Request) -> web.Response:
    return await _revoke(request, auth.current_session(request).agent.id)


@endpoints.route(
    "GET",
    "/api/admin/agents/{agent_id}/tokens",
    "An agent's API tokens",
    answer=TokenList,
    admin=True,
)
async def agent_tokens(request: web.Request) -> web.Response:
    agent_id = path_id(request, "agent_id")
    if await get_agent(request.app[ENGINE], agent_id) is None:
        raise web.HTTPNotFound(text="no such agent")
    return await _tokens_of(request, agent_id)


@endpoints.route(
    "POST",
    "/api/admin/agents/{agent_id}/tokens",
    "Issue an API token acting as the agent: full or read-only, expiring or not",
    body=TokenIn,
    answer=IssuedToken,
    admin=True,
)
async def agent_token_issue(request: web.Request) -> web.Response:
    body = await read_body(request, TokenIn)
    engine = request.app[ENGINE]
    agent_id = path_id(request, "agent_id")
    if await get_agent(engine, agent_id) is None:
        raise web.HTTPNotFound(text="no such agent")
    days = body.expires_in_days
    try:
        token = await auth.issue_api_token(
            engine,
            agent_id,
            body.name,
            scope=body.scope,
            valid_for=dt.timedelta(days=days) if days is not None else None,
        )
    except AgentError as exc:  # disabled
        raise web.HTTPConflict(text=str(exc)) from None
    issued = auth.token_id(token)
    (info,) = [t for t in await auth.list_api_tokens(engine, agent_id) if t.id == issued]
    out = _token_out(info, utcnow())
    return json_response(IssuedToken(**out.model_dump(), token=token))


@endpoints.route(
    "DELETE",
    "/api/admin/agents/{agent_id}/tokens/{token_id}",
    "Revoke an agent's API token",
    answer=Done,
    admin=True,
)
async def agent_token_revoke(request: web.Request) -> web.Response:
    return await _revoke(request, path_id(request, "agent_id"))
