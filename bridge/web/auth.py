"""Who is asking: server-side sessions behind a cookie, CSRF tokens, and the role each path needs.

Closed by default: every path needs a signed-in agent unless it is listed as public, and every
path under `/admin/` or `/api/admin/` needs an admin. A state-changing request made with the
session cookie must carry the session's CSRF token (form field `csrf` or header `X-CSRF-Token`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from aiohttp import web
from aiohttp.typedefs import Handler
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbox.agents import AgentInfo, get_agent
from bridge.store.models import api_tokens, utcnow, web_sessions
from bridge.web.keys import ENGINE

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
    "/api/openapi.json",
)
ADMIN_PREFIXES = ("/admin/", "/api/admin/")


@dataclass(frozen=True, slots=True)
class Session:
    """Who makes the request: a browser session (with its CSRF token), or an integration's API
    token (no cookie, so no CSRF token needed)."""

    agent: AgentInfo
    csrf_token: str | None


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


async def end_sessions_of(engine: AsyncEngine, agent_id: int) -> None:
    """A disabled agent is signed out everywhere at once."""
    async with engine.begin() as conn:
        await conn.execute(sa.delete(web_sessions).where(web_sessions.c.agent_id == agent_id))


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


async def issue_api_token(engine: AsyncEngine, agent_id: int, name: str) -> str:
    """A new token for an integration acting as the agent; shown once, stored as a digest."""
    token = "sb_" + secrets.token_urlsafe(32)
    async with engine.begin() as conn:
        await conn.execute(
            sa.insert(api_tokens).values(
                id=_digest(token), agent_id=agent_id, name=name[:128], created_at=utcnow()
            )
        )
    return token


async def find_api_token(engine: AsyncEngine, token: str) -> Session | None:
    async with engine.connect() as conn:
        agent_id = (
            await conn.execute(
                sa.select(api_tokens.c.agent_id).where(api_tokens.c.id == _digest(token))
            )
        ).scalar_one_or_none()
    agent = await get_agent(engine, agent_id) if agent_id is not None else None
    if agent is None or not agent.active:
        return None
    return Session(agent, None)


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


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    if _is_public(request.path):
        return await handler(request)
    engine = request.app[ENGINE]
    bearer = request.headers.get("Authorization", "")
    if bearer.startswith("Bearer "):
        session = await find_api_token(engine, bearer.removeprefix("Bearer ").strip())
    else:
        token = request.cookies.get(SESSION_COOKIE)
        session = await find_session(engine, token) if token else None
    if session is None:
        if _wants_json(request) or request.method not in SAFE_METHODS:
            raise web.HTTPUnauthorized(text="sign in first")
        raise web.HTTPSeeOther(f"/login?next={request.path_qs}")
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
