"""Where a frame for a visitor goes: the visitor's sockets open in this process (`Hub`), reached
directly in the embedded mode (`LocalFanout`), or through Redis pub/sub from whichever process
sends to the one holding the socket (`RedisFanout`: every process serving /ws/chat listens)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Protocol

import orjson
from aiohttp import WSCloseCode, web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from bridge.util.stopping import pause

log = logging.getLogger(__name__)

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


class Fanout(Protocol):
    async def deliver(self, visitor: str, frame: JSON) -> None:
        """Get `frame` to the visitor's open sockets, wherever they are; none open: nothing."""
        ...


class LocalFanout:
    """The embedded mode: the sender and every socket live in this one process."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    async def deliver(self, visitor: str, frame: JSON) -> None:
        await self.hub.push(visitor, frame)


class RedisFanout:
    """The distributed mode: a frame is published once, and every process serving /ws/chat
    (`run`) pushes it to the sockets it holds. Pub/sub keeps nothing: a frame published while a
    process is reconnecting to Redis reaches that process's visitors from the history instead,
    when their widget reconnects."""

    def __init__(self, client: Redis, channel: str, hub: Hub) -> None:
        self.client = client
        self.channel = channel
        self.hub = hub

    async def deliver(self, visitor: str, frame: JSON) -> None:
        await self.client.publish(self.channel, orjson.dumps({"to": visitor, "frame": frame}))

    async def run(self, stop: asyncio.Event) -> None:
        """Relay the published frames to this process's sockets until `stop`."""
        delay = 0.5
        while not stop.is_set():
            started = time.monotonic()
            listening = asyncio.ensure_future(self._listen())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({listening, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
            if not listening.done():
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listening
                return
            try:
                listening.result()
            except (RedisError, OSError) as exc:
                if time.monotonic() - started > 60:
                    delay = 0.5  # it had been working: a new outage starts from a short wait
                log.warning("webchat relay: %s; resubscribing in %.1f s", exc, delay)
                await pause(stop, delay)
                delay = min(delay * 2, 10.0)

    async def _listen(self) -> None:
        pubsub = self.client.pubsub()
        # aclosing, not a direct aclose() call: older redis stubs leave aclose untyped.
        async with contextlib.aclosing(pubsub):
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message["type"] != "message":
                        continue
                    try:
                        item = orjson.loads(message["data"])
                        visitor, frame = str(item["to"]), dict(item["frame"])
                    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                        log.warning("webchat relay: skipped a malformed frame: %s", exc)
                        continue
                    await self.hub.push(visitor, frame)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.unsubscribe(self.channel)
