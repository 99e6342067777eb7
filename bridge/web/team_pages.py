"""Admin pages of teams and of the routing rules that send conversations to them. Forms post and
redirect (no script needed); a refusal goes back to the form's page with the reason. Under
/admin/, which `auth` opens to admins only."""

from __future__ import annotations

from collections import Counter
from typing import TypeVar

import aiohttp_jinja2
from aiohttp import web
from multidict import MultiDictProxy

from bridge.domain import HandoffReason, Network
from bridge.inbox.agents import list_agents
from bridge.inbox.labels import list_labels
from bridge.inbox.routing_rules import (
    MAX_TAG_CHARS,
    MAX_WORDS,
    RuleDraft,
    RuleError,
    RuleNotFound,
    add_rule,
    delete_rule,
    list_rules,
    move_rule,
    split_words,
)
from bridge.inbox.teams import (
    MAX_CAPACITY,
    MAX_NAME_CHARS,
    MAX_REASSIGN_MINUTES,
    TeamDraft,
    TeamError,
    TeamNotFound,
    change_team,
    create_team,
    delete_team,
    get_team,
    list_teams,
    team_usage,
)
from bridge.web.keys import ENGINE
from bridge.web.openapi import row_id
from bridge.web.pages import back_with_error, context, labels_stylesheet

routes = web.RouteTableDef()

# an agent taking a conversation over is no handoff the rules see (the pipeline applies them)
ROUTED_REASONS = [reason for reason in HandoffReason if reason is not HandoffReason.AGENT_TOOK_OVER]
Choice = TypeVar("Choice", Network, HandoffReason)
# what the store takes, for the forms' own checks
LIMITS = {"name": MAX_NAME_CHARS, "capacity": MAX_CAPACITY, "minutes": MAX_REASSIGN_MINUTES}


def _path_id(request: web.Request, name: str, what: str) -> int:
    value = row_id(request.match_info[name])
    if value is None:
        raise web.HTTPNotFound(text=f"no such {what}")
    return value


def _form_id(value: object) -> int | None:
    """An id chosen in a form ("" for none); one no stored row can have is a crafted request."""
    if value in (None, ""):
        return None
    found = row_id(str(value))
    if found is None:
        raise web.HTTPBadRequest(text=f"{value!r}: not an id")
    return found


def _whole(text: str, refusal: str) -> int:
    """A form's whole number; the store's own rules refuse one out of range."""
    if not (text.isdecimal() and len(text) <= 9):
        raise TeamError(refusal)
    return int(text)


def _team_draft(form: MultiDictProxy[str | bytes | bytearray | web.FileField]) -> TeamDraft:
    minutes = str(form.get("reassign_after_minutes", "")).strip()
    return TeamDraft(
        name=str(form.get("name", "")),
        member_ids=[member for value in form.getall("member", []) if (member := _form_id(value))],
        auto_assign=form.get("auto_assign") == "1",
        capacity=_whole(
            str(form.get("capacity", "")).strip(),
            "a capacity is a whole number of open conversations an agent",
        ),
        reassign_after_minutes=_whole(
            minutes, "re-assignment comes after a whole number of minutes, or never (empty)"
        )
        if minutes
        else None,
        time_zone=str(form.get("time_zone", "")).strip() or None,
        hours={
            str(day): [span.strip().split("-", 1) for span in text.split(",") if span.strip()]
            for day in range(7)
            if (text := str(form.get(f"hours_{day}", "")).strip())
        },
        holidays=str(form.get("holidays", "")).replace(",", " ").split(),
    )


@routes.get("/admin/teams")
async def teams_page(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    return aiohttp_jinja2.render_template(
        "teams.html",
        request,
        context(
            request,
            teams=await list_teams(engine),
            agents={agent.id: agent for agent in await list_agents(engine)},
            usage=await team_usage(engine),
            rule_counts=Counter(rule.team_id for rule in await list_rules(engine)),
            limits=LIMITS,
            error=request.query.get("error"),
        ),
    )


@routes.post("/admin/teams")
async def add_team_action(request: web.Request) -> web.StreamResponse:
    try:
        await create_team(request.app[ENGINE], _team_draft(await request.post()))
    except TeamError as exc:
        raise back_with_error("/admin/teams", exc) from None
    raise web.HTTPSeeOther("/admin/teams")


@routes.get("/admin/teams/{team_id}")
async def team_page(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    try:
        team = await get_team(engine, _path_id(request, "team_id", "team"))
    except TeamNotFound:
        raise web.HTTPNotFound(text="no such team") from None
    return aiohttp_jinja2.render_template(
        "team.html",
        request,
        context(
            request,
            team=team,
            # the active agents, and those disabled who are members still (not dropped unseen)
            agents=[
                agent
                for agent in await list_agents(engine)
                if agent.active or agent.id in team.member_ids
            ],
            limits=LIMITS,
            error=request.query.get("error"),
        ),
    )


@routes.post("/admin/teams/{team_id}")
async def change_team_action(request: web.Request) -> web.StreamResponse:
    team_id = _path_id(request, "team_id", "team")
    try:
        await change_team(request.app[ENGINE], team_id, _team_draft(await request.post()))
    except TeamNotFound:
        raise web.HTTPNotFound(text="no such team") from None
    except TeamError as exc:
        raise back_with_error(f"/admin/teams/{team_id}", exc) from None
    raise web.HTTPSeeOther("/admin/teams")


@routes.post("/admin/teams/{team_id}/delete")
async def delete_team_action(request: web.Request) -> web.StreamResponse:
    try:
        await delete_team(request.app[ENGINE], _path_id(request, "team_id", "team"))
    except TeamNotFound:
        raise web.HTTPNotFound(text="no such team") from None
    raise web.HTTPSeeOther("/admin/teams")


@routes.get("/admin/routing")
async def routing_page(request: web.Request) -> web.Response:
    engine = request.app[ENGINE]
    labels = await list_labels(engine)
    return aiohttp_jinja2.render_template(
        "routing.html",
        request,
        context(
            request,
            rules=await list_rules(engine),
            teams={team.id: team for team in await list_teams(engine)},
            labels={label.id: label for label in labels},
            labels_css=labels_stylesheet(labels),
            networks=list(Network),
            reasons=ROUTED_REASONS,
            max_tag=MAX_TAG_CHARS,
            max_words=MAX_WORDS,
            error=request.query.get("error"),
        ),
    )


def _choice(kind: type[Choice], value: object) -> Choice | None:
    """A select's value ("" for any); one no form offers is a crafted request."""
    if value in (None, ""):
        return None
    try:
        return kind(str(value))
    except ValueError:
        raise web.HTTPBadRequest(text=f"{value!r}: not a choice of the form") from None


@routes.post("/admin/routing")
async def add_rule_action(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    draft = RuleDraft(
        network=_choice(Network, form.get("network")),
        language=str(form.get("language", "")) or None,
        tag=str(form.get("tag", "")) or None,
        reason=_choice(HandoffReason, form.get("reason")),
        team_id=_form_id(form.get("team_id")),
        label_id=_form_id(form.get("label_id")),
        words=split_words(str(form.get("words", ""))),
        urgent=form.get("urgent") == "on",
    )
    try:
        await add_rule(request.app[ENGINE], draft)
    except RuleError as exc:
        raise back_with_error("/admin/routing", exc) from None
    raise web.HTTPSeeOther("/admin/routing")


@routes.post("/admin/routing/{rule_id}/delete")
async def delete_rule_action(request: web.Request) -> web.StreamResponse:
    try:
        await delete_rule(request.app[ENGINE], _path_id(request, "rule_id", "rule"))
    except RuleNotFound:
        raise web.HTTPNotFound(text="no such rule") from None
    raise web.HTTPSeeOther("/admin/routing")


@routes.post("/admin/routing/{rule_id}/move")
async def move_rule_action(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    try:
        await move_rule(
            request.app[ENGINE],
            _path_id(request, "rule_id", "rule"),
            earlier=form.get("direction") == "earlier",
        )
    except RuleNotFound:
        raise web.HTTPNotFound(text="no such rule") from None
    raise web.HTTPSeeOther("/admin/routing")
