"""The emulated bots' state: each bot's private chats with the customers, the messages both
sides wrote, the queue of updates the bot has not confirmed, its files and its webhook; and the
Telegram Business accounts connected to it, with their own private chats."""

from __future__ import annotations

import asyncio
import copy
import random
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emulators.signals import Signal

if TYPE_CHECKING:
    from emulators.telegram.channels import DiscussionGroup

JSON = dict[str, Any]

# TBA ClientManager: no leading zero, a ':', at most 80 characters; aiogram wants digits first
_TOKEN_RE = re.compile(r"[1-9][0-9]{0,15}:[^/\s]+")


def is_token(token: str) -> bool:
    return bool(_TOKEN_RE.fullmatch(token)) and len(token) <= 80


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
    """One message the bot sent, as the customer sees it, with the emulator's receive times. A
    photo or a document is in `media` (the Message's `photo` sizes or `document`), its caption
    in `text`."""

    message_id: int
    chat_id: int
    text: str
    reply_markup: JSON | None
    date: int
    received_at: float
    entities: list[Any] | None = None
    edits: list[MessageEdit] = field(default_factory=list)
    media: tuple[str, Any] | None = None  # ("photo", [PhotoSize]) or ("document", Document)

    @property
    def file_id(self) -> str | None:
        """The file_id of the photo's largest size or of the document, if it carries one."""
        if self.media is None:
            return None
        kind, body = self.media
        return str((body[-1] if kind == "photo" else body)["file_id"])

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
            "photo": self.media[1] if self.media and self.media[0] == "photo" else None,
            "document": self.media[1] if self.media and self.media[0] == "document" else None,
            "file_id": self.file_id,
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
class StoredFile:
    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    mime_type: str


@dataclass(slots=True)
class BusinessConnection:
    """A Telegram Business account connected to the bot (TG #businessconnection): its owner,
    whether the connection is on, and the bot's rights (TG #businessbotrights)."""

    id: str
    owner: Customer
    date: int
    is_enabled: bool = True
    can_reply: bool = True

    def as_json(self) -> JSON:
        return {
            "id": self.id,
            "user": self.owner.user_json(),
            "user_chat_id": self.owner.id,
            "date": self.date,
            "is_enabled": self.is_enabled,
            # the other rights are not emulated: a support bot only reads and replies
            "rights": {"can_reply": True, "can_read_messages": True} if self.can_reply else {},
        }


@dataclass(slots=True)
class Chat:
    customer: Customer
    instance: str
    blocked: bool = False
    last_message_id: int = 0
    customer_messages: dict[int, JSON] = field(default_factory=dict)
    bot_messages: dict[int, BotMessage] = field(default_factory=dict)
    # a private chat of a connected business account, not the bot's own
    business: BusinessConnection | None = None
    last_incoming_at: float | None = None  # the customer's last message (the 24-hour rule)

    def next_message_id(self) -> int:
        # customer's and bot's messages share one sequence per private chat
        self.last_message_id += 1
        return self.last_message_id


@dataclass(slots=True)
class Webhook:
    url: str
    secret_token: str
    max_connections: int
    last_error_date: int | None = None
    last_error_message: str | None = None


@dataclass(slots=True)
class Bot:
    token: str
    id: int
    first_name: str
    username: str
    next_update_id: int
    chats: dict[int, Chat] = field(default_factory=dict)
    updates: deque[JSON] = field(default_factory=deque)
    allowed_updates: list[str] | None = None
    webhook: Webhook | None = None
    poll: asyncio.Future[str | None] | None = None
    updates_added: Signal = field(default_factory=Signal)
    callbacks: dict[str, CallbackQueryRecord] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    sent: list[BotMessage] = field(default_factory=list)
    connections: dict[str, BusinessConnection] = field(default_factory=dict)
    business_chats: dict[tuple[str, int], Chat] = field(default_factory=dict)
    # channels' discussion groups the bot is a member of, by the group's chat id
    groups: dict[int, DiscussionGroup] = field(default_factory=dict)

    def user_json(self) -> JSON:
        return {
            "id": self.id,
            "is_bot": True,
            "first_name": self.first_name,
            "username": self.username,
        }

    def add_update(self, kind: str, payload: JSON) -> None:
        # allowed_updates filters updates as they are created, never the ones already queued
        if self.allowed_updates and kind not in self.allowed_updates:
            return
        self.updates.append({"update_id": self.next_update_id, kind: copy.deepcopy(payload)})
        self.next_update_id += 1
        self.end_poll(None)
        self.updates_added.fire()

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

    def message_json(self, chat: Chat, message: BotMessage) -> JSON:
        """The Message object of one of this bot's messages, as it stands after its edits; in
        a business chat, the account's message that the bot sent on its behalf."""
        body: JSON = {
            "message_id": message.message_id,
            "from": self.user_json(),
            "chat": chat.customer.chat_json(),
            "date": message.date,
        }
        if chat.business is not None:
            body["from"] = chat.business.owner.user_json()
            body["business_connection_id"] = chat.business.id
            body["sender_business_bot"] = self.user_json()
        if message.media is None:
            body["text"] = message.current_text
        else:
            body[message.media[0]] = message.media[1]
            if message.text:
                body["caption"] = message.text
        if message.edits:
            body["edit_date"] = int(message.edits[-1].received_at)
        if message.entities is not None and not message.edits:
            body["entities"] = message.entities
        if (markup := inline_only(message.current_reply_markup)) is not None:
            body["reply_markup"] = markup
        return body


def new_bots(tokens: Iterable[str], rng: random.Random) -> dict[str, Bot]:
    """The bots of `tokens`, by token; ValueError for a token the real server would refuse."""
    bots: dict[str, Bot] = {}
    for token in tokens:
        if not is_token(token):
            raise ValueError(f"not a bot token (<digits>:<secret>): {token!r}")
        bot_id = int(token.split(":", 1)[0])
        bots[token] = Bot(
            token=token,
            id=bot_id,
            first_name="SupportBridge Emulated Bot",
            username=f"emulated_{bot_id}_bot",
            # real update ids start anywhere; a large start catches code assuming small ones
            next_update_id=rng.randint(10**8, 9 * 10**8),
        )
    if not bots:
        raise ValueError("the emulator needs at least one bot token")
    return bots


def inline_only(markup: JSON | None) -> JSON | None:
    """A Message carries only an inline keyboard; other reply markups live in the client."""
    return markup if markup is not None and "inline_keyboard" in markup else None
