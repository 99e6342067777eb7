"""Admin pages: agents and their API tokens, canned responses, labels, knowledge gaps (the
articles are `kb_pages`). Every path here is under /admin/, which `auth` opens to admins only."""

from __future__ import annotations

import datetime as dt

import aiohttp_jinja2
from aiohttp import web

from bridge.domain import Network
from bridge.inbox.agents import AgentError, Role, add_agent, get_agent, list_agents, update_agent
from bridge.inbox.canned import CannedError, add_canned, delete_canned, list_canned
from bridge.inbox.labels import (
    LabelError,
    LabelNotFound,
    change_label,
    create_label,
    delete_label,
    label_usage,
    list_labels,
)
from bridge.inbox.solutions import community_answers
from bridge.knowledge.gaps import knowledge_gaps
from bridge.store.models import utcnow
from bridge.web import auth
from bridge.web.keys import ENGINE
from bridge.web.openapi import row_id
from bridge.web.pages import back_with_error, context, labels_stylesheet

routes = web.RouteTableDef()


@routes.get("/admin/agents")
async def agents_page(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template(
        "agents.html",
        request,
        context(
            request,
            agents=await list_agents(request.app[ENGINE]),
            roles=list(Role),
            error=request.query.get("error"),
        ),
    )


@routes.post("/admin/agents")
async def add_agent_action(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        await add_agent(
            request.app[ENGINE],
            str(form.get("login", "")),
            str(form.get("password", "")),
            display_name=str(form.get("display_name", "")) or None,
            role=Role(str(form.get("role", Role.AGENT.value))),
            language=str(form.get("language", "en")),
        )
    except (AgentError, ValueError) as exc:
        raise back_with_error("/admin/agents", exc) from None
    raise web.HTTPSeeOther("/admin/agents")


@routes.post("/admin/agents/{agent_id}")
async def change_agent_action(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    engine = request.app[ENGINE]
    agent_id = row_id(request.match_info["agent_id"])
    if agent_id is None:
        raise web.HTTPNotFound(text="no such agent")
    try:
        role = Role(str(form["role"])) if form.get("role") else None
        active = {"1": True, "0": False}.get(str(form.get("active", "")))
        await update_agent(engine, agent_id, role=role, active=active)
    except (AgentError, ValueError) as exc:
        raise back_with_error("/admin/agents", exc) from None
    raise web.HTTPSeeOther("/admin/agents")


async def _tokens_page(
    request: web.Request, *, issued: str | None = None, error: str | None = None
) -> web.Response:
    agent = await get_agent(request.app[ENGINE], row_id(request.match_info["agent_id"]) or 0)
    if agent is None:
        raise web.HTTPNotFound(text="no such agent")
    return aiohttp_jinja2.render_template(
        "tokens.html",
        request,
        context(
            request,
            agent=agent,
            tokens=await auth.list_api_tokens(request.app[ENGINE], agent.id),
            scopes=list(auth.TokenScope),
            issued=issued,
            error=error or request.query.get("error"),
        ),
        status=400 if error else 200,
    )


@routes.get("/admin/agents/{agent_id:[0-9]+}/tokens")
async def tokens_page(request: web.Request) -> web.Response:
    return await _tokens_page(request)


@routes.post("/admin/agents/{agent_id:[0-9]+}/tokens")
async def issue_token_action(request: web.Request) -> web.Response:
    """Issue a token and show it on the page this once (it is kept only as a digest)."""
    form = await request.post()
    engine = request.app[ENGINE]
    agent_id = row_id(request.match_info["agent_id"])
    if agent_id is None:
        raise web.HTTPNotFound(text="no such agent")
    days = str(form.get("expires_in_days", "")).strip()
    try:
        if days and not (days.isdigit() and 1 <= int(days) <= 3650):
            raise AgentError("expires in: a number of days from 1 to 3650, or empty for never")
        token = await auth.issue_api_token(
            engine,
            agent_id,
            str(form.get("name", "")).strip() or "token",
            scope=auth.TokenScope(str(form.get("scope", auth.TokenScope.FULL.value))),
            valid_for=dt.timedelta(days=int(days)) if days else None,
        )
    except (AgentError, ValueError) as exc:
        return await _tokens_page(request, error=str(exc))
    return await _tokens_page(request, issued=token)


@routes.post("/admin/agents/{agent_id:[0-9]+}/tokens/{token_id:[0-9]+}/revoke")
async def revoke_token_action(request: web.Request) -> web.StreamResponse:
    agent_id = row_id(request.match_info["agent_id"])
    token_id = row_id(request.match_info["token_id"])
    if agent_id is None or token_id is None:
        raise web.HTTPNotFound(text="no such token")
    await auth.revoke_api_token(request.app[ENGINE], agent_id, token_id)
    raise web.HTTPSeeOther(f"/admin/agents/{agent_id}/tokens")


@routes.get("/admin/canned")
async def canned_page(request: web.Request) -> web.Response:
    return aiohttp_jinja2.render_template(
        "canned.html",
        request,
        context(
            request, canned=await list_canned(request.app[ENGINE]), error=request.query.get("error")
        ),
    )


@routes.post("/admin/canned")
async def add_canned_action(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    language = str(form.get("language", "")) or None
    try:
        await add_canned(
            request.app[ENGINE], str(form.get("title", "")), str(form.get("text", "")), language
        )
    except CannedError as exc:
        raise back_with_error("/admin/canned", exc) from None
    raise web.HTTPSeeOther("/admin/canned")


@routes.post("/admin/canned/{canned_id:[0-9]+}/delete")
async def delete_canned_action(request: web.Request) -> web.StreamResponse:
    canned_id = row_id(request.match_info["canned_id"])
    if canned_id is None:
        raise web.HTTPNotFound(text="no such canned response")
    await delete_canned(request.app[ENGINE], canned_id)
    raise web.HTTPSeeOther("/admin/canned")


@routes.get("/admin/labels")
async def labels_page(request: web.Request) -> web.Response:
    known = await list_labels(request.app[ENGINE])
    return aiohttp_jinja2.render_template(
        "labels.html",
        request,
        context(
            request,
            labels=known,
            usage=await label_usage(request.app[ENGINE]),
            labels_css=labels_stylesheet(known),
            error=request.query.get("error"),
        ),
    )


@routes.post("/admin/labels")
async def add_label_action(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        await create_label(
            request.app[ENGINE], str(form.get("name", "")), str(form.get("colour", ""))
        )
    except LabelError as exc:
        raise back_with_error("/admin/labels", exc) from None
    raise web.HTTPSeeOther("/admin/labels")


def _label_id(request: web.Request) -> int:
    label_id = row_id(request.match_info["label_id"])
    if label_id is None:
        raise web.HTTPNotFound(text="no such label")
    return label_id


@routes.post("/admin/labels/{label_id:[0-9]+}")
async def change_label_action(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        await change_label(
            request.app[ENGINE],
            _label_id(request),
            name=str(form.get("name", "")),
            colour=str(form.get("colour", "")),
        )
    except LabelNotFound:
        raise web.HTTPNotFound(text="no such label") from None
    except LabelError as exc:
        raise back_with_error("/admin/labels", exc) from None
    raise web.HTTPSeeOther("/admin/labels")


@routes.post("/admin/labels/{label_id:[0-9]+}/delete")
async def delete_label_action(request: web.Request) -> web.StreamResponse:
    try:
        await delete_label(request.app[ENGINE], _label_id(request))
    except LabelNotFound:
        raise web.HTTPNotFound(text="no such label") from None
    raise web.HTTPSeeOther("/admin/labels")


@routes.get("/admin/gaps")
async def gaps_page(request: web.Request) -> web.Response:
    try:
        weeks = min(52.0, max(1.0, float(request.query.get("weeks", "4"))))
        network = Network(request.query["network"]) if request.query.get("network") else None
    except ValueError:
        raise web.HTTPBadRequest(text="weeks: a number; network: a network's name") from None
    since = utcnow() - dt.timedelta(weeks=weeks)
    gaps = await knowledge_gaps(request.app[ENGINE], since, network)
    answered = await community_answers(request.app[ENGINE], since, network)
    return aiohttp_jinja2.render_template(
        "gaps.html",
        request,
        context(
            request,
            gaps=gaps,
            weeks=weeks,
            network=network,
            networks=list(Network),
            drafts=["\n".join(gap.examples) for gap in gaps],
            answered=answered,
        ),
    )
