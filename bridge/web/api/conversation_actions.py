"""What an agent does to a conversation: reply (with files or without), add a note, claim,
transfer, resolve, reopen, send a failed message again, judge the bot's suggestion, set its
labels, move it to a team. Each is a function of `bridge.inbox.actions` (files:
`bridge.inbox.outgoing_files`, labels: `bridge.inbox.labels`, teams: `bridge.inbox.teams`), the
same the inbox's forms call."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.domain import MAX_TEXT_CHARS
from bridge.inbox import actions
from bridge.inbox.labels import LabelNotFound, set_labels
from bridge.inbox.outgoing_files import MAX_FILES, FileRefused
from bridge.inbox.public import MovedToPrivate, move_to_private
from bridge.inbox.solutions import mark_solution
from bridge.inbox.teams import TeamNotFound, move_to_team
from bridge.web import auth
from bridge.web.api.common import (
    NOT_ONLY_WHITESPACE,
    Body,
    Done,
    RowId,
    json_response,
    path_id,
    read_body,
)
from bridge.web.api.labels import LabelList, LabelOut
from bridge.web.keys import BUS, ENGINE, SETTINGS
from bridge.web.openapi import Endpoints
from bridge.web.uploads import FilesTooLarge, send_reply

endpoints = Endpoints()
Action = Callable[[AsyncEngine, Bus, int, int], Awaitable[object]]
"""An action on a conversation, given (engine, bus, conversation's id, acting agent's id)."""


# not only whitespace in any of Python's senses, which the actions strip by
Text = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=MAX_TEXT_CHARS,
        pattern=NOT_ONLY_WHITESPACE,
    ),
]


class TextIn(Body):
    text: Text


class ReplyIn(TextIn):
    reply_to: RowId | None = Field(
        default=None,
        description="in a public thread, the id of the comment the reply answers (by default the "
        "latest one still there); elsewhere unused",
    )


class PrivateIn(TextIn):
    message_id: RowId = Field(description="the comment whose author the message goes to")


class SolutionIn(Body):
    message_id: RowId = Field(
        description="a customer's comment that answers another customer's question in the thread"
    )


class SolutionOut(BaseModel):
    id: int = Field(description="the solution, listed on the knowledge gaps page")


class MovedOut(BaseModel):
    conversation_id: int = Field(description="the author's private conversation")
    message_id: int = Field(description="the agent's message there, queued for delivery")


class FilesIn(BaseModel):
    """A multipart form (what a browser's file input sends)."""

    # the document says these two fields are all: a part of another name is not a valid form
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        default="", max_length=MAX_TEXT_CHARS, description="their caption (may be empty)"
    )
    files: list[Annotated[bytes, WithJsonSchema({"type": "string", "format": "binary"})]] = Field(
        min_length=1,
        max_length=MAX_FILES,
        description="photos (JPEG, PNG, GIF: shown as photos where the network can) or any files",
    )


class TransferIn(Body):
    agent_id: RowId


class VerdictIn(Body):
    accepted: bool


class LabelsIn(Body):
    label_ids: list[RowId] = Field(max_length=100, description="every label it is to carry")


async def _act(request: web.Request, action: Action) -> web.Response:
    await _run(request, action)
    return json_response(Done())


async def _run(request: web.Request, action: Action) -> object:
    """The action's result; what refuses it, as the HTTP error that says why."""
    session = auth.current_session(request)
    try:
        return await action(
            request.app[ENGINE],
            request.app[BUS],
            path_id(request, "conversation_id"),
            session.agent.id,
        )
    except actions.ConversationNotFound:
        raise web.HTTPNotFound(text="no such conversation") from None
    except actions.AgentNotFound as exc:  # named in the body, not the path: refused, not absent
        raise web.HTTPConflict(text=f"agent_id: no agent {exc}") from None
    except (actions.ActionRefused, actions.SuggestionNotFound) as exc:
        raise web.HTTPConflict(text=str(exc) or "refused") from None


@endpoints.route(
    "POST",
    "/api/conversations/{conversation_id}/reply",
    "Send a reply to the customer on their network (takes the conversation)",
    body=ReplyIn,
    answer=Done,
)
async def reply(request: web.Request) -> web.Response:
    body = await read_body(request, ReplyIn)
    return await _act(
        request,
        lambda engine, bus, cid, me: actions.reply_as_agent(
            engine, bus, cid, me, body.text, reply_to=body.reply_to
        ),
    )


@endpoints.route(
    "POST",
    "/api/conversations/{conversation_id}/private",
    "Public thread: send the text privately to a comment's author, in their private"
    " conversation on the same network (409 when they told the network the community may not"
    " write to them: answer in public instead)",
    body=PrivateIn,
    answer=MovedOut,
)
async def to_private(request: web.Request) -> web.Response:
    body = await read_body(request, PrivateIn)
    moved = await _run(
        request,
        lambda engine, bus, cid, me: move_to_private(
            engine, bus, cid, body.message_id, me, body.text
        ),
    )
    assert isinstance(moved, MovedToPrivate)
    return json_response(
        MovedOut(conversation_id=moved.conversation_id, message_id=moved.message_id)
    )


@endpoints.route(
    "POST",
    "/api/conversations/{conversation_id}/solutions",
    "Public thread: mark a customer's comment as the solution to the question it answers (another"
    " customer's); its author is thanked publicly if the admin set thank_community_solutions",
    body=SolutionIn,
    answer=SolutionOut,
)
async def solution(request: web.Request) -> web.Response:
    body = await read_body(request, SolutionIn)
    thank = request.app[SETTINGS].thank_community_solutions
    marked = await _run(
        request,
        lambda engine, bus, cid, me: mark_solution(
            engine, bus, cid, body.message_id, me, thank=thank
        ),
    )
    assert isinstance(marked, int)
    return json_response(SolutionOut(id=marked))


@endpoints.route(
    "POST",
    "/api/conversations/{conversation_id}/files",
    "Send files to the customer on their network, with a caption (takes the conversation); a"
    " file the network would refuse: 413 or 400 with the reason, and nothing is sent",
    form=FilesIn,
    answer=Done,
)
async def send_files(request: web.Request) -> web.Response:
    if not (await request.post()).getall("files", []):
        raise web.HTTPBadRequest(text="files: at least one file")
    try:
        return await _act(
            request,
            lambda _engine, _bus, cid, me: send_reply(request, cid, me),
        )
    except FileRefused as exc:
        if exc.too_large:
            raise FilesTooLarge(text=str(exc)) from None
        raise web.HTTPBadRequest(text=str(exc)) from None
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


@endpoints.route(
    "POST",
    "/api/conversations/{conversation_id}/notes",
    "Add an internal note (never sent to the customer)",
    body=TextIn,
    answer=Done,
)
async def note(request: web.Request) -> web.Response:
    body = await read_body(request, TextIn)
    return await _act(
        request, lambda engine, bus, cid, me: actions.add_note(engine, bus, cid, me, body.text)
    )


@endpoints.route(
    "POST",
    "/api/conversations/{conversation_id}/claim",
    "Take the conversation; one a colleague has: 409 unless take_over=true",
    answer=Done,
    query=(("take_over", {"type": "boolean"}),),
)
async def claim(request: web.Request) -> web.Response:
    take_over = request.query.get("take_over", "false") == "true"
    return await _act(
        request,
        lambda engine, bus, cid, me: actions.assign(engine, bus, cid, me, take_over=take_over),
    )


@endpoints.route(
    "POST",
    "/api/conversations/{conversation_id}/transfer",
    "Give the conversation to another agent",
    body=TransferIn,
    answer=Done,
)
async def transfer(request: web.Request) -> web.Response:
    body = await read_body(request, TransferIn)
    return await _act(
        request, lambda engine, bus, cid, _me: actions.assign(engine, bus, cid, body.agent_id)
    )


@endpoints.route("POST", "/api/conversations/{conversation_id}/resolve", "Resolve", answer=Done)
async def resolve(request: web.Request) -> web.Response:
    ask_rating = request.app[SETTINGS].csat_enabled
    return await _act(
        request,
        lambda engine, bus, cid, _me: actions.resolve(engine, bus, cid, ask_rating=ask_rating),
    )


@endpoints.route(
    "POST", "/api/conversations/{conversation_id}/reopen", "Reopen a resolved one", answer=Done
)
async def reopen(request: web.Request) -> web.Response:
    return await _act(request, actions.reopen)


@endpoints.route(
    "POST",
    "/api/conversations/{conversation_id}/messages/{message_id}/retry",
    "Send a failed message again",
    answer=Done,
)
async def retry(request: web.Request) -> web.Response:
    message_id = path_id(request, "message_id")
    stuck_after = request.app[SETTINGS].stuck_after
    return await _act(
        request,
        lambda engine, bus, cid, _me: actions.retry_delivery(
            engine, bus, cid, message_id, stuck_after
        ),
    )


@endpoints.route(
    "POST",
    "/api/conversations/{conversation_id}/suggestions/{message_id}",
    "Shadow mode: accept or reject the article the bot suggested for a question",
    body=VerdictIn,
    answer=Done,
)
async def judge(request: web.Request) -> web.Response:
    body = await read_body(request, VerdictIn)
    message_id = path_id(request, "message_id")
    return await _act(
        request,
        lambda engine, _bus, cid, me: actions.judge_suggestion(
            engine, cid, message_id, me, accepted=body.accepted
        ),
    )


@endpoints.route(
    "PUT",
    "/api/conversations/{conversation_id}/labels",
    "Set the conversation's labels (those it keeps stay as they were added); answers them",
    body=LabelsIn,
    answer=LabelList,
)
async def put_labels(request: web.Request) -> web.Response:
    body = await read_body(request, LabelsIn)
    agent = auth.current_session(request).agent
    conversation_id = path_id(request, "conversation_id")
    try:
        carried = await set_labels(
            request.app[ENGINE], request.app[BUS], conversation_id, body.label_ids, agent.id
        )
    except actions.ConversationNotFound:
        raise web.HTTPNotFound(text="no such conversation") from None
    except LabelNotFound as exc:  # named in the body, not the path: refused, not absent
        raise web.HTTPConflict(text=f"label_ids: no label {exc}") from None
    return json_response(LabelList(labels=[LabelOut.model_validate(label) for label in carried]))


class TeamIn(Body):
    team_id: RowId | None = Field(description="the team it goes to; null: to no team")


@endpoints.route(
    "PUT",
    "/api/conversations/{conversation_id}/team",
    "Move the conversation to a team (its assignee keeps it; a waiting one waits for that team)",
    body=TeamIn,
    answer=Done,
)
async def put_team(request: web.Request) -> web.Response:
    body = await read_body(request, TeamIn)
    conversation_id = path_id(request, "conversation_id")
    try:
        await move_to_team(request.app[ENGINE], request.app[BUS], conversation_id, body.team_id)
    except actions.ConversationNotFound:
        raise web.HTTPNotFound(text="no such conversation") from None
    except TeamNotFound as exc:  # named in the body, not the path: refused, not absent
        raise web.HTTPConflict(text=f"team_id: no team {exc}") from None
    return json_response(Done())
