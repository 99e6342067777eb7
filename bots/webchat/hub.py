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
    """The visitors' sockets open in this process, by visitor id (one per tab)."""

    def __init__(self) -> None:
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}

    def add(self, visitor: str, socket: web.WebSocketResponse) -> None:
        self._sockets.setdefault(visitor, set()).add(socket)

    def remove(self, visitor: str, socket: web.WebSocketResponse) -> None:
        sockets = self._sockets.get(visitor)
        if sockets is not None:
            sockets.discard(socket)
            if not sockets:
                del self._sockets[visitor]

    async def push(self, visitor: str, frame: JSON) -> None:
        """Send `frame` to every open socket of the visitor here (none: nothing to do)."""
        sockets = [s for s in self._sockets.get(visitor, ()) if not s.closed]
        if sockets:
            text = orjson.dumps(frame).decode()
            await asyncio.gather(*(_send(s, text) for s in sockets))


async def _send(socket: web.WebSocketResponse, text: str) -> None:
    try:
        await asyncio.wait_for(socket.send_str(text), SEND_TIMEOUT_S)
    except (ConnectionResetError, TimeoutError):
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            await asyncio.wait_for(socket.close(code=WSCloseCode.TRY_AGAIN_LATER), 1.0)
