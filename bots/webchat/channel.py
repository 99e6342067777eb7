"""The web-chat channel: `/widget.js` for the brand's page, and `/ws/chat`, the widget's socket.

A visitor's messages go to the same inbound sink as every network's, within the limits of
`bots.webchat.limits` (anyone may open the socket); the replies come from the
sender (`send`) and go to the visitor's open sockets through the broadcast. A reply is marked sent
once it is broadcast: it is in the visitor's conversation, shown live on an open
widget, or from the history the widget receives when the visitor comes back (web chat has no
network that could still refuse it). The frames are described in `bots.webchat.protocol`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from urllib.parse import quote, urlencode, urlsplit

import orjson
from aiohttp import WSCloseCode, WSMsgType, web
from redis.exceptions import RedisError

from bots.webchat import protocol
from bots.webchat.hub import JSON, Hub
from bots.webchat.limits import Gate
from bots.webchat.protocol import FrameError, Hello, Press, Say, SendFile
from bots.webchat.token import VisitorTokens
from bridge.channel import (
    MB,
    Broadcast,
    CustomerHistory,
    Delivered,
    DeliveryError,
    FileKeeper,
    FileLimits,
    InboundSink,
    Limit,
    PollPosition,
    StoreUnavailable,
)
from bridge.domain import Attachment, InboundMessage, Network, OutboundMessage
from bridge.util.file_types import picture_type

log = logging.getLogger(__name__)

WIDGET_PATH = "/widget.js"
SOCKET_PATH = "/ws/chat"
FILE_PATH = "/webchat/file"  # the files agents send, by the signed links the visitor is given
# No network in between: the visitor's browser fetches an agent's file from the store, where
# bridge.inbox.outgoing_files keeps at most 50 MB a reply.
FILE_LIMITS = FileLimits("the web chat", file_bytes=50 * MB, photo_bytes=50 * MB)
HISTORY_LIMIT = 50
HEARTBEAT_S = 25.0  # mobile networks drop a silent connection; the ping keeps it up
# Beyond what a file frame may hold (protocol.MAX_FILE_FRAME_BYTES; a larger one is refused with
# an error frame), aiohttp itself closes the socket (1009): the widget reconnects.
MAX_TRANSPORT_BYTES = protocol.MAX_FILE_FRAME_BYTES + 1024
# A person types a message every few seconds; a burst covers the widget's resends after a
# reconnect.
VISITOR_BURST = 10
VISITOR_PER_SECOND = 1.0
# The widget shows what it gets as fast as it comes; the limit keeps a storm of resends from
# flooding one browser.
REPLIES_PER_SECOND = 10.0


@dataclass(slots=True)
class _Bucket:
    """A token bucket per socket: VISITOR_BURST at once, then VISITOR_PER_SECOND."""

    tokens: float = VISITOR_BURST
    at: float = field(default_factory=time.monotonic)

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(VISITOR_BURST, self.tokens + (now - self.at) * VISITOR_PER_SECOND)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(slots=True)
class _Visit:
    socket: web.WebSocketResponse
    address: str  # the client's, as the limits count it
    visitor: str | None = None
    language: str | None = None
    bucket: _Bucket = field(default_factory=_Bucket)

    async def send(self, frame: JSON) -> None:
        with contextlib.suppress(ConnectionResetError):  # the browser left meanwhile
            await self.socket.send_json(frame)


class WebChatChannel:
    network = Network.WEBCHAT
    file_limits = FILE_LIMITS

    def __init__(
        self,
        history: CustomerHistory,
        files: FileKeeper,
        tokens: VisitorTokens,
        broadcast: Broadcast,
        origins: Sequence[str] = (),
        *,
        gate: Gate,
        storage_bytes: int = 10 * 1024**3,
    ) -> None:
        """`storage_bytes`: the most the store keeps of visitors' files, all together."""
        self.history = history
        self.storage_bytes = storage_bytes
        self.files = files
        self.tokens = tokens
        self.gate = gate
        self.hub = Hub()
        self.broadcast = broadcast
        broadcast.subscribe(self._push)
        self.origins = frozenset(origins)
        self.widget = resources.files(__package__).joinpath("widget.js").read_text("utf-8")
        self._sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()

    async def close(self) -> None:
        """The widgets reconnect (to another process, if there is one) and read the history."""
        for socket in list(self._sockets):
            await socket.close(code=WSCloseCode.GOING_AWAY, message=b"server shutdown")

    async def register_webhook(self, public_url: str) -> None:
        """Nothing to register: the widget on the brand's page connects to us."""

    async def relay(self, stop: asyncio.Event) -> None:
        """Push the frames that other processes send to the sockets this one holds."""
        await self.broadcast.run(stop)

    async def _deliver(self, visitor: str, frame: JSON) -> None:
        """Get `frame` to the visitor's open sockets, in whichever process they are."""
        await self.broadcast.publish(orjson.dumps({"to": visitor, "frame": frame}))

    async def _push(self, payload: bytes) -> None:
        try:
            item = orjson.loads(payload)
            visitor, frame = str(item["to"]), dict(item["frame"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            log.warning("webchat relay: skipped a malformed frame: %s", exc)
            return
        await self.hub.push(visitor, frame)

    # -- sending ----------------------------------------------------------------------------

    def limits(self, message: OutboundMessage) -> Sequence[Limit]:
        return [Limit(f"webchat:{message.chat_id}", REPLIES_PER_SECOND, burst=VISITOR_BURST)]

    async def send(self, message: OutboundMessage) -> Delivered:
        for attachment in message.attachments:
            if (why := FILE_LIMITS.refusal(attachment.name, attachment.size or 0)) is not None:
                raise DeliveryError(why, permanent=True)
        frame = protocol.reply(message, time.time(), self._link_for(message.chat_id))
        try:
            await self._deliver(message.chat_id, frame)
        except (RedisError, OSError) as exc:
            raise DeliveryError(f"web chat relay unavailable: {exc}", permanent=False) from exc
        return Delivered(protocol.reply_id(message.message_id))

    async def fetch_file(self, network_file_id: str) -> bytes:
        """A file a visitor sent: the web chat keeps them itself (no network does)."""
        return await self.files.load(network_file_id)

    def _link_for(self, visitor: str) -> protocol.Link:
        """Links to the files agents send this visitor; the file stays where it was kept (the
        reply is delivered once the frame is out, the file read when the visitor opens it)."""

        def link(attachment: Attachment) -> str:
            key, name = attachment.network_file_id, attachment.name or attachment.kind
            signature = self.tokens.file_signature(visitor, key, name)
            return f"{FILE_PATH}?{urlencode({'v': visitor, 'k': key, 'n': name, 's': signature})}"

        return link

    async def _serve_file(self, request: web.Request) -> web.Response:
        """A file an agent sent, to whoever holds the link the visitor was given."""
        query = request.query
        visitor, key, name = query.get("v", ""), query.get("k", ""), query.get("n", "")
        expected = self.tokens.file_signature(visitor, key, name).encode()
        if not hmac.compare_digest(query.get("s", "").encode(), expected):
            raise web.HTTPNotFound(text="no such file")
        try:
            content = await self.files.load(key)
        except LookupError:
            raise web.HTTPNotFound(text="the file is no longer kept") from None
        except StoreUnavailable:
            raise web.HTTPServiceUnavailable(text="the file cannot be read now") from None
        # a picture is shown; anything else is downloaded, never run as a page of this site
        picture = picture_type(content)
        disposition = "inline" if picture else f"attachment; filename*=UTF-8''{quote(name)}"
        return web.Response(
            body=content,
            content_type=picture or "application/octet-stream",
            headers={
                "Content-Disposition": disposition,
                "Content-Security-Policy": "sandbox; default-src 'none'",
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "private, max-age=86400",
                # the brand's pages show it, whatever their origin
                "Cross-Origin-Resource-Policy": "cross-origin",
            },
        )

    # -- receiving --------------------------------------------------------------------------

    async def poll(
        self, sink: InboundSink, stop: asyncio.Event, position: PollPosition | None = None
    ) -> None:
        """The widget pushes over its socket: nothing to poll."""

    def webhook_routes(self, sink: InboundSink) -> Sequence[web.RouteDef]:
        async def widget(_request: web.Request) -> web.Response:
            return web.Response(
                text=self.widget,
                content_type="application/javascript",
                charset="utf-8",
                headers={"Cache-Control": "public, max-age=300"},
            )

        async def chat(request: web.Request) -> web.WebSocketResponse:
            return await self._chat(request, sink)

        return [
            web.get(WIDGET_PATH, widget),
            web.get(SOCKET_PATH, chat),
            web.get(FILE_PATH, self._serve_file),
        ]

    async def _chat(self, request: web.Request, sink: InboundSink) -> web.WebSocketResponse:
        self._check_origin(request)
        socket = web.WebSocketResponse(heartbeat=HEARTBEAT_S, max_msg_size=MAX_TRANSPORT_BYTES)
        await socket.prepare(request)
        self._sockets.add(socket)
        visit = _Visit(socket, self.gate.address(request))
        try:
            async for message in socket:
                if message.type is WSMsgType.TEXT:
                    await self._on_frame(visit, message.data, sink)
                elif message.type is WSMsgType.BINARY:
                    await visit.send(FrameError("bad_json", "frames are JSON text").frame())
                elif message.type is WSMsgType.ERROR:
                    break
        finally:
            if visit.visitor is not None:
                self.hub.remove(visit.visitor, socket)
        return socket

    def _check_origin(self, request: web.Request) -> None:
        """The widget runs on the brand's sites, not ours: any of them when no list is set, else
        only those listed (and our own pages), so that no other site puts our chat on its pages."""
        if not self.origins:
            return
        origin = request.headers.get("Origin", "").lower()
        if origin in self.origins or urlsplit(origin).netloc == request.host.lower():
            return
        raise web.HTTPForbidden(
            text=f"the web chat is not open to pages of {origin or 'an unnamed origin'}"
        )

    async def _on_frame(self, visit: _Visit, raw: str, sink: InboundSink) -> None:
        try:
            frame = protocol.parse(raw)
            if isinstance(frame, Hello):
                await self._hello(visit, frame)
            elif visit.visitor is None:
                raise FrameError("hello_first", "send hello first", frame.id)
            elif not visit.bucket.take():
                raise FrameError("too_fast", "too many messages; wait a moment", frame.id)
            else:
                await self.gate.message(visit.address, frame.id)
                await self._accept(visit, visit.visitor, frame, sink)
        except FrameError as exc:
            await visit.send(exc.frame())

    async def _hello(self, visit: _Visit, hello: Hello) -> None:
        if visit.visitor is not None:
            raise FrameError("already_greeted", "hello is sent once per connection")
        known = self.tokens.renew(hello.token)
        if known is None:
            await self.gate.new_visitor(visit.address)
            known = self.tokens.issue()
        visitor, token = known
        visit.language = hello.language_code
        # Registered before the history is read: a reply sent meanwhile comes live, one sent
        # before is in the history (a reply is stored before it is sent), none falls between.
        visit.visitor = visitor
        self.hub.add(visitor, visit.socket)
        try:
            seen = await self.history(Network.WEBCHAT, visitor, HISTORY_LIMIT)
        except StoreUnavailable as exc:
            log.warning("webchat: history of a visitor not read: %s", exc)
            self.hub.remove(visitor, visit.socket)
            visit.visitor = None  # the widget says hello again when it reconnects
            raise FrameError("unavailable", "the chat is unavailable; reconnect later") from None
        link = self._link_for(visitor)
        history = [protocol.from_history(m, link) for m in seen]
        await visit.send(protocol.welcome(token, history))
        await self.hub.greeted(visit.socket, {str(m["id"]) for m in history})

    async def _within_storage(self, size: int, frame_id: str) -> None:
        try:
            kept = await self.files.kept_bytes("webchat:")
        except StoreUnavailable as exc:
            log.warning("webchat: the files kept could not be counted: %s", exc)
            raise FrameError("unavailable", "not accepted now; send it again", frame_id) from None
        if kept + size > self.storage_bytes:
            log.warning("webchat: the storage quota of visitors' files is full (%d bytes)", kept)
            raise FrameError(
                "storage_full",
                "this chat keeps no more files now; write your question instead",
                frame_id,
            )

    async def _keep(self, visit: _Visit, visitor: str, frame: SendFile) -> Attachment:
        """Keep the visitor's file (once, whatever the resends) and describe it for the store."""
        content = frame.content()
        await self.gate.file(visit.address, len(content), frame.id)
        await self._within_storage(len(content), frame.id)
        photo = picture_type(content)
        key = f"webchat:{visitor}:{frame.id}"  # the message's own: a resend keeps the one file
        try:
            await self.files.keep(key, content)
        except StoreUnavailable as exc:
            log.warning("webchat: a visitor's file not kept: %s", exc)
            raise FrameError("unavailable", "not accepted now; send it again", frame.id) from None
        return Attachment(
            kind="photo" if photo else "document",
            network_file_id=key,
            name=frame.name or None,
            mime_type=photo or frame.mime,
            size=len(content),
        )

    async def _accept(
        self, visit: _Visit, visitor: str, frame: Say | SendFile | Press, sink: InboundSink
    ) -> None:
        text, data = (frame.label, frame.data) if isinstance(frame, Press) else (frame.text, None)
        attachments = (
            [await self._keep(visit, visitor, frame)] if isinstance(frame, SendFile) else []
        )
        inbound = InboundMessage(
            network=Network.WEBCHAT,
            # scoped to the visitor: another visitor's ids can never make this one a duplicate
            network_message_id=f"{visitor}:{frame.id}",
            kind="message" if data is None else "button",
            chat_id=visitor,
            user_id=visitor,
            text=text,
            display_name=f"Web visitor {visitor[:6]}",
            language=visit.language,
            button_data=data,
            attachments=attachments,
        )
        try:
            await sink([inbound])
        except (RedisError, OSError) as exc:
            log.warning("webchat: inbound bus unavailable: %s", exc)
            raise FrameError("unavailable", "not accepted now; send it again", frame.id) from None
        await visit.send(protocol.ack(frame.id))
        try:
            # the visitor's other tabs show it too (this one knows it by its id already)
            files = [a.name or a.kind for a in attachments]
            await self._deliver(
                visitor, protocol.visitor_message(frame.id, text, inbound.received_at, files)
            )
        except (RedisError, OSError) as exc:
            log.info("webchat: message not shown on the visitor's other tabs: %s", exc)
