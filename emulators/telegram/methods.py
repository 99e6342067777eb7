"""The Bot API methods the product calls, run on the emulated bots' state: getMe, getUpdates,
setWebhook, deleteWebhook, getWebhookInfo, sendMessage (also into a channel's discussion group:
emulators.telegram.channels), sendPhoto, sendDocument (the files:
emulators.telegram.media; each also on behalf of a business account, with
`business_connection_id`), getBusinessConnection, editMessageText, answerCallbackQuery and
getFile. The texts of their errors follow tdlib/telegram-bot-api (TBA) where the real server's
wording is not published."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from yarl import URL

from emulators.signals import Signal
from emulators.telegram.answers import Answer, ApiError
from emulators.telegram.channels import send_to_group
from emulators.telegram.media import (
    caption_of,
    document_of,
    keep,
    photo_sides,
    photo_sizes,
    upload_of,
)
from emulators.telegram.params import (
    Params,
    arg_bool,
    arg_int,
    arg_json,
    arg_str,
    chat_id,
    message_text,
    reply_markup,
)
from emulators.telegram.state import (
    JSON,
    Bot,
    BotMessage,
    BusinessConnection,
    Chat,
    MessageEdit,
    Webhook,
    inline_only,
)
from emulators.telegram.webhooks import WebhookPushes

log = logging.getLogger(__name__)

MAX_LONG_POLL_TIMEOUT = 50  # TBA Client.h LONG_POLL_MAX_TIMEOUT
MAX_DOWNLOAD_SIZE = 20 * 1024 * 1024

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
CONNECTION_NOT_FOUND = "Bad Request: business connection not found"
# MTProto's refusal of a peer the connection may not write to, as the Bot API passes it on
BUSINESS_PEER_INVALID = "Bad Request: BUSINESS_PEER_INVALID"
BUSINESS_REPLY_WINDOW_S = 24 * 3600  # TG #businessbotrights can_reply
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)

_SECRET_RE = re.compile(r"[A-Za-z0-9_-]*")
# the webhook reply may carry a method call, except these (core.telegram.org "Making requests")
_FORBIDDEN_REPLY_METHODS = frozenset({"setwebhook", "deletewebhook", "close", "logout"})

Method = Callable[[Bot, Params], Awaitable[Any]]


class BotApi:
    """The methods by their lower-cased names (the server lower-cases what it is called with);
    `bot_sent` fires whenever a bot sends or edits a message."""

    def __init__(
        self,
        bot_sent: Signal,
        *,
        webhook_retry_delay: float,
        webhook_retry_cap: float,
        webhook_timeout: float,
    ) -> None:
        self._bot_sent = bot_sent
        self.webhooks = WebhookPushes(
            self._run_reply,
            retry_delay=webhook_retry_delay,
            retry_cap=webhook_retry_cap,
            timeout=webhook_timeout,
        )
        self._methods: dict[str, Method] = {
            "getme": self._get_me,
            "getupdates": self._get_updates,
            "setwebhook": self._set_webhook,
            "deletewebhook": self._delete_webhook,
            "getwebhookinfo": self._get_webhook_info,
            "sendmessage": self._send_message,
            "sendphoto": self._send_photo,
            "senddocument": self._send_document,
            "answercallbackquery": self._answer_callback_query,
            "editmessagetext": self._edit_message_text,
            "getfile": self._get_file,
            "getbusinessconnection": self._get_business_connection,
        }

    def method(self, name: str) -> Method:
        """The method called `name` (lower-cased); a 404 as the server answers an unknown one."""
        method = self._methods.get(name)
        if method is None:
            raise ApiError(404, "Not Found: method not found")
        return method

    async def _run_reply(self, bot: Bot, params: Params) -> None:
        """Run the method call a webhook answered an update with, as the server does: not a
        getter, and not one that changes the webhook."""
        name = str(params.pop("method", "")).lower()
        method = self._methods.get(name)
        if method is None or name.startswith("get") or name in _FORBIDDEN_REPLY_METHODS:
            return
        try:
            await method(bot, params)
        except ApiError as exc:
            log.info("webhook reply %s failed: %s", name, exc.description)

    async def _get_me(self, bot: Bot, _params: Params) -> JSON:
        return {
            **bot.user_json(),
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": True,
            "has_main_web_app": False,
        }

    async def _get_updates(self, bot: Bot, params: Params) -> list[JSON]:
        if bot.webhook is not None:
            raise ApiError(409, CONFLICT_WEBHOOK)
        # TBA clamps limit and timeout instead of rejecting them
        offset = arg_int(params, "offset", 0)
        limit = arg_int(params, "limit", 100, 1, 100)
        timeout = arg_int(params, "timeout", 0, 0, MAX_LONG_POLL_TIMEOUT)
        _set_allowed_updates(bot, params)
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

    async def _set_webhook(self, bot: Bot, params: Params) -> Answer:
        url = arg_str(params, "url")
        if not url:
            return await self._delete_webhook(bot, params)
        parsed = URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise ApiError(400, "Bad Request: invalid webhook URL specified")
        secret = arg_str(params, "secret_token")
        if len(secret) > 256:
            raise ApiError(400, "Bad Request: secret token is too long")
        if not _SECRET_RE.fullmatch(secret):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        max_connections = arg_int(params, "max_connections", 40, 1, 100)
        drop_pending = arg_bool(params, "drop_pending_updates")
        _set_allowed_updates(bot, params)
        current = bot.webhook
        if (
            current is not None
            and (current.url, current.secret_token, current.max_connections)
            == (url, secret, max_connections)
            and not drop_pending
        ):
            return Answer(True, "Webhook is already set")
        await self.webhooks.stop(bot)
        if drop_pending:
            bot.updates.clear()
        bot.end_poll(CONFLICT_SET_WEBHOOK)
        hook = Webhook(url, secret, max_connections)
        bot.webhook = hook
        self.webhooks.start(bot, hook)
        return Answer(True, "Webhook was set")

    async def _delete_webhook(self, bot: Bot, params: Params) -> Answer:
        if arg_bool(params, "drop_pending_updates"):
            bot.updates.clear()
        if bot.webhook is None:
            return Answer(True, "Webhook is already deleted")
        await self.webhooks.stop(bot)
        bot.webhook = None
        return Answer(True, "Webhook was deleted")

    async def _get_webhook_info(self, bot: Bot, _params: Params) -> JSON:
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

    async def _send_message(self, bot: Bot, params: Params) -> JSON:
        # TBA checks the text, then the markup, then the chat; the server then refuses a blocked one
        text = message_text(params)
        markup = reply_markup(params)
        entities = arg_json(params, "entities", "Bad Request: can't parse entities JSON object")
        if (group := bot.groups.get(chat_id(params))) is not None:
            sent = send_to_group(bot, group, text, params)
            self._bot_sent.fire()
            return sent
        chat = self._writable_chat(bot, params)
        return self._sent(bot, chat, text, markup, entities=entities)

    async def _send_photo(self, bot: Bot, params: Params) -> JSON:
        upload = upload_of(params, "photo")
        caption, markup = caption_of(params), reply_markup(params)
        chat = self._writable_chat(bot, params)
        width, height = photo_sides(upload)
        stored = keep(bot, upload, "photos", "image/jpeg")
        return self._sent(
            bot, chat, caption, markup, media=("photo", photo_sizes(stored, width, height))
        )

    async def _send_document(self, bot: Bot, params: Params) -> JSON:
        upload = upload_of(params, "document")
        caption, markup = caption_of(params), reply_markup(params)
        chat = self._writable_chat(bot, params)
        stored = keep(bot, upload, "documents", upload.mime_type)
        return self._sent(
            bot, chat, caption, markup, media=("document", document_of(stored, upload))
        )

    @staticmethod
    def _writable_chat(bot: Bot, params: Params) -> Chat:
        if connection_id := arg_str(params, "business_connection_id"):
            return _business_chat(bot, connection_id, chat_id(params))
        chat = bot.chats.get(chat_id(params))
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    async def _get_business_connection(self, bot: Bot, params: Params) -> JSON:
        connection = bot.connections.get(arg_str(params, "business_connection_id"))
        if connection is None:
            raise ApiError(400, CONNECTION_NOT_FOUND)
        return connection.as_json()

    def _sent(
        self,
        bot: Bot,
        chat: Chat,
        text: str,
        markup: JSON | None,
        *,
        entities: Any = None,
        media: tuple[str, Any] | None = None,
    ) -> JSON:
        """A message the bot sent, as the customer now sees it."""
        now = time.time()
        message = BotMessage(
            message_id=chat.next_message_id(),
            chat_id=chat.customer.id,
            text=text,
            reply_markup=markup,
            date=int(now),
            received_at=now,
            entities=entities if isinstance(entities, list) else None,
            media=media,
        )
        chat.bot_messages[message.message_id] = message
        bot.sent.append(message)
        self._bot_sent.fire()
        sent = bot.message_json(chat, message)
        if chat.business is not None:
            # the account's outgoing messages reach the bot too (unconfirmed: docs/networks.md 1.7)
            bot.add_update("business_message", sent)
        return sent

    async def _edit_message_text(self, bot: Bot, params: Params) -> JSON:
        text = message_text(params)
        markup = inline_only(reply_markup(params))
        if arg_str(params, "inline_message_id"):
            raise ApiError(400, "Bad Request: MESSAGE_ID_INVALID")  # no inline messages here
        chat = bot.chats.get(chat_id(params))
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        message_id = arg_int(params, "message_id", 0)
        if message_id <= 0:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        message = chat.bot_messages.get(message_id)
        if message is None:
            if message_id in chat.customer_messages:
                raise ApiError(400, "Bad Request: message can't be edited")
            raise ApiError(400, "Bad Request: message to edit not found")
        if message.media is not None:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        # an edit without reply_markup removes the inline keyboard, so it counts as a change
        if text == message.current_text and markup == inline_only(message.current_reply_markup):
            raise ApiError(400, NOT_MODIFIED)
        message.edits.append(MessageEdit(text, markup, time.time()))
        self._bot_sent.fire()
        return bot.message_json(chat, message)

    async def _answer_callback_query(self, bot: Bot, params: Params) -> bool:
        record = bot.callbacks.get(arg_str(params, "callback_query_id"))
        if record is None or record.answer is not None:
            raise ApiError(400, QUERY_INVALID)
        record.answer = {
            "text": arg_str(params, "text") or None,
            "show_alert": arg_bool(params, "show_alert"),
            "url": arg_str(params, "url") or None,
            "received_at": time.time(),
        }
        return True

    async def _get_file(self, bot: Bot, params: Params) -> JSON:
        stored = bot.files.get(arg_str(params, "file_id"))
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


def _business_chat(bot: Bot, connection_id: str, customer_id: int) -> Chat:
    """The business chat a bot may write to on the account's behalf, or the server's refusal."""
    connection: BusinessConnection | None = bot.connections.get(connection_id)
    if connection is None or not connection.is_enabled:
        raise ApiError(400, CONNECTION_NOT_FOUND)
    chat = bot.business_chats.get((connection_id, customer_id))
    if chat is None:
        raise ApiError(400, "Bad Request: chat not found")
    recent = (
        chat.last_incoming_at is not None
        and time.time() - chat.last_incoming_at <= BUSINESS_REPLY_WINDOW_S
    )
    if not (connection.can_reply and recent):
        raise ApiError(400, BUSINESS_PEER_INVALID)
    return chat


def _set_allowed_updates(bot: Bot, params: Params) -> None:
    # omitted = keep the previous setting; [] = the default set (TGS getUpdates)
    allowed = arg_json(params, "allowed_updates", "Bad Request: can't parse allowed_updates")
    if isinstance(allowed, list):
        bot.allowed_updates = [str(kind) for kind in allowed]
