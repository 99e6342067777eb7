"""Conversations as the inbox shows them: a view of the list with every view's count, and one
conversation with the customer's history on every network."""

from __future__ import annotations

import datetime as dt
from zoneinfo import available_timezones

from aiohttp import web
from pydantic import BaseModel, Field

from bridge.domain import ConversationState, Network
from bridge.inbox.paging import MAX_PAGE_SIZE, PAGE_SIZE
from bridge.inbox.reads import mark_seen
from bridge.inbox.search import MAX_QUERY_LENGTH
from bridge.inbox.views import HistoryMessage, View, conversation_view, inbox
from bridge.store.models import utcnow
from bridge.web import auth
from bridge.web.api.common import LANGUAGE_PARAM, json_response, path_id
from bridge.web.api.labels import LabelOut
from bridge.web.inbox_params import inbox_query
from bridge.web.keys import COUNTS, ENGINE, SETTINGS
from bridge.web.openapi import MAX_ID, Endpoints

endpoints = Endpoints()
NETWORK_PARAM = {"type": "string", "enum": [n.value for n in Network]}
ID_OR_NONE = r"^(none|[1-9][0-9]{0,8})$"  # every id it allows is below MAX_ID


class SlaOut(BaseModel):
    waiting_s: float
    limit_s: float
    level: str


class ConversationRowOut(BaseModel):
    id: int
    network: Network
    state: ConversationState
    customer: str
    language: str | None
    preview: str
    last_message_at: dt.datetime
    handoff_reason: str | None
    assignee: str | None
    team: str | None
    sla: SlaOut | None
    unread: bool = Field(description="the customer wrote since you last opened it")
    labels: list[LabelOut]
    public: bool = Field(description="a public thread: the comments under a post, seen by all")
    post: str | None = Field(
        default=None, description="a public thread's post, its first 120 characters"
    )
    priority: int = Field(
        description="0 usual; 1 urgent (a listening rule's words) or angry; 2 both. The open "
        "views list the higher first"
    )


class InboxOut(BaseModel):
    conversations: list[ConversationRowOut]
    counts: dict[str, int]
    network_counts: dict[str, int]
    language_counts: dict[str, int]
    label_counts: dict[str, int] = Field(
        description="conversations of the view with each label, by the label's id"
    )
    next_cursor: str | None = Field(
        description="give it as `cursor` for the next page; null: this page is the last"
    )


class ConversationOut(BaseModel):
    id: int
    network: Network
    state: ConversationState
    customer_id: int
    customer: str
    language: str | None
    handoff_reason: str | None
    assignee_id: int | None
    assignee: str | None
    team_id: int | None
    networks: list[Network]
    history: list[HistoryMessage]
    labels: list[LabelOut]
    public: bool = Field(
        description="a public thread: the comments under one post, by many authors; a reply "
        "goes out publicly"
    )
    post_text: str | None = Field(description="the post it hangs under, when known")
    post_url: str | None = Field(description="the post's page on the network")


@endpoints.route(
    "GET",
    "/api/conversations",
    "A page of a view of the inbox (longest waiting first; resolved: latest first) and the "
    "count of every view",
    answer=InboxOut,
    query=(
        ("view", {"type": "string", "enum": [v.value for v in View]}),
        ("network", NETWORK_PARAM),
        ("language", LANGUAGE_PARAM),
        (
            "label",
            {"type": "integer", "minimum": 1, "maximum": MAX_ID, "description": "a label's id"},
        ),
        (
            "assignee",
            {
                "type": "string",
                "pattern": ID_OR_NONE,
                "description": "an agent's id, or none: the unassigned ones",
            },
        ),
        (
            "team",
            {
                "type": "string",
                "pattern": ID_OR_NONE,
                "description": "a team's id, or none: those of no team",
            },
        ),
        (
            "since",
            {"type": "string", "format": "date", "description": "started this day (tz) or after"},
        ),
        (
            "until",
            {"type": "string", "format": "date", "description": "started this day (tz) or before"},
        ),
        (
            "tz",
            {
                "type": "string",
                "enum": sorted(available_timezones()),
                "default": "UTC",
                "description": "the time zone (IANA, such as Europe/Moscow) of since and until",
            },
        ),
        (
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_PAGE_SIZE, "default": PAGE_SIZE},
        ),
        ("cursor", {"type": "string", "description": "the next_cursor of the page before"}),
        (
            "q",
            {
                "type": "string",
                "maxLength": MAX_QUERY_LENGTH,
                "description": "words of the messages (any word form), a customer's name, "
                "or their id on the network",
            },
        ),
    ),
)
async def list_conversations(request: web.Request) -> web.Response:
    session = auth.current_session(request)
    try:
        query = inbox_query(request.query)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    app = request.app
    result = await inbox(
        app[ENGINE], session.agent.id, query, app[SETTINGS].sla_for(), utcnow(), app[COUNTS]
    )
    return json_response(
        InboxOut(
            conversations=[
                ConversationRowOut.model_validate(row, from_attributes=True) for row in result.rows
            ],
            counts={v.value: n for v, n in result.counts.items()},
            network_counts={network.value: n for network, n in result.by_network.items()},
            language_counts=result.by_language,
            label_counts={str(label_id): n for label_id, n in result.by_label.items()},
            next_cursor=result.next_page.encode() if result.next_page is not None else None,
        )
    )


@endpoints.route(
    "GET",
    "/api/conversations/{conversation_id}",
    "A conversation with the customer's history on every network",
    answer=ConversationOut,
)
async def get_conversation(request: web.Request) -> web.Response:
    view = await conversation_view(
        request.app[ENGINE],
        path_id(request, "conversation_id"),
        stuck_after=request.app[SETTINGS].stuck_after,
    )
    if view is None:
        raise web.HTTPNotFound(text="no such conversation")
    await mark_seen(request.app[ENGINE], auth.current_session(request).agent.id, view)
    return json_response(ConversationOut.model_validate(view, from_attributes=True))
