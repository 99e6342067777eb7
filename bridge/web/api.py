"""The REST API under `/api/`: everything the inbox pages do, as JSON, for integrations (token
auth) and scripts. Described by the OpenAPI document at `/api/openapi.json`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from aiohttp import web
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from bridge.domain import MAX_TEXT_CHARS, ConversationState, Network
from bridge.inbox import actions
from bridge.inbox.agents import AgentError, AgentInfo, Role, add_agent, list_agents, update_agent
from bridge.inbox.customers import (
    LinkRefused,
    customer_of,
    find_customers,
    link_customers,
    undo_link,
)
from bridge.inbox.views import InboxQuery, View, conversation_view, inbox
from bridge.knowledge.responder import KnowledgeResponder
from bridge.store.models import utcnow
from bridge.web import auth
from bridge.web.files import attachment_response
from bridge.web.openapi import MAX_ID, Api, ErrorOut, row_id
from bridge.web.pages import BUS, ENGINE, SETTINGS

api = Api("supportbridge", "1")
NETWORK_PARAM = {"type": "string", "enum": [n.value for n in Network]}
LANGUAGE_PARAM = {"type": "string", "enum": ["ru", "en"]}
KNOWLEDGE = web.AppKey("knowledge", KnowledgeResponder)
Model = TypeVar("Model", bound=BaseModel)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _python_stripped(text: str) -> str:
    """Python's strip, as the actions apply it: pydantic's keeps what Python counts as
    whitespace too (U+001C..U+001F), and such a text would pass here and fail there."""
    if not text.strip():
        raise ValueError("the text is only whitespace")
    return text


Text = Annotated[
    str,
    # the pattern documents "not only whitespace" for clients, the validator enforces it
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_TEXT_CHARS, pattern=r"\S"
    ),
    AfterValidator(_python_stripped),
]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TextIn(_In):
    text: Text


RowId = Annotated[int, Field(ge=1, le=MAX_ID)]


class TransferIn(_In):
    agent_id: RowId


class VerdictIn(_In):
    accepted: bool


class AgentIn(_In):
    login: Annotated[str, StringConstraints(min_length=1, max_length=128)]
    password: Annotated[str, StringConstraints(min_length=8, max_length=1024)]
    display_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    role: Role = Role.AGENT
    language: Annotated[str, StringConstraints(pattern="^(en|ru)$")] = "en"


class AgentPatch(_In):
    role: Role | None = None
    active: bool | None = None
    language: Annotated[str, StringConstraints(pattern="^(en|ru)$")] | None = None


class AgentOut(BaseModel):
    id: int
    login: str
    display_name: str
    role: Role
    language: str
    active: bool


class AgentList(BaseModel):
    agents: list[AgentOut]


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
    sla: SlaOut | None


class InboxOut(BaseModel):
    conversations: list[ConversationRowOut]
    counts: dict[str, int]
    network_counts: dict[str, int]
    language_counts: dict[str, int]


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    network: Network
    direction: str
    author_kind: str
    author: str | None
    text: str
    attachments: list[dict[str, Any]]
    created_at: dt.datetime
    delivery_status: str | None
    delivery_error: str | None
    article_id: str | None
    confidence: float | None


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
    networks: list[Network]
    history: list[MessageOut]


class Done(BaseModel):
    ok: bool = True


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)


async def _body(request: web.Request, model: type[Model]) -> Model:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise web.HTTPBadRequest(text=f"{where}: {first['msg']}") from None


def _int(request: web.Request, name: str) -> int:
    value = row_id(request.match_info[name])
    if value is None:
        raise web.HTTPNotFound(text=f"no such {name}")
    return value


def _agent_out(agent: AgentInfo) -> AgentOut:
    return AgentOut(
        id=agent.id,
        login=agent.login,
        display_name=agent.display_name,
        role=agent.role,
        language=agent.language,
        active=agent.active,
    )


@api.route("GET", "/api/me", "The agent making the request", answer=AgentOut)
async def me(request: web.Request) -> web.Response:
    return _json(_agent_out(auth.current_session(request).agent))


@api.route(
    "GET",
    "/api/conversations",
    "A view of the inbox (longest waiting first) and the count of every view",
    answer=InboxOut,
    query=(
        ("view", {"type": "string", "enum": [v.value for v in View]}),
        ("network", NETWORK_PARAM),
        ("language", LANGUAGE_PARAM),
    ),
)
async def list_conversations(request: web.Request) -> web.Response:
    session = auth.current_session(request)
    try:
        query = InboxQuery(
            View(request.query.get("view", View.WAITING.value)),
            Network(request.query["network"]) if request.query.get("network") else None,
            request.query.get("language") or None,
        )
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    result = await inbox(
        request.app[ENGINE], session.agent.id, query, request.app[SETTINGS].sla_for(), utcnow()
    )
    rows = [
        ConversationRowOut(
            id=row.id,
            network=row.network,
            state=row.state,
            customer=row.customer,
            language=row.language,
            preview=row.preview,
            last_message_at=row.last_message_at,
            handoff_reason=row.handoff_reason,
            assignee=row.assignee,
            sla=SlaOut(waiting_s=row.sla.waiting_s, limit_s=row.sla.limit_s, level=row.sla.level)
            if row.sla
            else None,
        )
        for row in result.rows
    ]
    return _json(
        InboxOut(
            conversations=rows,
            counts={v.value: n for v, n in result.counts.items()},
            network_counts={network.value: n for network, n in result.by_network.items()},
            language_counts=result.by_language,
        )
    )


@api.route(
    "GET",
    "/api/conversations/{conversation_id}",
    "A conversation with the customer's history on every network",
    answer=ConversationOut,
)
async def get_conversation(request: web.Request) -> web.Response:
    view = await conversation_view(request.app[ENGINE], _int(request, "conversation_id"))
    if view is None:
        raise web.HTTPNotFound(text="no such conversation")
    return _json(
        ConversationOut(
            id=view.id,
            network=view.network,
            state=view.state,
            customer_id=view.customer_id,
            customer=view.customer,
            language=view.language,
            handoff_reason=view.handoff_reason,
            assignee_id=view.assignee_id,
            assignee=view.assignee,
            networks=view.networks,
            history=[MessageOut.model_validate(m, from_attributes=True) for m in view.history],
        )
    )


@api.route(
    "GET",
    "/api/conversations/{conversation_id}/messages/{message_id}/attachments/{number}",
    "A file the customer sent (the number-th of the message's attachments, from 1), fetched"
    " from their network: images as such, anything else as a download",
    file_type="*/*",
)
async def get_attachment(request: web.Request) -> web.Response:
    return await attachment_response(request)


async def _act(
    request: web.Request, action: Callable[[int, int], Awaitable[object]]
) -> web.Response:
    session = auth.current_session(request)
    try:
        await action(_int(request, "conversation_id"), session.agent.id)
    except actions.ConversationNotFound:
        raise web.HTTPNotFound(text="no such conversation") from None
    except (actions.ActionRefused, actions.SuggestionNotFound) as exc:
        raise web.HTTPConflict(text=str(exc) or "refused") from None
    return _json(Done())


@api.route(
    "POST",
    "/api/conversations/{conversation_id}/reply",
    "Send a reply to the customer on their network (takes the conversation)",
    body=TextIn,
    answer=Done,
)
async def reply(request: web.Request) -> web.Response:
    body = await _body(request, TextIn)
    engine, bus = request.app[ENGINE], request.app[BUS]
    return await _act(
        request, lambda cid, me: actions.reply_as_agent(engine, bus, cid, me, body.text)
    )


@api.route(
    "POST",
    "/api/conversations/{conversation_id}/notes",
    "Add an internal note (never sent to the customer)",
    body=TextIn,
    answer=Done,
)
async def note(request: web.Request) -> web.Response:
    body = await _body(request, TextIn)
    engine, bus = request.app[ENGINE], request.app[BUS]
    return await _act(request, lambda cid, me: actions.add_note(engine, bus, cid, me, body.text))


@api.route(
    "POST", "/api/conversations/{conversation_id}/claim", "Take the conversation", answer=Done
)
async def claim(request: web.Request) -> web.Response:
    engine, bus = request.app[ENGINE], request.app[BUS]
    return await _act(request, lambda cid, me: actions.assign(engine, bus, cid, me))


@api.route(
    "POST",
    "/api/conversations/{conversation_id}/transfer",
    "Give the conversation to another agent",
    body=TransferIn,
    answer=Done,
)
async def transfer(request: web.Request) -> web.Response:
    body = await _body(request, TransferIn)
    engine, bus = request.app[ENGINE], request.app[BUS]
    target = await _active_agent(request, body.agent_id)
    return await _act(request, lambda cid, _me: actions.assign(engine, bus, cid, target.id))


@api.route("POST", "/api/conversations/{conversation_id}/resolve", "Resolve", answer=Done)
async def resolve(request: web.Request) -> web.Response:
    engine, bus = request.app[ENGINE], request.app[BUS]
    return await _act(request, lambda cid, _me: actions.resolve(engine, bus, cid))


@api.route(
    "POST", "/api/conversations/{conversation_id}/reopen", "Reopen a resolved one", answer=Done
)
async def reopen(request: web.Request) -> web.Response:
    engine, bus = request.app[ENGINE], request.app[BUS]
    return await _act(request, lambda cid, me: actions.reopen(engine, bus, cid, me))


@api.route(
    "POST",
    "/api/conversations/{conversation_id}/messages/{message_id}/retry",
    "Send a failed message again",
    answer=Done,
)
async def retry(request: web.Request) -> web.Response:
    engine, bus = request.app[ENGINE], request.app[BUS]
    message_id = _int(request, "message_id")
    return await _act(
        request, lambda cid, _me: actions.retry_delivery(engine, bus, cid, message_id)
    )


@api.route(
    "POST",
    "/api/conversations/{conversation_id}/suggestions/{message_id}",
    "Shadow mode: accept or reject the article the bot suggested for a question",
    body=VerdictIn,
    answer=Done,
)
async def judge(request: web.Request) -> web.Response:
    body = await _body(request, VerdictIn)
    engine = request.app[ENGINE]
    message_id = _int(request, "message_id")
    return await _act(
        request,
        lambda cid, me: actions.judge_suggestion(
            engine, cid, message_id, me, accepted=body.accepted
        ),
    )


class CustomerOut(BaseModel):
    customer_id: int
    name: str
    networks: list[Network]


class CustomerList(BaseModel):
    customers: list[CustomerOut]


class LinkIn(_In):
    customer_id: RowId


class LinkOut(BaseModel):
    link_id: int


@api.route(
    "GET",
    "/api/customers",
    "Customers whose name contains q, or whose network user id is q",
    answer=CustomerList,
    query=(("q", {"type": "string", "maxLength": 1000}),),
)
async def customers(request: web.Request) -> web.Response:
    found = await find_customers(request.app[ENGINE], request.query.get("q", ""), other_than=0)
    return _json(
        CustomerList(
            customers=[
                CustomerOut(customer_id=c.customer_id, name=c.name, networks=c.networks)
                for c in found
            ]
        )
    )


@api.route(
    "POST",
    "/api/conversations/{conversation_id}/link",
    "Same person as: move another customer's identities and conversations to this one",
    body=LinkIn,
    answer=LinkOut,
)
async def link(request: web.Request) -> web.Response:
    session = auth.current_session(request)
    body = await _body(request, LinkIn)
    engine = request.app[ENGINE]
    keep = await customer_of(engine, _int(request, "conversation_id"))
    if keep is None:
        raise web.HTTPNotFound(text="no such conversation")
    try:
        link_id = await link_customers(
            engine, request.app[BUS], keep, body.customer_id, session.agent.id
        )
    except LinkRefused as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    return _json(LinkOut(link_id=link_id))


@api.route("POST", "/api/links/{link_id}/undo", "Undo a same-person link exactly", answer=Done)
async def unlink(request: web.Request) -> web.Response:
    try:
        await undo_link(request.app[ENGINE], request.app[BUS], _int(request, "link_id"))
    except LinkRefused as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    return _json(Done())


class ArticleHit(BaseModel):
    article_id: str
    title: str
    answer: str
    confidence: float


class ArticleHits(BaseModel):
    articles: list[ArticleHit]


@api.route(
    "GET",
    "/api/kb/search",
    "Knowledge-base articles for a question, best first, answers in the language asked",
    answer=ArticleHits,
    query=(("q", {"type": "string", "maxLength": 1000}), ("language", LANGUAGE_PARAM)),
)
async def kb_search(request: web.Request) -> web.Response:
    language = request.query.get("language") or None
    hits = await request.app[KNOWLEDGE].search(request.query.get("q", "")[:1000], language, k=3)
    return _json(
        ArticleHits(articles=[ArticleHit.model_validate(h, from_attributes=True) for h in hits])
    )


async def _active_agent(request: web.Request, agent_id: int) -> AgentInfo:
    found = [a for a in await list_agents(request.app[ENGINE]) if a.id == agent_id and a.active]
    if not found:
        raise web.HTTPConflict(text=f"agent_id: no active agent {agent_id}")
    return found[0]


@api.route("GET", "/api/admin/agents", "Every agent", answer=AgentList, admin=True)
async def agents_list(request: web.Request) -> web.Response:
    return _json(AgentList(agents=[_agent_out(a) for a in await list_agents(request.app[ENGINE])]))


@api.route("POST", "/api/admin/agents", "Add an agent", body=AgentIn, answer=AgentOut, admin=True)
async def agents_add(request: web.Request) -> web.Response:
    body = await _body(request, AgentIn)
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
    return _json(_agent_out(agent))


@api.route(
    "PATCH",
    "/api/admin/agents/{agent_id}",
    "Change an agent's role, language, or disable them (signed out at once)",
    body=AgentPatch,
    answer=AgentOut,
    admin=True,
)
async def agents_change(request: web.Request) -> web.Response:
    body = await _body(request, AgentPatch)
    engine = request.app[ENGINE]
    agent_id = _int(request, "agent_id")
    try:
        agent = await update_agent(
            engine, agent_id, role=body.role, active=body.active, language=body.language
        )
    except AgentError as exc:
        status = web.HTTPNotFound if str(exc).startswith("no agent") else web.HTTPConflict
        raise status(text=str(exc)) from None
    if body.active is False:
        await auth.end_sessions_of(engine, agent_id)
    return _json(_agent_out(agent))


async def openapi_document(request: web.Request) -> web.Response:
    return web.json_response(api.document())


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /api/, every refusal is `{"error": reason}` with its status."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        return _json(ErrorOut(error=reason or "error"), status=exc.status)


def install(app: web.Application, knowledge: KnowledgeResponder) -> None:
    app[KNOWLEDGE] = knowledge
    app.router.add_routes(api.routes())
    app.router.add_get("/api/openapi.json", openapi_document)
