"""Who is asking: server-side sessions behind a cookie, CSRF tokens, and the role each path needs.

Closed by default: every path needs a signed-in agent unless it is listed as public, and every
path under `/admin/` or `/api/admin/` needs an admin. A state-changing request made with the
session cookie must carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`);
one made with a read-only API token is refused. The sign-in form and wrong API tokens are
throttled per login and per client address (`throttle`).
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import hmac
import math
import re
import secrets
from dataclasses import dataclass

import aiohttp_jinja2
import sqlalchemy as sa
from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbox.agents import AgentError, AgentInfo, get_agent
from bridge.store.models import api_tokens, utcnow, web_sessions
from bridge.web import i18n, throttle
from bridge.web.keys import ENGINE, SETTINGS
from bridge.web.openapi import ADMIN_API, MAX_ID

SESSION_COOKIE = "sb_session"
LOGIN_CSRF_COOKIE = "sb_login_csrf"
CSRF_HEADER = "X-CSRF-Token"
SESSION_LIFETIME = dt.timedelta(days=7)
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

PUBLIC_PREFIXES = (
    "/login",
    "/static/",
    "/favicon.ico",
    "/healthz",
    "/readyz",
    "/metrics",
    "/webhooks/",
    "/sandbox/",
    "/widget.js",
    "/ws/chat",
    "/webchat/file",  # a file an agent sent a visitor: the signed link is the proof
    "/api/openapi.json",
)
ADMIN_PREFIXES = ("/admin/", ADMIN_API)
# What `_new_token` makes: "sb_" and 32 random bytes in URL-safe base64.
TOKEN_SHAPE = re.compile(r"sb_[A-Za-z0-9_-]{43}")


@dataclass(frozen=True, slots=True)
class Session:
    """Who makes the request: a browser session (with its CSRF token), or an integration's API
    token (no cookie, so no CSRF token needed; perhaps read-only)."""

    agent: AgentInfo
    csrf_token: str | None
    read_only: bool = False


class TokenScope(enum.StrEnum):
    FULL = "full"
    READ_ONLY = "read-only"  # GET only


@dataclass(frozen=True, slots=True)
class TokenInfo:
    """An API token as it is listed: never the token itself, which is shown once."""

    id: int
    name: str
    scope: TokenScope
    created_at: dt.datetime
    expires_at: dt.datetime | None

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now


SESSION_KEY = web.RequestKey("session", Session)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(engine: AsyncEngine, agent_id: int) -> tuple[str, str]:
    """A new session for the agent: (cookie token, CSRF token)."""
    token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(web_sessions).values(
                id=_digest(token),
                agent_id=agent_id,
                csrf_token=csrf,
                created_at=now,
                expires_at=now + SESSION_LIFETIME,
            )
        )
    return token, csrf


async def end_session(engine: AsyncEngine, token: str) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.delete(web_sessions).where(web_sessions.c.id == _digest(token)))


async def find_session(engine: AsyncEngine, token: str) -> Session | None:
    s = web_sessions.c
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(s.agent_id, s.csrf_token).where(
                    s.id == _digest(token), s.expires_at > utcnow()
                )
            )
        ).first()
    if row is None:
        return None
    agent = await get_agent(engine, row.agent_id)
    if agent is None or not agent.active:
        return None
    return Session(agent, row.csrf_token)


def _new_token() -> str:
    return "sb_" + secrets.token_urlsafe(32)  # as TOKEN_SHAPE says


def _number(digest: str) -> int:
    """The number a token is listed and revoked by, in the API's id range. Taken from its digest,
    so tokens issued before numbers existed have one too; not a count, so a script that revokes
    "token 1" by mistake hits nothing."""
    return int(digest[:8], 16) % MAX_ID + 1


async def issue_api_token(
    engine: AsyncEngine,
    agent_id: int,
    name: str,
    *,
    scope: TokenScope = TokenScope.FULL,
    valid_for: dt.timedelta | None = None,
) -> str:
    """A new token for an integration acting as the agent, expiring after `valid_for` (None:
    never); shown once, stored as a digest."""
    agent = await get_agent(engine, agent_id)
    if agent is None or not agent.active:
        raise AgentError(f"no active agent {agent_id}: a token would not work")
    taken = {token.id for token in await list_api_tokens(engine, agent_id)}
    token = _new_token()
    while _number(_digest(token)) in taken:  # its number must name it alone
        token = _new_token()
    now = utcnow()
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(api_tokens).values(
                id=_digest(token),
                agent_id=agent_id,
                name=name[:128],
                created_at=now,
                scope=scope.value,
                expires_at=now + valid_for if valid_for is not None else None,
            )
        )
    return token


def token_id(token: str) -> int:
    """The number `token` is listed and revoked by."""
    return _number(_digest(token))


async def list_api_tokens(engine: AsyncEngine, agent_id: int) -> list[TokenInfo]:
    """The agent's tokens, newest first; expired ones too, until revoked."""
    t = api_tokens.c
    async with engine.connect() as conn:
        rows = await conn.execute(
            sa.select(t.id, t.name, t.scope, t.created_at, t.expires_at)
            .where(t.agent_id == agent_id, t.revoked_at.is_(None))
            .order_by(t.created_at.desc())
        )
        return [
            TokenInfo(
                _number(row.id), row.name, TokenScope(row.scope), row.created_at, row.expires_at
            )
            for row in rows
        ]


async def revoke_api_token(engine: AsyncEngine, agent_id: int, number: int) -> bool:
    """End one of the agent's tokens at once; False when the agent has no such token."""
    t = api_tokens.c
    async with engine.begin() as conn:
        digests = await conn.execute(
            sa.select(t.id).where(t.agent_id == agent_id, t.revoked_at.is_(None))
        )
        doomed = [digest for digest in digests.scalars() if _number(digest) == number]
        if doomed:
            await conn.execute(
                sa.update(api_tokens).where(t.id.in_(doomed)).values(revoked_at=utcnow())
            )
    return bool(doomed)


async def find_api_token(engine: AsyncEngine, token: str) -> Session | None:
    t = api_tokens.c
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(t.agent_id, t.scope).where(
                    t.id == _digest(token),
                    t.revoked_at.is_(None),
                    sa.or_(t.expires_at.is_(None), t.expires_at > utcnow()),
                )
            )
        ).first()
    agent = await get_agent(engine, row.agent_id) if row is not None else None
    if row is None or agent is None or not agent.active:
        return None
    return Session(agent, None, read_only=row.scope == TokenScope.READ_ONLY)


async def was_issued(engine: AsyncEngine, token: str) -> bool:
    """The token is one of ours, though revoked or expired by now."""
    async with engine.connect() as conn:
        found = await conn.execute(
            sa.select(api_tokens.c.id).where(api_tokens.c.id == _digest(token))
        )
        return found.first() is not None


def current_session(request: web.Request) -> Session:
    session: Session | None = request.get(SESSION_KEY)
    if session is None:
        raise web.HTTPUnauthorized(text="sign in first")
    return session


def _is_public(path: str) -> bool:
    return any(path == p.rstrip("/") or path.startswith(p) for p in PUBLIC_PREFIXES)


def _wants_json(request: web.Request) -> bool:
    return request.path.startswith("/api/") or "application/json" in request.headers.get(
        "Accept", ""
    )


def _retry_after(wait: float) -> int:
    return max(1, math.ceil(wait))


def _throttled_form(request: web.Request, next_page: str, wait: float) -> web.Response:
    """The sign-in form again, saying how long to wait (the language middleware runs later)."""
    header = request.headers.get("Accept-Language", "")
    i18n.use_language("ru" if header.lower().startswith("ru") else "en")
    seconds = _retry_after(wait)
    if seconds < 60:
        error = i18n.gettext("Too many attempts to sign in. Try again in {seconds} s.")
    else:
        error = i18n.gettext("Too many attempts to sign in. Try again in {minutes} min.")
    values = {
        "session": None,
        "now": utcnow(),
        "csrf": request.cookies.get(LOGIN_CSRF_COOKIE, ""),
        "next": next_page,  # the form's handler checks it before following it
        "error": error.format(seconds=seconds, minutes=math.ceil(seconds / 60)),
    }
    response = aiohttp_jinja2.render_template("login.html", request, values, status=429)
    response.headers["Retry-After"] = str(seconds)
    return response


async def _throttled_sign_in(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The sign-in form's POST, counted per login and per address before it checks anything."""
    form = await request.post()  # kept by aiohttp: the handler reads the same form
    settings = request.app[SETTINGS]
    login = throttle.login_key(str(form.get("login", "")))
    address = throttle.address_key(request.remote)
    wait = await throttle.claim(
        request.app[ENGINE],
        [(login, throttle.login_rule(settings)), (address, throttle.address_rule(settings))],
    )
    if wait > 0:
        return _throttled_form(request, str(form.get("next", "")), wait)
    try:
        return await handler(request)
    except web.HTTPSeeOther:  # the form answers a sign-in with a redirect, a refusal with 401
        await throttle.signed_in(request.app[ENGINE], login, address)
        raise


async def _wrong_token(request: web.Request, token: str) -> web.Response | None:
    """A token nobody has counts as a failed sign-in of its address; once the address is
    throttled, 429 with Retry-After (None: the usual 401). A value not even shaped like a token,
    or one of ours revoked or expired (an integration not told yet), is no guess to slow down:
    plain 401, nothing counted."""
    if not TOKEN_SHAPE.fullmatch(token) or await was_issued(request.app[ENGINE], token):
        return None
    address = throttle.address_key(request.remote)
    rule = throttle.address_rule(request.app[SETTINGS])
    wait = await throttle.claim(request.app[ENGINE], [(address, rule)])
    if wait <= 0:
        return None
    seconds = _retry_after(wait)
    reason = f"too many failed sign-ins from this address; try again in {seconds} s"
    headers = {"Retry-After": str(seconds)}
    if request.path.startswith("/api/"):
        return web.json_response({"error": reason}, status=429, headers=headers)
    return web.Response(text=reason, status=429, headers=headers)


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == "/login" and request.method == "POST":
        return await _throttled_sign_in(request, handler)
    if _is_public(request.path):
        return await handler(request)
    engine = request.app[ENGINE]
    bearer = request.headers.get("Authorization", "")
    if bearer.startswith("Bearer "):
        token = bearer.removeprefix("Bearer ").strip()
        session = await find_api_token(engine, token)
        if session is None and (refused := await _wrong_token(request, token)) is not None:
            return refused
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        session = await find_session(engine, cookie) if cookie else None
    if session is None:
        if _wants_json(request) or request.method not in SAFE_METHODS:
            raise web.HTTPUnauthorized(text="sign in first")
        raise web.HTTPSeeOther(f"/login?next={request.path_qs}")
    if session.read_only and request.method not in SAFE_METHODS:
        raise web.HTTPForbidden(text="this API token is read-only")
    if request.method not in SAFE_METHODS and session.csrf_token is not None:
        given = request.headers.get(CSRF_HEADER)
        if given is None and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            given = str((await request.post()).get("csrf", ""))
        if not given or not hmac.compare_digest(given, session.csrf_token):
            raise web.HTTPForbidden(text="the form is out of date (CSRF token); reload the page")
    if request.path.startswith(ADMIN_PREFIXES) and not session.agent.is_admin:
        raise web.HTTPForbidden(text="admins only")
    request[SESSION_KEY] = session
    return await handler(request)
