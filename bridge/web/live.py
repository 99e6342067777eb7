"""`/ws/inbox`: the bus's events (a message stored, a state changed, a delivery status) pushed to
every open inbox page, which then fetches the part of the page that changed. With Redis the
events are pub/sub, so every `web` process sees those of every core and sender. The page sends
back where its agent is (`presence`), which goes to the other pages the same way, and that its
agent uses it (`agent_activity`: the agent's online status)."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import WSCloseCode, WSMsgType, web

from bridge.domain import Event
from bridge.web import auth
from bridge.web.agent_activity import PageActivity
from bridge.web.keys import BUS, ENGINE
from bridge.web.presence import Presence

SOCKETS = web.AppKey("live_sockets", weakref.WeakSet[web.WebSocketResponse])
HEARTBEAT_S = 25.0
SUBSCRIBED = "subscribed"

routes = web.RouteTableDef()


def _same_origin(request: web.Request) -> bool:
    """A page of another site must not open an agent's socket with the agent's cookie."""
    origin = request.headers.get("Origin")
    return origin is not None and urlsplit(origin).netloc == request.host


@routes.get("/ws/inbox")
async def inbox_socket(request: web.Request) -> web.StreamResponse:
    session = auth.current_session(request)
    if not _same_origin(request):
        raise web.HTTPForbidden(text="cross-site socket refused")
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S)
    await socket.prepare(request)
    request.app[SOCKETS].add(socket)
    bus = request.app[BUS]
    presence = Presence(session.agent)
    activity = PageActivity(request.app[ENGINE], session.agent.id)
    async with bus.subscribe_events() as events:
        # From here on nothing is missed; the page fetches what changed since it was rendered.
        await socket.send_json({"kind": SUBSCRIBED})
        forward = asyncio.ensure_future(_forward(events, socket))
        seen = asyncio.ensure_future(activity.keep_seen())
        try:
            async for message in socket:  # ends when the page closes
                if message.type is WSMsgType.ERROR:
                    break
                if message.type is not WSMsgType.TEXT or await activity.heard(message.data):
                    continue
                if said := presence.note(message.data):
                    await bus.publish_events(said)
        finally:
            seen.cancel()
            if said := presence.left():
                # the others hear at once; a process that dies leaves them to forget by time
                with contextlib.suppress(Exception):
                    await bus.publish_events(said)
            forward.cancel()
            for task in (seen, forward):
                with contextlib.suppress(asyncio.CancelledError):
                    await task
    return socket


async def _close_sockets(app: web.Application) -> None:
    """On shutdown: open pages reconnect to another process, the server stops at once."""
    open_sockets: weakref.WeakSet[web.WebSocketResponse] = app[SOCKETS]
    for socket in list(open_sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")


def install(app: web.Application) -> None:
    app[SOCKETS] = weakref.WeakSet()
    app.on_shutdown.append(_close_sockets)
    app.router.add_routes(routes)


async def _forward(events: AsyncIterator[Event], socket: web.WebSocketResponse) -> None:
    async for event in events:
        if socket.closed:
            return
        await socket.send_json(event.model_dump(mode="json"))
