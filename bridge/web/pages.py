"""The inbox's HTML pages: sign in, the conversation list, one conversation, the agents (admin).

Every page is rendered on the server from Jinja2 templates with autoescaping on, so customer text
is always shown as text. Forms post back and redirect (post/redirect/get); each action is a
function of `bridge.inbox.actions` or `bridge.inbox.agents`, the same ones the REST API calls.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

import aiohttp_jinja2
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import Network
from bridge.inbox import actions
from bridge.inbox.agent_status import Status, choose_status, statuses
from bridge.inbox.agents import AgentError, AgentInfo, authenticate, list_agents, update_agent
from bridge.inbox.canned import list_canned
from bridge.inbox.customers import (
    LinkRefused,
    customer_of,
    find_customers,
    link_customers,
    links_of,
    undo_link,
)
from bridge.inbox.labels import Label, LabelNotFound, add_label, list_labels, remove_label
from bridge.inbox.outgoing_files import MAX_REPLY_BYTES
from bridge.inbox.public import (
    PrivateNotAllowed,
    PrivateReplyRefused,
    invitation,
    move_to_private,
    telegram_start_link,
)
from bridge.inbox.reads import mark_seen
from bridge.inbox.solutions import mark_solution, thread_solutions
from bridge.inbox.teams import TeamNotFound, list_teams, move_to_team
from bridge.inbox.views import ConversationView, InboxQuery, View, conversation_view, inbox
from bridge.knowledge.articles import load_articles
from bridge.store.models import utcnow
from bridge.store.rekey import merged_into
from bridge.web import auth
from bridge.web.i18n import gettext
from bridge.web.inbox_params import NONE, chosen_filters, filter_params, inbox_query
from bridge.web.keys import BUS, COUNTS, ENGINE, FILE_LIMITS, SETTINGS
from bridge.web.openapi import row_id
from bridge.web.uploads import send_reply

routes = web.RouteTableDef()


def _secure(request: web.Request) -> bool:
    public_url = request.app[SETTINGS].public_url or ""
    return public_url.startswith("https://")


def _safe_next(target: str | None) -> str:
    """Only a path on this site: `next=` must not send a fresh sign-in elsewhere."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def context(request: web.Request, **values: Any) -> dict[str, Any]:
    session = request.get(auth.SESSION_KEY)
    return {"session": session, "now": utcnow(), **values}


@routes.get("/login")
async def login_page(request: web.Request) -> web.Response:
    # kept while it lasts: a second tab, or the browser's own requests, must not void the first
    csrf = request.cookies.get(auth.LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    response = aiohttp_jinja2.render_template(
        "login.html",
        request,
        context(request, csrf=csrf, next=_safe_next(request.query.get("next")), error=None),
    )
    response.set_cookie(
        auth.LOGIN_CSRF_COOKIE, csrf, httponly=True, samesite="Strict", secure=_secure(request)
    )
    return response


@routes.post("/login")
async def login(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    expected = request.cookies.get(auth.LOGIN_CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(str(form.get("csrf", "")), expected):
        raise web.HTTPForbidden(text="the sign-in form is out of date; reload the page")
    engine = request.app[ENGINE]
    agent = await authenticate(engine, str(form.get("login", "")), str(form.get("password", "")))
    if agent is None:
        values = context(
            request,
            csrf=expected,
            next=_safe_next(str(form.get("next", ""))),
            error=gettext("Wrong login or password."),
        )
        return aiohttp_jinja2.render_template("login.html", request, values, status=401)
    token, _ = await auth.start_session(engine, agent.id)
    response = web.HTTPSeeOther(_safe_next(str(form.get("next", ""))))
    response.set_cookie(
        auth.SESSION_COOKIE,
        token,
        httponly=True,
        samesite="Lax",
        secure=_secure(request),
        max_age=int(auth.SESSION_LIFETIME.total_seconds()),
    )
    response.del_cookie(auth.LOGIN_CSRF_COOKIE)
    raise response


@routes.post("/logout")
async def logout(request: web.Request) -> web.StreamResponse:
    token = request.cookies.get(auth.SESSION_COOKIE)
    if token:
        await auth.end_session(request.app[ENGINE], token)
    response = web.HTTPSeeOther("/login")
    response.del_cookie(auth.SESSION_COOKIE)
    raise response


def _inbox_query(request: web.Request) -> InboxQuery:
    try:
        return inbox_query(request.query)
    except ValueError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None


@routes.get("/")
async def inbox_page(request: web.Request) -> web.Response:
    session = auth.current_session(request)
    query = _inbox_query(request)
    settings = request.app[SETTINGS]
    engine, now = request.app[ENGINE], utcnow()
    result = await inbox(
        engine, session.agent.id, query, settings.sla_for(), now, request.app[COUNTS]
    )
    known = await list_labels(engine)
    present = await statuses(engine, now, settings.away_after)
    return aiohttp_jinja2.render_template(
        "inbox.html",
        request,
        context(
            request,
            inbox=result,
            query=query,
            filters=filter_params(query),
            chosen=chosen_filters(query),
            views=list(View),
            networks=list(Network),
            known_labels=known,
            labels_css=labels_stylesheet(known),
            colleagues=[(a, present.get(a.id, Status.OFFLINE)) for a in await _active(engine)],
            my_status=present.get(session.agent.id, Status.OFFLINE),
            teams=await list_teams(engine),
            nobody=NONE,
        ),
    )


async def _active(engine: AsyncEngine) -> list[AgentInfo]:
    return [a for a in await list_agents(engine) if a.active]


def labels_stylesheet(known: list[Label]) -> str:
    """The address of the labels' colours, which changes with them (so it is cached for good):
    the pages' policy forbids style attributes, so each label's colour is a class there."""
    colours = ",".join(f"{label.id}{label.colour}" for label in known)
    return "/labels.css?v=" + hashlib.sha256(colours.encode()).hexdigest()[:16]


@routes.get("/labels.css")
async def labels_css(request: web.Request) -> web.Response:
    rules = "".join(
        f".label-{label.id}{{background:{label.colour};color:{label.ink}}}\n"
        for label in await list_labels(request.app[ENGINE])
    )
    return web.Response(
        text=rules,
        content_type="text/css",
        headers={"Cache-Control": "private, max-age=31536000, immutable"},
    )


def _form_id(form: Mapping[str, object], name: str) -> int:
    """A form's id field: one no stored row can have is a crafted request, refused before the
    database sees it (PostgreSQL raises on integers past its column's range)."""
    value = row_id(str(form.get(name, "")))
    if value is None:
        raise web.HTTPBadRequest(text=f"{name}: not an id")
    return value


def _conversation_id(request: web.Request) -> int:
    value = row_id(request.match_info["conversation_id"])
    if value is None:
        raise web.HTTPNotFound(text="no such conversation")
    return value


def _private_link(request: web.Request, view: ConversationView) -> str | None:
    """The link an invitation to write privately carries: the bot's start link on Telegram."""
    username = request.app[SETTINGS].telegram_bot_username
    if view.network == Network.TELEGRAM and username:
        return telegram_start_link(username, view.id)
    return None


@routes.get("/c/{conversation_id}")
async def conversation_page(request: web.Request) -> web.Response:
    stuck_after = request.app[SETTINGS].stuck_after
    view = await conversation_view(
        request.app[ENGINE], _conversation_id(request), stuck_after=stuck_after
    )
    if view is None:
        async with request.app[ENGINE].connect() as conn:
            into = await merged_into(conn, _conversation_id(request))
        if into is not None:  # a private conversation went into the one its person had
            raise web.HTTPSeeOther(f"/c/{into}")
        raise web.HTTPNotFound(text="no such conversation")
    engine = request.app[ENGINE]
    await mark_seen(engine, auth.current_session(request).agent.id, view)
    agents = await _active(engine)
    find = request.query.get("find", "")
    candidates = await find_customers(engine, find, other_than=view.customer_id) if find else []
    known = await list_labels(engine)
    carried = {label.id for label in view.labels}
    return aiohttp_jinja2.render_template(
        "conversation.html",
        request,
        context(
            request,
            conversation=view,
            agents=agents,
            error=request.query.get("error"),
            find=find,
            candidates=candidates,
            links=await links_of(engine, view.customer_id),
            canned=await list_canned(engine, view.language),
            draft=(
                invitation(view.language, _private_link(request, view))
                if request.query.get("draft") == "invitation"
                else await _article_answer(
                    engine, request.query.get("draft_article"), view.language
                )
            ),
            addable=[label for label in known if label.id not in carried],
            labels_css=labels_stylesheet(known),
            teams=await list_teams(engine),
            present=await statuses(engine, utcnow(), request.app[SETTINGS].away_after),
            # in a public thread, the comment a reply answers unless the agent picks another
            answerable=next(
                (
                    m.id
                    for m in reversed(view.history)
                    if m.public
                    and m.direction == "inbound"
                    and not m.deleted
                    and m.conversation_id == view.id
                ),
                None,
            ),
            file_limits=request.app[FILE_LIMITS].get(view.network),
            reply_bytes=MAX_REPLY_BYTES,
            solutions=await thread_solutions(engine, view.id) if view.public else set(),
            # the thread's opening question: the one comment that answers nobody
            first_comment=next(
                (
                    m.id
                    for m in view.history
                    if m.direction == "inbound" and m.conversation_id == view.id
                ),
                None,
            ),
        ),
    )


async def _act(request: web.Request, action: str) -> web.StreamResponse:
    """Run one form action on a conversation, then back to it (with the reason if refused)."""
    session = auth.current_session(request)
    cid = _conversation_id(request)
    engine, bus = request.app[ENGINE], request.app[BUS]
    form = await request.post()
    try:
        if action == "reply":
            await send_reply(request, cid, session.agent.id)
        elif action == "private":
            text = form.get("text", "")
            moved = await move_to_private(
                engine,
                bus,
                cid,
                _form_id(form, "reply_to"),
                session.agent.id,
                text if isinstance(text, str) else "",
            )
            raise web.HTTPSeeOther(f"/c/{moved.conversation_id}")
        elif action == "solution":
            thank = request.app[SETTINGS].thank_community_solutions
            await mark_solution(
                engine, bus, cid, _form_id(form, "message_id"), session.agent.id, thank=thank
            )
        elif action == "note":
            if any(isinstance(value, web.FileField) for value in form.values()):
                raise ValueError(gettext("A note takes no files: send them to the customer."))
            await actions.add_note(engine, bus, cid, session.agent.id, str(form.get("text", "")))
        elif action == "claim":
            take_over = form.get("take_over") == "1"
            await actions.assign(engine, bus, cid, session.agent.id, take_over=take_over)
        elif action == "transfer":
            await actions.assign(engine, bus, cid, _form_id(form, "agent_id"))
        elif action == "resolve":
            await actions.resolve(engine, bus, cid, ask_rating=request.app[SETTINGS].csat_enabled)
        elif action == "reopen":
            await actions.reopen(engine, bus, cid, session.agent.id)
        elif action == "link":
            keep = await customer_of(engine, cid)
            if keep is None:
                raise actions.ConversationNotFound(cid)
            merge = _form_id(form, "customer_id")
            await link_customers(engine, bus, keep, merge, session.agent.id)
        elif action == "unlink":
            await undo_link(engine, bus, _form_id(form, "link_id"))
        elif action == "label":
            await add_label(engine, bus, cid, _form_id(form, "label_id"), session.agent.id)
        elif action == "unlabel":
            await remove_label(engine, bus, cid, _form_id(form, "label_id"))
        elif action == "team":
            team = str(form.get("team_id", ""))
            await move_to_team(engine, bus, cid, _form_id(form, "team_id") if team else None)
        elif action == "suggestion":
            accepted = form.get("accepted") == "1"
            message_id = _form_id(form, "message_id")
            article = await actions.judge_suggestion(
                engine, cid, message_id, session.agent.id, accepted=accepted
            )
            if accepted:  # the agent sends the article's answer, or edits it first
                raise web.HTTPSeeOther(f"/c/{cid}?draft_article={quote(article)}#composer")
        elif action == "retry":
            stuck_after = request.app[SETTINGS].stuck_after
            await actions.retry_delivery(
                engine, bus, cid, _form_id(form, "message_id"), stuck_after
            )
        else:
            raise web.HTTPNotFound()
    except actions.ConversationNotFound:
        raise web.HTTPNotFound(text="no such conversation") from None
    except actions.AgentNotFound:
        raise web.HTTPNotFound(text="no such agent") from None
    except PrivateNotAllowed as refused:  # the public reply that invites them, for the agent
        why = (
            gettext(
                "Telegram lets the bot write privately only to people who started it, and this "
                "customer has not: answer in public and invite them to start the bot."
            )
            if refused.network == Network.TELEGRAM
            else gettext(
                "This customer does not let the community write to them privately: "
                "answer in public and invite them to write to you."
            )
        )
        raise web.HTTPSeeOther(f"/c/{cid}?error={quote(why)}&draft=invitation#composer") from None
    except PrivateReplyRefused as exc:
        if exc.too_old:
            why = gettext(
                "%(network)s lets the page answer a comment privately only within %(days)d days "
                "of it, and this comment is older: answer in public."
            ) % {"network": exc.network, "days": exc.days}
        else:
            why = gettext(
                "This comment already has its private reply, and %(network)s allows only one: "
                "the conversation goes on when the customer writes back."
            ) % {"network": exc.network}
        raise back_with_error(f"/c/{cid}", ValueError(why)) from None
    except LabelNotFound:  # deleted by an admin since the page was shown
        raise back_with_error(
            f"/c/{cid}", ValueError(gettext("That label no longer exists."))
        ) from None
    except TeamNotFound:
        raise back_with_error(
            f"/c/{cid}", ValueError(gettext("That team no longer exists."))
        ) from None
    except (ValueError, actions.ActionRefused, actions.SuggestionNotFound, LinkRefused) as exc:
        raise back_with_error(f"/c/{cid}", exc) from None
    raise web.HTTPSeeOther(f"/c/{cid}")


async def _article_answer(engine: AsyncEngine, article_id: str | None, language: str | None) -> str:
    if not article_id:
        return ""
    found = [a for a in await load_articles(engine) if a.id == article_id]
    return (found[0].answer_for(language) or "") if found else ""


def back_with_error(page: str, error: Exception) -> web.HTTPSeeOther:
    """Back to the form's page, which shows why the action was refused."""
    separator = "&" if "?" in page else "?"
    return web.HTTPSeeOther(f"{page}{separator}error={quote(str(error)[:200])}")


@routes.post("/c/{conversation_id}/{action}")
async def conversation_action(request: web.Request) -> web.StreamResponse:
    return await _act(request, request.match_info["action"])


@routes.post("/me/status")
async def set_status(request: web.Request) -> web.StreamResponse:
    """The agent says they are online or away (away: no new conversations are given to them)."""
    session = auth.current_session(request)
    form = await request.post()
    try:
        status = Status(str(form.get("status", "")))
        await choose_status(request.app[ENGINE], session.agent.id, status, utcnow())
    except ValueError as exc:
        raise web.HTTPBadRequest(text=f"status: online or away ({exc})") from None
    raise web.HTTPSeeOther(_safe_next(str(form.get("next", ""))))


@routes.post("/me/language")
async def set_language(request: web.Request) -> web.StreamResponse:
    session = auth.current_session(request)
    form = await request.post()
    try:
        await update_agent(
            request.app[ENGINE], session.agent.id, language=str(form.get("language", ""))
        )
    except AgentError as exc:
        raise web.HTTPBadRequest(text=str(exc)) from None
    raise web.HTTPSeeOther(_safe_next(str(form.get("next", ""))))


def format_waiting(seconds: float) -> str:
    minutes = int(seconds // 60)
    min_label, hour_label = gettext("min"), gettext("h")
    if minutes < 60:
        return f"{minutes} {min_label}"
    return f"{minutes // 60} {hour_label} {minutes % 60:02d} {min_label}"


NETWORK_LABELS = {
    Network.TELEGRAM: "TG",
    Network.VK: "VK",
    Network.FACEBOOK: "FB",
    Network.INSTAGRAM: "IG",
    Network.WEBCHAT: "WEB",
}


def network_label(network: Network) -> str:
    return NETWORK_LABELS[network]


def format_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%d.%m %H:%M")
