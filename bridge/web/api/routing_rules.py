"""Routing rules: admins list them in the order they are tried, add one (tried after the others),
delete one and move one a place earlier or later. A rule with words is a listening rule: it holds
for a public comment containing any of them, and may mark the thread urgent. Refusals: 404 no
such rule, 400 a body the document refuses, 409 a rule its own rules refuse (with the reason: it
gives nothing, urgency without words, a team or label that does not exist)."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bridge.domain import HandoffReason, Network
from bridge.inbox.routing_rules import (
    MAX_TAG_CHARS,
    MAX_WORD_CHARS,
    MAX_WORDS,
    RoutingRule,
    RuleDraft,
    RuleError,
    RuleNotFound,
    add_rule,
    delete_rule,
    list_rules,
    move_rule,
)
from bridge.web.api.common import Body, Done, RowId, json_response, path_id, read_body
from bridge.web.keys import ENGINE
from bridge.web.openapi import Endpoints

endpoints = Endpoints()


class RuleOut(BaseModel):
    """Conditions (null: any) and what a conversation that meets them all gets."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    position: int
    network: Network | None
    language: str | None
    tag: str | None
    reason: HandoffReason | None
    team_id: int | None
    label_id: int | None
    words: list[str]
    urgent: bool


class RuleList(BaseModel):
    rules: list[RuleOut]


class RuleIn(Body):
    """Conditions (left out or null: any) and a team, a label or both."""

    network: Network | None = None
    language: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}$")] | None = None
    tag: Annotated[str, StringConstraints(min_length=1, max_length=MAX_TAG_CHARS)] | None = None
    reason: HandoffReason | None = None
    team_id: RowId | None = None
    label_id: RowId | None = None
    words: list[Annotated[str, StringConstraints(min_length=1, max_length=MAX_WORD_CHARS)]] = Field(
        default_factory=list, max_length=MAX_WORDS
    )
    urgent: bool = False


class RuleMove(Body):
    earlier: bool


def _list(rules: list[RoutingRule]) -> RuleList:
    return RuleList(rules=[RuleOut.model_validate(rule) for rule in rules])


@endpoints.route(
    "GET",
    "/api/admin/routing-rules",
    "Every routing rule, in the order they are tried",
    answer=RuleList,
    admin=True,
)
async def rules_list(request: web.Request) -> web.Response:
    return json_response(_list(await list_rules(request.app[ENGINE])))


@endpoints.route(
    "POST",
    "/api/admin/routing-rules",
    "Add a routing rule, tried after the others",
    body=RuleIn,
    answer=RuleOut,
    admin=True,
)
async def rule_add(request: web.Request) -> web.Response:
    body = await read_body(request, RuleIn)
    draft = RuleDraft(**{**body.model_dump(), "words": tuple(body.words)})
    try:
        rule = await add_rule(request.app[ENGINE], draft)
    except RuleError as exc:  # a valid body the rule's own rules refuse, as a label's (409)
        raise web.HTTPConflict(text=str(exc)) from None
    return json_response(RuleOut.model_validate(rule))


@endpoints.route(
    "DELETE",
    "/api/admin/routing-rules/{rule_id}",
    "Delete a routing rule",
    answer=Done,
    admin=True,
)
async def rule_delete(request: web.Request) -> web.Response:
    try:
        await delete_rule(request.app[ENGINE], path_id(request, "rule_id"))
    except RuleNotFound:
        raise web.HTTPNotFound(text="no such rule") from None
    return json_response(Done())


@endpoints.route(
    "POST",
    "/api/admin/routing-rules/{rule_id}/move",
    "Swap a rule with the one tried before it (earlier) or after it; at an end, nothing moves",
    body=RuleMove,
    answer=RuleList,
    admin=True,
)
async def rule_move(request: web.Request) -> web.Response:
    body = await read_body(request, RuleMove)
    try:
        rules = await move_rule(
            request.app[ENGINE], path_id(request, "rule_id"), earlier=body.earlier
        )
    except RuleNotFound:
        raise web.HTTPNotFound(text="no such rule") from None
    return json_response(_list(rules))
