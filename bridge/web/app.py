"""The web inbox on the product's HTTP port: templates, static files, sign-in, pages, security
headers. `add_inbox` puts it on an existing aiohttp application (`bridge.web.server.make_app`,
the one that also serves the webhooks and health checks)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Handler
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.channel import FileFetcher, FileLimits
from bridge.domain import Network
from bridge.inbox.view_counts import SharedCounts
from bridge.knowledge.embedders import EmbeddingChoice
from bridge.knowledge.responder import KnowledgeResponder
from bridge.settings import Settings
from bridge.web import (
    admin_pages,
    api,
    auth,
    dashboard_pages,
    i18n,
    kb_pages,
    live,
    pages,
    team_pages,
    threshold_pages,
    uploads,
)
from bridge.web.files import routes as file_routes
from bridge.web.keys import BUS, COUNTS, ENGINE, FILE_LIMITS, FILES, SETTINGS

HERE = Path(__file__).parent
# Pages load scripts and styles from this site only: an injected <script> cannot run.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
STRICT_TRANSPORT_SECURITY = "max-age=31536000"  # a year; subdomains may be other services
ResponseHook = Callable[[web.Request, web.StreamResponse], Awaitable[None]]


@web.middleware
async def language_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    session = request.get(auth.SESSION_KEY)
    if isinstance(session, auth.Session):
        i18n.use_language(session.agent.language)
    else:
        header = request.headers.get("Accept-Language", "")
        i18n.use_language("ru" if header.lower().startswith("ru") else "en")
    return await handler(request)


@web.middleware
async def malformed_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A body aiohttp cannot parse as the form it claims to be (a multipart part's header that is
    not one) is the client's error, refused with the reason, not a server error."""
    try:
        return await handler(request)
    except HttpProcessingError as exc:
        raise web.HTTPBadRequest(text=f"malformed request body: {exc.message}"[:300]) from None


def security_headers(settings: Settings) -> ResponseHook:
    """The headers every response of the inbox's app carries, redirects and errors included: a
    hook on the response being sent, since a middleware never sees what handlers raise."""
    # only over https: a browser that saw it would refuse a plain-http install for a year
    https = (settings.public_url or "").startswith("https://")

    async def add(request: web.Request, response: web.StreamResponse) -> None:
        if not request.path.startswith(("/sandbox/", "/widget.js", "/webhooks/")):
            response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
            response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if https:
            response.headers.setdefault("Strict-Transport-Security", STRICT_TRANSPORT_SECURITY)

    return add


def _environment(app: web.Application) -> jinja2.Environment:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.FileSystemLoader(HERE / "templates"),
        autoescape=jinja2.select_autoescape(default=True),
        extensions=["jinja2.ext.i18n"],
        undefined=jinja2.StrictUndefined,
        context_processors=[aiohttp_jinja2.request_processor],
    )
    env.install_gettext_callables(i18n.gettext, i18n.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals["current_language"] = i18n.current_language
    env.filters["waiting"] = pages.format_waiting
    env.filters["when"] = pages.format_time
    env.filters["network_label"] = pages.network_label
    return env


def add_inbox(
    app: web.Application,
    engine: AsyncEngine,
    bus: Bus,
    settings: Settings,
    files: Mapping[Network, FileFetcher] | None = None,
    file_limits: Mapping[Network, FileLimits] | None = None,
) -> None:
    """`files`: how to fetch customers' attachments, per network (one without it says so);
    `file_limits`: what each network takes of the files agents send (one without, none)."""
    app[ENGINE] = engine
    app[FILES] = files or {}
    app[FILE_LIMITS] = file_limits or {}
    app[BUS] = bus
    app[SETTINGS] = settings
    app[COUNTS] = SharedCounts()
    _environment(app)
    app.on_response_prepare.append(security_headers(settings))
    app.middlewares.append(api.json_errors)
    app.middlewares.append(malformed_bodies)
    app.middlewares.append(uploads.larger_bodies)  # before auth, which reads a form's token
    app.middlewares.append(auth.auth_middleware)
    app.middlewares.append(language_middleware)
    app.router.add_routes(pages.routes)
    app.router.add_routes(admin_pages.routes)
    app.router.add_routes(kb_pages.routes)
    app.router.add_routes(team_pages.routes)
    app.router.add_routes(threshold_pages.routes)
    app.router.add_routes(dashboard_pages.routes)
    app.router.add_routes(file_routes)
    live.install(app)
    choice = EmbeddingChoice.of(settings)
    knowledge = KnowledgeResponder(engine, settings.kb_refresh_seconds, choice)
    api.install(app, knowledge)
    app.router.add_static("/static/", HERE / "static")
