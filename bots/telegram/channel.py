"""The Telegram channel: aiogram's Bot for every call, our own polling loop and webhook route.

Our own loop, rather than aiogram's Dispatcher, because an update is confirmed (the offset moved
past it) only after the bus accepted it: a crash in between means Telegram sends it again.

Telegram Business: a brand that connects the bot to its business account gets that account's
private chats as conversations of their own (`bots.telegram.events.business_chat`), and the
replies go out through the connection (`business_connection_id`). Whether the connection may
send is checked before each send (docs/networks.md 1.7), so that an agent reads why not.

Channel comments: an agent's public reply goes to the channel's discussion group as a reply to
the comment (or to the post's forward there), which puts it in the post's thread (1.8).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from aiogram import Bot, methods
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramEntityTooLarge,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods.base import Response
from aiogram.types import (
    BufferedInputFile,
    BusinessConnection,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    ReplyParameters,
    Update,
)
from aiohttp import web
from pydantic import ValidationError

from bots.telegram.events import message_key, parse_chat, parse_post_thread, to_inbound
from bridge.channel import (
    MB,
    Delivered,
    DeliveryError,
    FileKeeper,
    FileLimits,
    InboundSink,
    Limit,
    OutgoingFile,
    PollPosition,
    outgoing_files,
)
from bridge.domain import PHOTO, Button, Network, OutboundMessage
from bridge.util.stopping import pause

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_MESSAGE_CHARS = 4096
MAX_CAPTION_CHARS = 1024
# Uploads through the public Bot API: photos of 10 MB, other files of 50 MB; a photo's sides add
# up to 10000 px at most, one at most 20 times the other (docs/networks.md 1.4).
FILE_LIMITS = FileLimits(
    "Telegram", file_bytes=50 * MB, photo_bytes=10 * MB, photo_sides=10_000, photo_ratio=20
)
# The server's word for a photo whose sides it refuses: sent as a document instead.
BAD_PHOTO_SIDES = "PHOTO_INVALID_DIMENSIONS"
ALLOWED_UPDATES = [
    "message",
    "edited_message",
    "callback_query",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
]
# The Bot API's documented limits: about 30 messages/s per bot and 1/s per chat. The chat's
# is kept 5% under, so that network jitter never lands two sends within one second there.
BOT_PER_SECOND = 30.0
CHAT_PER_SECOND = 0.95
# In a group the documented limit is 20 messages a minute; kept 5% under as well.
GROUP_PER_SECOND = 0.95 * 20 / 60
# aiogram reads each answer as Response[<the method's result>], a class pydantic makes (~4 ms)
# and caches only weakly: made inside a function, nothing else held it, so each garbage
# collection dropped it and the next answer made it again (a tenth of a busy bot's CPU).
ANSWER_TYPES = tuple(
    Response[method.__returning__]  # type: ignore[name-defined]
    for method in (
        methods.AnswerCallbackQuery,
        methods.GetBusinessConnection,
        methods.GetFile,
        methods.GetUpdates,
        methods.SendDocument,
        methods.SendMessage,
        methods.SendPhoto,
        methods.SetWebhook,
    )
)
# A business connection's rights may reply only in chats with an incoming message within 24 h.
BUSINESS_REPLY_WINDOW_S = 24 * 3600
# How long a connection read here is trusted: every process sends, but only one receives the
# updates that change it, so the others ask Telegram again after this.
CONNECTION_FRESH_S = 60.0


@dataclass(frozen=True, slots=True)
class KnownConnection:
    connection: BusinessConnection
    until: float  # time.monotonic() after which it is asked for again


class TelegramChannel:
    network = Network.TELEGRAM
    file_limits = FILE_LIMITS

    def __init__(
        self,
        token: str,
        *,
        api_url: str | None = None,
        webhook_secret: str | None = None,
        poll_timeout_s: int = 25,
        files: FileKeeper | None = None,
    ) -> None:
        """`files`: where the files agents send are kept until they are sent."""
        session = AiohttpSession(api=TelegramAPIServer.from_base(api_url)) if api_url else None
        self.bot = Bot(token, session=session)
        self.webhook_secret = webhook_secret
        self.poll_timeout_s = poll_timeout_s
        self.offset: int | None = None
        self.files = files
        self.connections: dict[str, KnownConnection] = {}
        """Business connections by id, from their updates and getBusinessConnection."""

    async def close(self) -> None:
        await self.bot.session.close()

    # -- sending ----------------------------------------------------------------------------

    def limits(self, message: OutboundMessage) -> Sequence[Limit]:
        if message.public:
            # every thread of one discussion group shares the group's limit
            group = message.chat_id.rpartition(":")[0]
            return [
                Limit(f"telegram:{self.bot.id}", BOT_PER_SECOND),
                Limit(f"telegram:{self.bot.id}:chat:{group}", GROUP_PER_SECOND),
            ]
        return [
            Limit(f"telegram:{self.bot.id}", BOT_PER_SECOND),
            Limit(f"telegram:{self.bot.id}:chat:{message.chat_id}", CHAT_PER_SECOND),
        ]

    async def send(self, message: OutboundMessage) -> Delivered:
        files = await outgoing_files(self.files, FILE_LIMITS, message)
        try:
            thread = parse_post_thread(message.chat_id)
            connection, chat = (None, 0) if thread is not None else parse_chat(message.chat_id)
        except ValueError as exc:
            raise DeliveryError(f"not a Telegram chat: {exc}", permanent=True) from exc
        if message.public != (thread is not None):
            raise DeliveryError(f"{message.chat_id} is no Telegram public thread", permanent=True)
        if thread is not None and files:
            reason = "files in public Telegram replies are not sent yet"
            raise DeliveryError(reason, permanent=True)
        try:
            if thread is not None:
                sent = await self._send_comment(message, *thread)
                return Delivered(message_key(thread[0], sent.message_id))
            if connection is not None:
                await self._check_business(connection, message)
            first = await self._send_parts(message, chat, connection, files)
        except TelegramRetryAfter as exc:
            raise DeliveryError(exc.message, permanent=False, retry_after=exc.retry_after) from exc
        except TelegramEntityTooLarge as exc:
            reason = f"file too large for Telegram ({exc.message})"
            raise DeliveryError(reason, permanent=True) from exc
        except (TelegramServerError, TelegramNetworkError) as exc:
            raise DeliveryError(exc.message, permanent=False) from exc
        except (
            TelegramForbiddenError,
            TelegramBadRequest,
            TelegramNotFound,
            TelegramUnauthorizedError,
        ) as exc:
            if connection is None:
                raise DeliveryError(exc.message, permanent=True) from exc
            reason = f"the Telegram Business connection cannot send to this chat ({exc.message})"
            raise DeliveryError(reason, permanent=True) from exc
        return Delivered(message_key(message.chat_id, first.message_id))

    async def _send_comment(self, message: OutboundMessage, group: int, thread: int) -> Message:
        """The reply in the post's thread of the discussion group, answering the comment
        `in_reply_to` (or the post itself); longer texts go on as replies to the first part."""
        target = thread
        if message.in_reply_to:
            comment_group, _, comment = message.in_reply_to.partition(":")
            if comment_group != str(group) or not comment.isdigit():
                reason = f"{message.in_reply_to} is no comment of this thread"
                raise DeliveryError(reason, permanent=True)
            target = int(comment)
        chunks = split_text(message.text) or [""]
        first: Message | None = None
        for chunk in chunks:
            sent = await self.bot.send_message(
                group, chunk, reply_parameters=ReplyParameters(message_id=target)
            )
            first = first or sent
            target = sent.message_id
        assert first is not None  # at least one chunk
        return first

    async def _check_business(self, connection_id: str, message: OutboundMessage) -> None:
        """DeliveryError, before any send, when the business connection may not send this."""
        connection = await self.business_connection(connection_id)
        if not connection.is_enabled:
            raise DeliveryError(
                "the brand's Telegram Business account has disconnected the bot: nothing can "
                "be sent in its chats until it connects the bot again",
                permanent=True,
            )
        if not may_reply(connection):
            raise DeliveryError(
                "the brand's Telegram Business account does not let the bot reply: its owner "
                "must allow the bot to reply to messages in the account's chatbot settings",
                permanent=True,
            )
        last = max(
            (t for t in (message.received_at, message.customer_last_message_at) if t), default=None
        )
        if last is not None and time.time() - last > BUSINESS_REPLY_WINDOW_S:
            raise DeliveryError(
                "Telegram Business lets a bot reply only in chats where the customer wrote in "
                "the last 24 hours: this reply cannot go until they write again",
                permanent=True,
            )

    async def business_connection(self, connection_id: str) -> BusinessConnection:
        """The connection as last heard of, or as Telegram tells it now."""
        known = self.connections.get(connection_id)
        if known is not None and known.until > time.monotonic():
            return known.connection
        connection = await self.bot.get_business_connection(connection_id)
        self._remember(connection)
        return connection

    def _remember(self, connection: BusinessConnection) -> None:
        until = time.monotonic() + CONNECTION_FRESH_S
        self.connections[connection.id] = KnownConnection(connection, until)
        log.info(
            "telegram: business connection %s of user %d: %s, %s",
            connection.id,
            connection.user.id,
            "enabled" if connection.is_enabled else "disabled",
            "may reply" if may_reply(connection) else "may not reply",
        )

    async def _send_parts(
        self,
        message: OutboundMessage,
        chat: int,
        connection: str | None,
        files: list[OutgoingFile],
    ) -> Message:
        """The text, then each file; a text short enough is the first file's caption. The
        buttons go under the last part, where the customer's eye ends. The first part sent.
        `connection`: the business connection it goes through, if any."""
        if files and len(message.text) <= MAX_CAPTION_CHARS:
            caption, chunks = message.text or None, []
        else:
            caption, chunks = None, split_text(message.text) or ([] if files else [""])
        parts = len(chunks) + len(files)
        sent: list[Message] = []
        for chunk in chunks:
            markup = keyboard(message.buttons) if len(sent) + 1 == parts else None
            sent.append(
                await self.bot.send_message(
                    chat, chunk, reply_markup=markup, business_connection_id=connection
                )
            )
        for file in files:
            markup = keyboard(message.buttons) if len(sent) + 1 == parts else None
            first_caption = caption if not sent else None
            sent.append(await self._send_file(chat, connection, file, first_caption, markup))
        return sent[0]

    async def _send_file(
        self,
        chat: int,
        connection: str | None,
        file: OutgoingFile,
        caption: str | None,
        markup: InlineKeyboardMarkup | None,
    ) -> Message:
        upload = BufferedInputFile(file.content, filename=file.name)
        if file.attachment.kind == PHOTO:
            try:
                return await self.bot.send_photo(
                    chat,
                    upload,
                    caption=caption,
                    reply_markup=markup,
                    business_connection_id=connection,
                )
            except TelegramBadRequest as exc:
                if BAD_PHOTO_SIDES not in exc.message:
                    raise
                # a picture Telegram will not show as a photo still reaches the customer
                log.info("telegram: a photo's sides refused; sent as a document")
        return await self.bot.send_document(
            chat, upload, caption=caption, reply_markup=markup, business_connection_id=connection
        )

    async def fetch_file(self, network_file_id: str) -> bytes:
        """A customer's photo or document, fetched when an agent opens it (files stay on
        Telegram; the store keeps only their metadata)."""
        buffer = await self.bot.download(network_file_id)
        assert buffer is not None  # without a destination aiogram returns the bytes
        return buffer.read()

    # -- receiving --------------------------------------------------------------------------

    async def poll(
        self, sink: InboundSink, stop: asyncio.Event, position: PollPosition | None = None
    ) -> None:
        # Telegram keeps the offset itself: updates stay until a getUpdates confirms them.
        delay = 1.0
        while not stop.is_set():
            try:
                updates = await self._next_updates(stop)
                if updates:
                    await self._accept(updates, sink)
                    self.offset = updates[-1].update_id + 1
                delay = 1.0
            except TelegramRetryAfter as exc:
                await pause(stop, exc.retry_after)
            except (TelegramAPIError, OSError, TimeoutError) as exc:
                log.warning("telegram polling: %s; retrying in %.0f s", exc, delay)
                await pause(stop, delay)
                delay = min(delay * 2, 60.0)

    async def _next_updates(self, stop: asyncio.Event) -> list[Update]:
        request = asyncio.ensure_future(
            self.bot.get_updates(
                offset=self.offset,
                timeout=self.poll_timeout_s,
                allowed_updates=ALLOWED_UPDATES,
                request_timeout=self.poll_timeout_s + 10,
            )
        )
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({request, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not request.done():
            request.cancel()
            return []
        return request.result()

    async def _accept(self, updates: Sequence[Update], sink: InboundSink) -> None:
        inbound = [m for update in updates for m in to_inbound(update)]
        if inbound:
            await sink(inbound)
        for update in updates:
            if update.callback_query is not None:
                await self._answer_button(update.callback_query.id)
            if update.business_connection is not None:
                self._remember(update.business_connection)

    async def _answer_button(self, query_id: str) -> None:
        """Stops the spinner on the customer's button; a stale query is not worth an error."""
        try:
            await self.bot.answer_callback_query(query_id)
        except TelegramAPIError as exc:
            log.info("telegram: answerCallbackQuery %s: %s", query_id, exc)

    def webhook_routes(self, sink: InboundSink) -> Sequence[web.RouteDef]:
        if not self.webhook_secret:
            return []
        secret = self.webhook_secret.encode()

        async def receive(request: web.Request) -> web.Response:
            given = request.headers.get(SECRET_HEADER, "").encode()
            if not hmac.compare_digest(given, secret):
                return web.json_response({"error": "bad secret token"}, status=401)
            try:
                update = Update.model_validate(await request.json(), context={"bot": self.bot})
            except (ValueError, RecursionError, ValidationError) as exc:
                return web.json_response({"error": f"not a Telegram update: {exc}"}, status=400)
            # A failure here answers 500, so Telegram delivers the update again.
            await self._accept([update], sink)
            return web.json_response({})

        return [web.post(WEBHOOK_PATH, receive)]

    async def register_webhook(self, public_url: str) -> None:
        await self.bot.set_webhook(
            public_url.rstrip("/") + WEBHOOK_PATH,
            secret_token=self.webhook_secret,
            allowed_updates=ALLOWED_UPDATES,
        )


def may_reply(connection: BusinessConnection) -> bool:
    """The connection's right to reply: in its rights, or the boolean Bot API 9.0 deprecated."""
    if connection.rights is not None:
        return bool(connection.rights.can_reply)
    return bool(connection.can_reply)


def keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    """Our buttons as one row of inline callback buttons (a press is a callback_query)."""
    if not buttons:
        return None
    row = [InlineKeyboardButton(text=b.label, callback_data=b.data) for b in buttons]
    return InlineKeyboardMarkup(inline_keyboard=[row])


def split_text(text: str) -> list[str]:
    """Telegram takes at most 4096 characters a message: longer replies go in several."""
    return [text[i : i + MAX_MESSAGE_CHARS] for i in range(0, len(text), MAX_MESSAGE_CHARS)]
