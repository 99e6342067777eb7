"""A local emulator of the Telegram Bot API HTTP interface, faithful where our product relies on it.

Serves `/bot{token}/{method}` and `/file/bot{token}/{file_path}` like api.telegram.org, so aiogram
(`TelegramAPIServer.from_base(url)`) and python-telegram-bot (`base_url=url + "/bot"`) talk to it
unchanged. Facts and their sources: ../shared/reference/networks.md section 1. Where the real
server's wording is not published, the texts follow tdlib/telegram-bot-api (TBA).

Deliberate differences from the real server, all harmless for a local emulator:
* webhook URLs may be plain http on any port (test receivers are local); no certificate checks;
* webhook pushes are sequential (as if max_connections were 1), which keeps every chat in order;
* the short-poll throttle (repeated getUpdates with one offset held to 3 s) is not emulated;
* parse_mode is only parsed far enough to know the visible text; no entities are produced.

A test (or, over `/_emulator/...`, another process) plays the customers: writes text, photos and
documents as a user, edits them, presses inline buttons, blocks the bot, and reads what the bot
sent with the emulator's own receive time of each send (the delivery benchmark's evidence).
`faults` injects 429s, 5xx answers, slow answers and dropped connections on demand.

Run standalone: `python -m emulators.telegram --port 8081 --token 123:ABC`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import copy
import html
import itertools
import json
import logging
import random
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web
from yarl import URL

from emulators.faults import Fault, FaultKind, FaultPlan, drop_connection, fault_routes

log = logging.getLogger(__name__)

JSON = dict[str, Any]

DEFAULT_TOKEN = "123456:ABC-emulator"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64
MAX_LONG_POLL_TIMEOUT = 50  # TBA Client.h LONG_POLL_MAX_TIMEOUT
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024
MAX_WEBHOOK_RETRY_AFTER = 3600  # TBA WebhookActor caps a receiver's Retry-After here

CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
CONFLICT_OTHER_POLL = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
CONFLICT_SET_WEBHOOK = "Conflict: terminated by setWebhook request"
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)

# TBA ClientManager: no leading zero, a ':', at most 80 characters; aiogram wants digits first
_TOKEN_RE = re.compile(r"[1-9][0-9]{0,15}:[^/\s]+")
_SECRET_RE = re.compile(r"[A-Za-z0-9_-]*")
_HTML_TAG_RE = re.compile(r"<[^>]*>")
_MARKDOWN_LINK_RE = re.compile(r"\[([^\]]*)\]\([^)]*\)")
# the webhook reply may carry a method call, except these (core.telegram.org "Making requests")
_FORBIDDEN_REPLY_METHODS = frozenset({"setwebhook", "deletewebhook", "close", "logout"})


class ApiError(Exception):
    """A Bot API error answer: HTTP status = error_code, as the real server does."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def response(self) -> web.Response:
        body: JSON = {"ok": False, "error_code": self.code, "description": self.description}
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
            headers["Retry-After"] = str(self.retry_after)
        return web.json_response(body, status=self.code, headers=headers)


@dataclass(slots=True)
class Customer:
    id: int
    first_name: str
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None

    def user_json(self) -> JSON:
        user: JSON = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if (value := getattr(self, key)) is not None:
                user[key] = value
        return user

    def chat_json(self) -> JSON:
        # a private chat's id is the user's id (universal in practice; unconfirmed in the docs)
        chat: JSON = {"id": self.id, "type": "private", "first_name": self.first_name}
        for key in ("last_name", "username"):
            if (value := getattr(self, key)) is not None:
                chat[key] = value
        return chat


@dataclass(slots=True)
class MessageEdit:
    text: str
    reply_markup: JSON | None
    received_at: float


@dataclass(slots=True)
class BotMessage:
    """One message the bot sent, as the customer sees it, with the emulator's receive times."""

    message_id: int
    chat_id: int
    text: str
    reply_markup: JSON | None
    date: int
    received_at: float
    entities: list[Any] | None = None
    edits: list[MessageEdit] = field(default_factory=list)

    @property
    def current_text(self) -> str:
        return self.edits[-1].text if self.edits else self.text

    @property
    def current_reply_markup(self) -> JSON | None:
        return self.edits[-1].reply_markup if self.edits else self.reply_markup

    def as_dict(self) -> JSON:
        return {
            "message_id": self.message_id,
            "chat_id": self.chat_id,
            "text": self.text,
            "reply_markup": self.reply_markup,
            "date": self.date,
            "received_at": self.received_at,
            "edits": [
                {"text": e.text, "reply_markup": e.reply_markup, "received_at": e.received_at}
                for e in self.edits
            ],
            "current_text": self.current_text,
            "current_reply_markup": self.current_reply_markup,
        }


@dataclass(slots=True)
class CallbackQueryRecord:
    """A button press and, once the bot answered it, the answer the customer saw."""

    id: str
    user_id: int
    message_id: int
    data: str
    pressed_at: float
    answer: JSON | None = None

    def as_dict(self) -> JSON:
        return {
            "id": self.id,
            "user_id": self.user_id,
            "message_id": self.message_id,
            "data": self.data,
            "pressed_at": self.pressed_at,
            "answer": self.answer,
        }


@dataclass(slots=True)
class _StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    mime_type: str


@dataclass(slots=True)
class _Chat:
    customer: Customer
    instance: str
    blocked: bool = False
    last_message_id: int = 0
    customer_messages: dict[int, JSON] = field(default_factory=dict)
    bot_messages: dict[int, BotMessage] = field(default_factory=dict)

    def next_message_id(self) -> int:
        # customer's and bot's messages share one sequence per private chat
        self.last_message_id += 1
        return self.last_message_id


@dataclass(slots=True)
class _Webhook:
    url: str
    secret_token: str
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


class _Signal:
    """Wakes everyone waiting when it fires; a waiter takes the event before checking its state."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def event(self) -> asyncio.Event:
        return self._event


@dataclass(slots=True)
class _Answer:
    """A method result with the `description` the real server adds to some successes."""

    result: Any
    description: str


@dataclass(slots=True)
class _Bot:
    token: str
    id: int
    first_name: str
    username: str
    next_update_id: int
    chats: dict[int, _Chat] = field(default_factory=dict)
    updates: deque[JSON] = field(default_factory=deque)
    allowed_updates: list[str] | None = None
    webhook: _Webhook | None = None
    push_task: asyncio.Task[None] | None = None
    poll: asyncio.Future[str | None] | None = None
    updates_added: _Signal = field(default_factory=_Signal)
    callbacks: dict[str, CallbackQueryRecord] = field(default_factory=dict)
    files: dict[str, _StoredFile] = field(default_factory=dict)
    sent: list[BotMessage] = field(default_factory=list)

    def user_json(self) -> JSON:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def confirm(self, offset: int) -> None:
        if offset > 0:
            while self.updates and self.updates[0]["update_id"] < offset:
                self.updates.popleft()
        elif offset < 0:
            while len(self.updates) > -offset:
                self.updates.popleft()

    def end_poll(self, reason: str | None) -> None:
        """Answer a waiting getUpdates now: with what is queued (None) or with 409 `reason`."""
        if self.poll is not None and not self.poll.done():
            self.poll.set_result(reason)


_Method = Callable[[_Bot, dict[str, Any]], Awaitable[Any]]


class TelegramEmulator:
    """State of the emulated Bot API for the configured bot tokens; `app` is the aiohttp app."""

    def __init__(
        self,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        *,
        seed: int = 0,
        webhook_retry_delay: float = 1.0,
        webhook_retry_cap: float = 60.0,
        webhook_timeout: float = 10.0,
    ) -> None:
        self._rng = random.Random(seed)
        self.faults = FaultPlan(seed)
        self._webhook_retry_delay = webhook_retry_delay
        self._webhook_retry_cap = webhook_retry_cap
        self._webhook_timeout = webhook_timeout
        self._customers: dict[int, Customer] = {}
        self._bots: dict[str, _Bot] = {}
        for token in tokens:
            if not _TOKEN_RE.fullmatch(token) or len(token) > 80:
                raise ValueError(f"not a bot token (<digits>:<secret>): {token!r}")
            bot_id = int(token.split(":", 1)[0])
            self._bots[token] = _Bot(
                token=token,
                id=bot_id,
                first_name="SupportBridge Emulated Bot",
                username=f"emulated_{bot_id}_bot",
                # real update ids start anywhere; a large start catches code assuming small ones
                next_update_id=self._rng.randint(10**8, 9 * 10**8),
            )
        if not self._bots:
            raise ValueError("the emulator needs at least one bot token")
        self._default_bot = next(iter(self._bots.values()))
        self._bot_sent = _Signal()
        self._session: aiohttp.ClientSession | None = None
        self._methods: dict[str, _Method] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "answercallbackquery": self._answer_callback_query,
            "editmessagetext": self._edit_message_text,
            "getfile": self._get_file,
        }
        self.app = self._build_app()

    # ---- the customer side (tests and the sandbox) -------------------------------------------

    def customer(
        self,
        user_id: int,
        *,
        first_name: str,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> Customer:
        """Create or update the Telegram profile of user `user_id`."""
        if user_id <= 0:
            raise ValueError("Telegram user ids are positive")
        if not first_name:
            raise ValueError("a Telegram user always has a first name")
        profile = Customer(user_id, first_name, last_name, username, language_code)
        self._customers[user_id] = profile
        for bot in self._bots.values():
            if (chat := bot.chats.get(user_id)) is not None:
                chat.customer = profile
        return profile

    def write_text(self, user_id: int, text: str, *, bot: int | None = None) -> JSON:
        """User `user_id` writes `text` to the bot; returns the Message the bot will receive."""
        if not text.strip():
            raise ValueError("Telegram does not send an empty message")
        state = self._bot(bot)
        return self._write(state, self._writable_chat(state, user_id), {"text": text})

    def write_photo(
        self,
        user_id: int,
        data: bytes,
        *,
        caption: str | None = None,
        width: int = 1280,
        height: int = 960,
        bot: int | None = None,
    ) -> JSON:
        state = self._bot(bot)
        chat = self._writable_chat(state, user_id)
        stored = self._store_file(state, data, f"photos/file_{len(state.files)}.jpg", "image/jpeg")
        size = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "width": width,
            "height": height,
            "file_size": len(data),
        }
        return self._write(state, chat, _with_caption({"photo": [size]}, caption))

    def write_document(
        self,
        user_id: int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str = "application/octet-stream",
        caption: str | None = None,
        bot: int | None = None,
    ) -> JSON:
        state = self._bot(bot)
        chat = self._writable_chat(state, user_id)
        extension = file_name.rsplit(".", 1)[-1] if "." in file_name else "bin"
        path = f"documents/file_{len(state.files)}.{extension}"
        stored = self._store_file(state, data, path, mime_type)
        document = {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_name": file_name,
            "mime_type": mime_type,
            "file_size": len(data),
        }
        return self._write(state, chat, _with_caption({"document": document}, caption))

    def edit_message(
        self, user_id: int, message_id: int, text: str, *, bot: int | None = None
    ) -> JSON:
        """The customer edits their message (its text, or a photo's/document's caption)."""
        state = self._bot(bot)
        chat = state.chats.get(user_id)
        message = chat.customer_messages.get(message_id) if chat is not None else None
        if message is None:
            raise ValueError(f"user {user_id} has no message {message_id}")
        if not text.strip():
            raise ValueError("an edit cannot empty the message")
        message["text" if "text" in message else "caption"] = text
        message["edit_date"] = int(time.time())
        self._add_update(state, "edited_message", message)
        return copy.deepcopy(message)

    def press_button(
        self, user_id: int, message_id: int, callback_data: str, *, bot: int | None = None
    ) -> str:
        """The customer presses an inline button of a bot message; returns the callback query id."""
        state = self._bot(bot)
        chat = state.chats.get(user_id)
        message = chat.bot_messages.get(message_id) if chat is not None else None
        if chat is None or message is None:
            raise ValueError(f"the bot sent no message {message_id} to user {user_id}")
        markup = message.current_reply_markup or {}
        buttons = [b for row in markup.get("inline_keyboard", []) for b in row]
        if not any(button.get("callback_data") == callback_data for button in buttons):
            raise ValueError(f"message {message_id} has no button with data {callback_data!r}")
        query_id = str(self._rng.getrandbits(63))
        state.callbacks[query_id] = CallbackQueryRecord(
            query_id, user_id, message_id, callback_data, time.time()
        )
        query = {
            "id": query_id,
            "from": chat.customer.user_json(),
            "message": self._bot_message_json(state, chat, message),
            "chat_instance": chat.instance,
            "data": callback_data,
        }
        self._add_update(state, "callback_query", query)
        return query_id

    def block_bot(self, user_id: int, *, bot: int | None = None) -> None:
        self._set_blocked(self._bot(bot), user_id, blocked=True)

    def unblock_bot(self, user_id: int, *, bot: int | None = None) -> None:
        self._set_blocked(self._bot(bot), user_id, blocked=False)

    def bot_messages(self, user_id: int, *, bot: int | None = None) -> list[BotMessage]:
        """What the bot sent to user `user_id`, oldest first."""
        chat = self._bot(bot).chats.get(user_id)
        return list(chat.bot_messages.values()) if chat is not None else []

    async def wait_for_bot_messages(
        self, user_id: int, count: int, *, within: float = 5.0, bot: int | None = None
    ) -> list[BotMessage]:
        """Wait until the bot has sent at least `count` messages to user `user_id`."""
        async with asyncio.timeout(within):
            while True:
                sent = self._bot_sent.event()
                if len(messages := self.bot_messages(user_id, bot=bot)) >= count:
                    return messages
                await sent.wait()

    def sent_messages(self, *, bot: int | None = None) -> list[BotMessage]:
        """Every message the bot sent, to any chat, in the order the emulator received them."""
        return list(self._bot(bot).sent)

    def callback_query(self, query_id: str, *, bot: int | None = None) -> CallbackQueryRecord:
        return self._bot(bot).callbacks[query_id]

    def _bot(self, bot_id: int | None) -> _Bot:
        if bot_id is None:
            return self._default_bot
        for state in self._bots.values():
            if state.id == bot_id:
                return state
        raise ValueError(f"no emulated bot with id {bot_id}")

    def _open_chat(self, bot: _Bot, user_id: int) -> _Chat:
        chat = bot.chats.get(user_id)
        if chat is None:
            profile = self._customers.get(user_id) or self.customer(
                user_id, first_name=f"Customer {user_id}"
            )
            chat = _Chat(profile, instance=str(self._rng.getrandbits(63)))
            bot.chats[user_id] = chat
        return chat

    def _writable_chat(self, bot: _Bot, user_id: int) -> _Chat:
        chat = self._open_chat(bot, user_id)
        if chat.blocked:
            raise ValueError(f"user {user_id} has blocked the bot; unblock it first")
        return chat

    def _write(self, bot: _Bot, chat: _Chat, content: JSON) -> JSON:
        message = {
            "message_id": chat.next_message_id(),
            "from": chat.customer.user_json(),
            "chat": chat.customer.chat_json(),
            "date": int(time.time()),
            **content,
        }
        chat.customer_messages[message["message_id"]] = message
        self._add_update(bot, "message", message)
        return copy.deepcopy(message)

    def _set_blocked(self, bot: _Bot, user_id: int, *, blocked: bool) -> None:
        chat = self._open_chat(bot, user_id)
        if chat.blocked == blocked:
            return
        chat.blocked = blocked
        # a private chat reports (un)blocking as a my_chat_member update (TGS Update)
        member = {"status": "member", "user": bot.user_json()}
        kicked = {"status": "kicked", "user": bot.user_json(), "until_date": 0}
        self._add_update(
            bot,
            "my_chat_member",
            {
                "chat": chat.customer.chat_json(),
                "from": chat.customer.user_json(),
                "date": int(time.time()),
                "old_chat_member": member if blocked else kicked,
                "new_chat_member": kicked if blocked else member,
            },
        )

    def _store_file(self, bot: _Bot, data: bytes, path: str, mime_type: str) -> _StoredFile:
        stored = _StoredFile(
            file_id=_opaque_id(self._rng, 24),
            file_unique_id=_opaque_id(self._rng, 9),
            file_path=path,
            data=data,
            mime_type=mime_type,
        )
        bot.files[stored.file_id] = stored
        return stored

    def _add_update(self, bot: _Bot, kind: str, payload: JSON) -> None:
        # allowed_updates filters updates as they are created, never the ones already queued
        if bot.allowed_updates and kind not in bot.allowed_updates:
            return
        bot.updates.append({"update_id": bot.next_update_id, kind: copy.deepcopy(payload)})
        bot.next_update_id += 1
        bot.end_poll(None)
        bot.updates_added.fire()

    # ---- Bot API methods ------------------------------------------------------------------------

    async def _get_me(self, bot: _Bot, _params: dict[str, Any]) -> JSON:
        return {
            **bot.user_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _get_updates(self, bot: _Bot, params: dict[str, Any]) -> list[JSON]:
        if bot.webhook is not None:
            raise ApiError(409, CONFLICT_WEBHOOK)
        # TBA clamps limit and timeout instead of rejecting them
        offset = _arg_int(params, "offset", 0)
        limit = _arg_int(params, "limit", 100, 1, 100)
        timeout = _arg_int(params, "timeout", 0, 0, MAX_LONG_POLL_TIMEOUT)
        self._set_allowed_updates(bot, params)
        bot.end_poll(CONFLICT_OTHER_POLL)
        bot.confirm(offset)
        if not bot.updates and timeout > 0:
            poll: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
            bot.poll = poll
            try:
                reason = await asyncio.wait_for(poll, timeout)
            except TimeoutError:
                reason = None
            if reason is not None:
                raise ApiError(409, reason)
        return list(itertools.islice(bot.updates, limit))

    async def _set_webhook(self, bot: _Bot, params: dict[str, Any]) -> _Answer:
        url = _arg_str(params, "url")
        if not url:
            return await self._delete_webhook(bot, params)
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ApiError(400, "Bad Request: invalid webhook URL specified")
        secret = _arg_str(params, "secret_token")
        if len(secret) > 256:
            raise ApiError(400, "Bad Request: secret token is too long")
        if not _SECRET_RE.fullmatch(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        max_connections = _arg_int(params, "max_connections", 40, 1, 100)
        drop_pending = _arg_bool(params, "drop_pending_updates")
        self._set_allowed_updates(bot, params)
        current = bot.webhook
        if (
            current is not None
            and (current.url, current.secret_token, current.max_connections)
            == (url, secret, max_connections)
            and not drop_pending
        ):
            return _Answer(True, "Webhook is already set")
        await self._stop_pusher(bot)
        if drop_pending:
            bot.updates.clear()
        bot.end_poll(CONFLICT_SET_WEBHOOK)
        hook = _Webhook(url, secret, max_connections)
        bot.webhook = hook
        bot.push_task = asyncio.create_task(self._push_updates(bot, hook))
        return _Answer(True, "Webhook was set")

    async def _delete_webhook(self, bot: _Bot, params: dict[str, Any]) -> _Answer:
        if _arg_bool(params, "drop_pending_updates"):
            bot.updates.clear()
        if bot.webhook is None:
            return _Answer(True, "Webhook is already deleted")
        await self._stop_pusher(bot)
        bot.webhook = None
        return _Answer(True, "Webhook was deleted")

    async def _get_webhook_info(self, bot: _Bot, _params: dict[str, Any]) -> JSON:
        hook = bot.webhook
        info: JSON = {
            "url": hook.url if hook is not None else "",
            "has_custom_certificate": False,
            "pending_update_count": len(bot.updates),
        }
        if hook is not None:
            info["max_connections"] = hook.max_connections
            if hook.last_error_date is not None:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
        if bot.allowed_updates:
            info["allowed_updates"] = bot.allowed_updates
        return info

    async def _send_message(self, bot: _Bot, params: dict[str, Any]) -> JSON:
        # TBA checks the text, then the markup, then the chat; the server then refuses a blocked one
        text = _message_text(params)
        markup = _reply_markup(params)
        entities = _arg_json(params, "entities", "Bad Request: can't parse entities JSON object")
        chat = bot.chats.get(_chat_id(params))
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        now = time.time()
        message = BotMessage(
            message_id=chat.next_message_id(),
            chat_id=chat.customer.id,
            text=text,
            reply_markup=markup,
            date=int(now),
            received_at=now,
            entities=entities if isinstance(entities, list) else None,
        )
        chat.bot_messages[message.message_id] = message
        bot.sent.append(message)
        self._bot_sent.fire()
        return self._bot_message_json(bot, chat, message)

    async def _edit_message_text(self, bot: _Bot, params: dict[str, Any]) -> JSON:
        text = _message_text(params)
        markup = _inline_only(_reply_markup(params))
        if _arg_str(params, "inline_message_id"):
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")  # no inline messages here
        chat = bot.chats.get(_chat_id(params))
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        message_id = _arg_int(params, "message_id", 0)
        if message_id <= 0:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = chat.bot_messages.get(message_id)
        if message is None:
            if message_id in chat.customer_messages:
                raise ApiError(400, "Bad Request: message can't be edited")
            raise ApiError(400, "Bad Request: message to edit not found")
        # an edit without reply_markup removes the inline keyboard, so it counts as a change
        if text == message.current_text and markup == _inline_only(message.current_reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        message.edits.append(MessageEdit(text, markup, time.time()))
        self._bot_sent.fire()
        return self._bot_message_json(bot, chat, message)

    async def _answer_callback_query(self, bot: _Bot, params: dict[str, Any]) -> bool:
        record = bot.callbacks.get(_arg_str(params, "callback_query_id"))
        if record is None or record.answer is not None:
            raise ApiError(400, QUERY_INVALID)
        record.answer = {
            "text": _arg_str(params, "text") or None,
            "show_alert": _arg_bool(params, "show_alert"),
            "url": _arg_str(params, "url") or None,
            "received_at": time.time(),
        }
        return True

    async def _get_file(self, bot: _Bot, params: dict[str, Any]) -> JSON:
        stored = bot.files.get(_arg_str(params, "file_id"))
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if len(stored.data) > MAX_DOWNLOAD_SIZE:
            raise ApiError(400, "Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    def _set_allowed_updates(self, bot: _Bot, params: dict[str, Any]) -> None:
        # omitted = keep the previous setting; [] = the default set (TGS getUpdates)
        allowed = _arg_json(params, "allowed_updates", "Bad Request: can't parse allowed_updates")
        if isinstance(allowed, list):
            bot.allowed_updates = [str(kind) for kind in allowed]

    def _bot_message_json(self, bot: _Bot, chat: _Chat, message: BotMessage) -> JSON:
        body: JSON = {
            "message_id": message.message_id,
            "from": bot.user_json(),
            "chat": chat.customer.chat_json(),
            "date": message.date,
            "text": message.current_text,
        }
        if message.edits:
            body["edit_date"] = int(message.edits[-1].received_at)
        if message.entities is not None and not message.edits:
            body["entities"] = message.entities
        if (markup := _inline_only(message.current_reply_markup)) is not None:
            body["reply_markup"] = markup
        return body

    # ---- webhook pushes -------------------------------------------------------------------------

    async def _push_updates(self, bot: _Bot, hook: _Webhook) -> None:
        """Deliver queued updates one by one; retry a failed one with doubling back-off."""
        delay = self._webhook_retry_delay
        while True:
            woken = bot.updates_added.event()
            if not bot.updates:
                await woken.wait()
                continue
            update = bot.updates[0]
            error, retry_after = await self._post_update(bot, hook, update)
            if error is None:
                bot.confirm(update["update_id"] + 1)
                delay = self._webhook_retry_delay
                continue
            hook.last_error_date = int(time.time())
            hook.last_error_message = error
            await asyncio.sleep(retry_after if retry_after is not None else delay)
            delay = min(delay * 2, self._webhook_retry_cap)

    async def _post_update(
        self, bot: _Bot, hook: _Webhook, update: JSON
    ) -> tuple[str | None, int | None]:
        """POST one update: (None, None) on 2xx, else (the error, the receiver's Retry-After)."""
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers[SECRET_HEADER] = hook.secret_token
        try:
            async with self._session.post(
                hook.url,
                data=json.dumps(update),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._webhook_timeout),
            ) as response:
                if 200 <= response.status < 300:
                    await self._run_reply_method(bot, response)
                    return None, None
                error = f"Wrong response from the webhook: {response.status} {response.reason}"
                retry_after = _int_or_none(response.headers.get("Retry-After"))
                if retry_after is not None:
                    retry_after = min(max(retry_after, 1), MAX_WEBHOOK_RETRY_AFTER)
                return error, retry_after
        except TimeoutError:
            return "Read timeout expired", None
        except aiohttp.ClientConnectorError:
            return "Connection refused", None
        except aiohttp.ClientError as exc:
            return f"Failed to deliver the update: {exc.__class__.__name__}", None

    async def _run_reply_method(self, bot: _Bot, response: aiohttp.ClientResponse) -> None:
        """Execute a method call a webhook answered with (JSON, or multipart as aiogram sends)."""
        try:
            params = await _reply_params(response)
        except (ValueError, aiohttp.ClientError) as exc:
            log.info("unreadable webhook reply ignored: %r", exc)  # the update was delivered
            return
        method = str(params.pop("method", "")).lower()
        handler = self._methods.get(method)
        if handler is None or method.startswith("get") or method in _FORBIDDEN_REPLY_METHODS:
            return
        try:
            await handler(bot, params)
        except ApiError as exc:
            log.info("webhook reply %s failed: %s", method, exc.description)

    async def _stop_pusher(self, bot: _Bot) -> None:
        task, bot.push_task = bot.push_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---- HTTP -----------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        app = web.Application()
        app.add_routes(
            [
                web.get("/bot{token}/{method}", self._handle_method),
                web.post("/bot{token}/{method}", self._handle_method),
                web.get("/file/bot{token}/{file_path:.+}", self._handle_file),
                *self._customer_routes("/_emulator"),
                *fault_routes(self.faults, "/_emulator/faults"),
            ]
        )
        app.on_shutdown.append(self._on_shutdown)
        return app

    async def _on_shutdown(self, _app: web.Application) -> None:
        # answer hanging long polls now, so the server does not wait out their timeouts
        for bot in self._bots.values():
            bot.end_poll(None)
            await self._stop_pusher(bot)
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        fault: Fault | None = None
        try:
            bot = self._authorise(request.match_info["token"])
            method = request.match_info["method"].lower()
            handler = self._methods.get(method)
            if handler is None:
                raise ApiError(404, "Not Found: method not found")
            fault = self.faults.next_fault(method)
            if fault is not None and (early := await _inject(fault, request)) is not None:
                return early
            response = _ok_response(await handler(bot, await _read_params(request)))
        except ApiError as exc:
            response = exc.response()
        if fault is not None and fault.kind is FaultKind.DROP:
            return drop_connection(request)  # the call took effect, only its answer is lost
        return response

    def _authorise(self, token: str) -> _Bot:
        if not _TOKEN_RE.fullmatch(token) or len(token) > 80:
            raise ApiError(401, "Unauthorized: invalid token specified")
        bot = self._bots.get(token)
        if bot is None:
            raise ApiError(401, "Unauthorized")
        return bot

    async def _handle_file(self, request: web.Request) -> web.Response:
        bot = self._bots.get(request.match_info["token"])
        path = request.match_info["file_path"]
        stored = next((f for f in bot.files.values() if f.file_path == path), None) if bot else None
        if stored is None:
            return ApiError(404, "Not Found").response()
        return web.Response(body=stored.data, content_type=stored.mime_type)

    def _customer_routes(self, prefix: str) -> list[web.RouteDef]:
        user = f"{prefix}/users/{{user_id:[0-9]+}}"
        return [
            self._customer_route("POST", f"{user}/messages", self._http_write_text),
            self._customer_route("POST", f"{user}/photos", self._http_write_photo),
            self._customer_route("POST", f"{user}/documents", self._http_write_document),
            self._customer_route(
                "POST", f"{user}/messages/{{message_id:[0-9]+}}/edit", self._http_edit_message
            ),
            self._customer_route("POST", f"{user}/button-presses", self._http_press_button),
            self._customer_route("POST", f"{user}/block", self._http_block),
            self._customer_route("POST", f"{user}/unblock", self._http_unblock),
            self._customer_route("GET", f"{user}/bot-messages", self._http_bot_messages),
            self._customer_route("GET", f"{prefix}/bot-messages", self._http_sent_messages),
            self._customer_route(
                "GET", f"{prefix}/callback-queries/{{query_id}}", self._http_callback_query
            ),
        ]

    def _customer_route(
        self, method: str, path: str, action: Callable[[_Body, int | None], Any]
    ) -> web.RouteDef:
        """A customer endpoint: JSON or multipart in, `{"ok", "result"}` out, errors as 400."""

        async def handle(request: web.Request) -> web.Response:
            try:
                body = await _Body.read(request)
                bot = _bot_param(request)
                if (first_name := body.optional("first_name")) and body.user_id is not None:
                    self.customer(
                        body.user_id,
                        first_name=first_name,
                        last_name=body.optional("last_name"),
                        username=body.optional("username"),
                        language_code=body.optional("language_code"),
                    )
                result = action(body, bot)
            except ValueError as exc:
                return web.json_response({"ok": False, "description": str(exc)}, status=400)
            except KeyError as exc:
                return web.json_response({"ok": False, "description": f"unknown {exc}"}, status=404)
            return web.json_response({"ok": True, "result": result})

        return web.route(method, path, handle)

    def _http_write_text(self, body: _Body, bot: int | None) -> JSON:
        return self.write_text(body.user(), body.text("text"), bot=bot)

    def _http_write_photo(self, body: _Body, bot: int | None) -> JSON:
        return self.write_photo(
            body.user(),
            body.file(),
            caption=body.optional("caption"),
            width=int(body.optional("width") or 1280),
            height=int(body.optional("height") or 960),
            bot=bot,
        )

    def _http_write_document(self, body: _Body, bot: int | None) -> JSON:
        return self.write_document(
            body.user(),
            body.file(),
            file_name=body.optional("file_name") or body.file_name or "document.bin",
            mime_type=body.optional("mime_type") or body.file_type or "application/octet-stream",
            caption=body.optional("caption"),
            bot=bot,
        )

    def _http_edit_message(self, body: _Body, bot: int | None) -> JSON:
        message_id = int(body.text("message_id"))
        return self.edit_message(body.user(), message_id, body.text("text"), bot=bot)

    def _http_press_button(self, body: _Body, bot: int | None) -> JSON:
        message_id = int(body.text("message_id"))
        query_id = self.press_button(body.user(), message_id, body.text("callback_data"), bot=bot)
        return {"callback_query_id": query_id}

    def _http_block(self, body: _Body, bot: int | None) -> bool:
        self.block_bot(body.user(), bot=bot)
        return True

    def _http_unblock(self, body: _Body, bot: int | None) -> bool:
        self.unblock_bot(body.user(), bot=bot)
        return True

    def _http_bot_messages(self, body: _Body, bot: int | None) -> list[JSON]:
        return [message.as_dict() for message in self.bot_messages(body.user(), bot=bot)]

    def _http_sent_messages(self, _body: _Body, bot: int | None) -> list[JSON]:
        return [message.as_dict() for message in self.sent_messages(bot=bot)]

    def _http_callback_query(self, body: _Body, bot: int | None) -> JSON:
        return self.callback_query(body.text("query_id"), bot=bot).as_dict()


@dataclass(slots=True)
class _Body:
    """A customer call: path parameters and a JSON body (a file as `data_base64`) or a multipart
    form (a file as `file`)."""

    fields: dict[str, Any]
    data: bytes | None = None
    file_name: str | None = None
    file_type: str | None = None

    @classmethod
    async def read(cls, request: web.Request) -> _Body:
        body = cls({})
        if request.content_type.startswith("multipart/"):
            for name, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    body.data = value.file.read()
                    body.file_name, body.file_type = value.filename, value.content_type
                else:
                    body.fields[name] = value
        elif request.body_exists:
            fields = await request.json()
            if not isinstance(fields, dict):
                raise ValueError("the body must be a JSON object")
            body.fields = fields
            if encoded := fields.get("data_base64"):
                body.data = base64.b64decode(encoded, validate=True)
        body.fields.update(request.match_info)  # the path names the user, message or query
        return body

    @property
    def user_id(self) -> int | None:
        raw = self.optional("user_id")
        return int(raw) if raw is not None else None

    def user(self) -> int:
        return int(self.text("user_id"))

    def text(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ValueError(f"{name} is required")
        return value

    def optional(self, name: str) -> str | None:
        value = self.fields.get(name)
        return None if value is None else str(value)

    def file(self) -> bytes:
        if self.data is None:
            raise ValueError("a file is required (multipart field 'file' or JSON 'data_base64')")
        return self.data


def _ok_response(result: Any) -> web.Response:
    if isinstance(result, _Answer):
        return web.json_response(
            {"ok": True, "result": result.result, "description": result.description}
        )
    return web.json_response({"ok": True, "result": result})


def _bot_param(request: web.Request) -> int | None:
    raw = request.query.get("bot")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError("bot must be a bot id (the digits of its token)") from None


async def _inject(fault: Fault, request: web.Request) -> web.StreamResponse | None:
    """Render a fault the Telegram way; None when the call should then go on normally."""
    if fault.kind is FaultKind.RATE_LIMIT:
        raise ApiError(
            429,
            f"Too Many Requests: retry after {fault.retry_after}",
            retry_after=fault.retry_after,
        )
    if fault.kind is FaultKind.SERVER_ERROR:
        try:
            phrase = HTTPStatus(fault.status).phrase
        except ValueError:
            phrase = "Server Error"
        raise ApiError(fault.status, phrase)
    if fault.kind is FaultKind.SLOW:
        await asyncio.sleep(fault.delay)
        return None
    return None if fault.after_processing else drop_connection(request)


async def _reply_params(response: aiohttp.ClientResponse) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if response.content_type == "application/json":
        body = await response.json()
        params = body if isinstance(body, dict) else {}
    elif response.content_type.startswith("multipart/"):
        reader = aiohttp.MultipartReader(response.headers, response.content)
        while (part := await reader.next()) is not None:
            if isinstance(part, aiohttp.BodyPartReader) and part.name:
                params[part.name] = await part.text()
    return params


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Parameters from the query string and a urlencoded, multipart or JSON body, as TBA takes."""
    params: dict[str, Any] = dict(request.query)
    if request.method != "POST" or not request.body_exists:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON encoded request") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON request must be an Object")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        params.update((await request.post()).items())
    return params


def _arg_str(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)  # an object given natively in a JSON body


def _arg_int(
    params: dict[str, Any], name: str, default: int, low: int | None = None, high: int | None = None
) -> int:
    raw = _arg_str(params, name).strip()
    if not raw:
        value = default
    else:
        # like TBA's to_integer: the leading number, 0 for garbage
        match = re.match(r"[+-]?[0-9]+", raw)
        value = int(match.group()) if match else 0
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value


def _arg_bool(params: dict[str, Any], name: str) -> bool:
    return _arg_str(params, name).strip().lower() in ("true", "yes", "1")


def _arg_json(params: dict[str, Any], name: str, error: str) -> Any:
    """A JSON-serialised parameter (aiogram and PTB send objects as JSON strings in forms)."""
    value = params.get(name)
    if not isinstance(value, str):
        return value
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise ApiError(400, error) from None


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


def _chat_id(params: dict[str, Any]) -> int:
    raw = _arg_str(params, "chat_id").strip()
    if not raw:
        raise ApiError(400, "Bad Request: chat_id is empty")
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "Bad Request: chat not found") from None  # no public @chats here


def _message_text(params: dict[str, Any]) -> str:
    text = _visible_text(_arg_str(params, "text"), _arg_str(params, "parse_mode"))
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    # counted in code points; whether the server counts UTF-16 units is unconfirmed
    if len(text) > MAX_TEXT_LENGTH:
        raise ApiError(400, "Bad Request: message is too long")
    return text


def _visible_text(text: str, parse_mode: str) -> str:
    """The text left after entity parsing, which the 1-4096 limit applies to."""
    mode = parse_mode.lower()
    if not mode:
        return text
    if mode == "html":
        return html.unescape(_HTML_TAG_RE.sub("", text))
    if mode not in ("markdown", "markdownv2"):
        raise ApiError(400, "Bad Request: unsupported parse_mode")
    text = _MARKDOWN_LINK_RE.sub(r"\1", text)
    markup_chars = "*_`~|" if mode == "markdownv2" else "*_`["
    visible: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            visible.append(char)
            escaped = False
        elif char == "\\" and mode == "markdownv2":
            escaped = True
        elif char not in markup_chars:
            visible.append(char)
    return "".join(visible)


def _reply_markup(params: dict[str, Any]) -> JSON | None:
    markup = _arg_json(
        params, "reply_markup", "Bad Request: can't parse reply keyboard markup JSON"
    )
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: object expected as reply markup")
    if "inline_keyboard" in markup:
        _check_inline_keyboard(markup["inline_keyboard"])
    return markup


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError(
            400, 'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array'
        )
    for button in itertools.chain.from_iterable(rows):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise ApiError(400, "Bad Request: InlineKeyboardButton must have a text")
        if len(button) == 1:
            raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
        data = button.get("callback_data")
        if data is not None and not (
            isinstance(data, str) and 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
        ):
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")


def _inline_only(markup: JSON | None) -> JSON | None:
    """A Message carries only an inline keyboard; other reply markups live in the client."""
    return markup if markup is not None and "inline_keyboard" in markup else None


def _with_caption(content: JSON, caption: str | None) -> JSON:
    return {**content, "caption": caption} if caption else content


def _opaque_id(rng: random.Random, size: int) -> str:
    return base64.urlsafe_b64encode(rng.randbytes(size)).decode().rstrip("=")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the Telegram Bot API emulator.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument(
        "--token",
        action="append",
        help=f"a bot token to serve (repeatable; default {DEFAULT_TOKEN})",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for ids and fault sampling")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    emulator = TelegramEmulator(args.token or [DEFAULT_TOKEN], seed=args.seed)
    web.run_app(emulator.app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
