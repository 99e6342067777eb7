"""The visitors' sockets open in this process. A frame for a visitor is broadcast to every
process serving /ws/chat (`bridge.channel.Broadcast`), and each pushes it to the sockets it
holds here."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson
from aiohttp import WSCloseCode, web

JSON = dict[str, Any]
# A browser that does not take a frame in this long (a stalled connection) is dropped: it
# reconnects and reads the history, and meanwhile it holds up no other visitor's delivery.
SEND_TIMEOUT_S = 5.0


class Hub:
    """The visitors' sockets open in this process, by visitor id (one per tab).

    A socket is added before its visitor's history is read, so that no reply falls between the
    history and the live frames; what comes for it before its welcome is held and sent after
    it, less the messages the history already showed (the widget's protocol: welcome first)."""

    def __init__(self) -> None:
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._held: dict[web.WebSocketResponse, list[JSON]] = {}

    def add(self, visitor: str, socket: web.WebSocketResponse) -> None:
        self._sockets.setdefault(visitor, set()).add(socket)
        self._held[socket] = []

    async def greeted(self, socket: web.WebSocketResponse, shown: set[str]) -> None:
        """The socket's welcome is sent, with the messages of ids `shown`: the frames held for
        it go now, and the next ones as they come."""
        # held until the last is out: a frame pushed while they go queues behind them
        held = self._held.get(socket, [])
        while held:
            frame = held.pop(0)
            if not (frame.get("type") == "message" and frame.get("id") in shown):
                await _send(socket, orjson.dumps(frame).decode())
        self._held.pop(socket, None)

    def remove(self, visitor: str, socket: web.WebSocketResponse) -> None:
        self._held.pop(socket, None)
        sockets = self._sockets.get(visitor)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._sockets[visitor]

    async def push(self, visitor: str, frame: JSON) -> None:
        """Send `frame` to every open socket of the visitor here (none: nothing to do)."""
        sockets = []
        for socket in self._sockets.get(visitor, ()):
            if socket in self._held:
                self._held[socket].append(frame)
            elif not socket.closed:
                sockets.append(socket)
        if sockets:
            text = orjson.dumps(frame).decode()
            await asyncio.gather(*(_send(s, text) for s in sockets))


async def _send(socket: web.WebSocketResponse, text: str) -> None:
    try:
        await asyncio.wait_for(socket.send_str(text), SEND_TIMEOUT_S)
    except (ConnectionResetError, TimeoutError):
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            await asyncio.wait_for(socket.close(code=WSCloseCode.TRY_AGAIN_LATER), 1.0)
