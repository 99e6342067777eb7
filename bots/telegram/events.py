"""Telegram updates -> domain inbound messages. A support conversation is a private chat (the
bot's own, or one of a Telegram Business account the bot is connected to, docs/networks.md 1.7),
or the public thread of comments under one of the brand's channel posts, as they arrive in the
channel's discussion group (docs/networks.md 1.8)."""

from __future__ import annotations

import logging
from typing import Literal

from aiogram.types import (
    BusinessMessagesDeleted,
    CallbackQuery,
    Message,
    MessageOriginChannel,
    Update,
    User,
)
from aiogram.types.update import UpdateTypeLookupError
from pydantic import ValidationError

from bridge.domain import (
    MAX_TEXT_CHARS,
    Attachment,
    InboundMessage,
    Network,
    PublicPlace,
    Unreadable,
)

log = logging.getLogger(__name__)

BUSINESS_PREFIX = "biz:"
POST_PREFIX = "post:"


def to_inbound(update: Update) -> list[InboundMessage | Unreadable]:
    """The domain messages an update carries: none for updates a support inbox ignores, several
    for a deletion of several business messages. An update whose fields do not fit a domain
    message (button data past its 256 characters...) is Unreadable, for dead_letters: an error
    would only bring it back again."""
    try:
        found = _messages(update)
    except ValidationError as exc:
        log.error("telegram update %d is malformed (%s); dead-lettered", update.update_id, exc)
        return [
            Unreadable(
                network=Network.TELEGRAM,
                reason=str(exc),
                payload=update.model_dump_json(exclude_none=True),
            )
        ]
    if not found:
        log.debug("telegram update %d of type %s ignored", update.update_id, _event_type(update))
    return found


def _messages(update: Update) -> list[InboundMessage | Unreadable]:
    if update.message is not None:
        return _one(_from_message(update.message, "message"))
    if update.edited_message is not None:
        return _one(_from_message(update.edited_message, "edit"))
    if update.callback_query is not None:
        return _one(_from_button(update.callback_query))
    if update.business_message is not None:
        return _one(_from_message(update.business_message, "message"))
    if update.edited_business_message is not None:
        return _one(_from_message(update.edited_business_message, "edit"))
    if update.deleted_business_messages is not None:
        return list(_from_deleted(update.deleted_business_messages))
    return []


def _one(message: InboundMessage | None) -> list[InboundMessage | Unreadable]:
    return [] if message is None else [message]


def _event_type(update: Update) -> str:
    try:
        return update.event_type
    except UpdateTypeLookupError:  # a type newer than this aiogram
        return "unknown"


def message_key(chat_id: int | str, message_id: int) -> str:
    """Telegram message ids are unique per chat only (`chat_id` as the conversation names it)."""
    return f"{chat_id}:{message_id}"


def business_chat(connection_id: str, chat_id: int) -> str:
    """The conversation's chat of a private chat of a connected business account: apart from
    the bot's own chat with the same person, which has the same Telegram id."""
    return f"{BUSINESS_PREFIX}{connection_id}:{chat_id}"


def parse_chat(chat: str) -> tuple[str | None, int]:
    """(the business connection, or None for the bot's own chat; the Telegram chat id) of a
    conversation's chat; ValueError for one no parser made."""
    if chat.startswith(BUSINESS_PREFIX):
        connection, _, chat_id = chat.removeprefix(BUSINESS_PREFIX).rpartition(":")
        if not connection:
            raise ValueError(f"no business connection in {chat!r}")
        return connection, int(chat_id)
    return None, int(chat)


def post_thread(group_id: int, thread_id: int) -> str:
    """A public thread's chat: the comments under one channel post, named by the discussion
    group and the message id of the post's automatic forward there."""
    return f"{POST_PREFIX}{group_id}:{thread_id}"


def parse_post_thread(chat: str) -> tuple[int, int] | None:
    """(discussion group id, the post's message id there) of a public thread's chat, or None for
    a private chat; ValueError for one no parser made."""
    if not chat.startswith(POST_PREFIX):
        return None
    group, _, thread = chat.removeprefix(POST_PREFIX).partition(":")
    return int(group), int(thread)


def _chat_of(message: Message) -> str:
    if message.business_connection_id:
        return business_chat(message.business_connection_id, message.chat.id)
    return str(message.chat.id)


def _from_message(message: Message, kind: Literal["message", "edit"]) -> InboundMessage | None:
    if message.chat.type == "supergroup":
        return _from_comment(message, kind)
    if message.chat.type != "private" or message.from_user is None:
        log.info("telegram: message in a %s chat ignored", message.chat.type)
        return None
    if message.business_connection_id and message.from_user.id != message.chat.id:
        # the business account's own messages (its owner, or a bot on its behalf) in the chat
        log.debug("telegram: the business account's own message ignored")
        return None
    chat = _chat_of(message)
    text = message.text or message.caption or ""
    attachments = _attachments(message)
    if not text and not attachments:
        # A sticker, a voice note, a location...: kept as a note, so the agent knows it came.
        text = f"[{message.content_type}]"
    return InboundMessage(
        network=Network.TELEGRAM,
        network_message_id=message_key(chat, message.message_id),
        kind=kind,
        chat_id=chat,
        user_id=str(message.from_user.id),
        text=text[:MAX_TEXT_CHARS],
        display_name=_name(message.from_user),
        language=_language(message.from_user),
        attachments=attachments,
    )


def _from_comment(message: Message, kind: Literal["message", "edit"]) -> InboundMessage | None:
    """A comment in a channel's discussion group: a reply in the thread of a channel post's
    automatic forward. The forward itself, the brand speaking as its channel or the group, bots
    (ours included), a forum's topics and the group's other talk are no customer's comment."""
    user = message.from_user
    if message.is_automatic_forward or user is None or user.is_bot or message.sender_chat:
        log.debug("telegram: a discussion group message not from a customer ignored")
        return None
    if message.is_topic_message:  # a forum topic's thread id names the topic, not a post
        log.info("telegram: a forum topic message ignored")
        return None
    parent = message.reply_to_message
    post = parent if parent is not None and parent.is_automatic_forward else None
    thread_id = message.message_thread_id or (post.message_id if post is not None else None)
    if thread_id is None:
        log.info("telegram: a group message outside any channel post's thread ignored")
        return None
    group = message.chat.id
    thread = post_thread(group, thread_id)
    text = message.text or message.caption or ""
    attachments = _attachments(message)
    return InboundMessage(
        network=Network.TELEGRAM,
        network_message_id=message_key(group, message.message_id),
        kind=kind,
        chat_id=thread,
        user_id=str(user.id),
        text=(text or ("" if attachments else f"[{message.content_type}]"))[:MAX_TEXT_CHARS],
        display_name=_name(user),
        language=_language(user),
        attachments=attachments,
        public=PublicPlace(
            post_text=((post.text or post.caption) if post is not None else None),
            post_url=_post_url(post) if post is not None else None,
            # a reply to another comment answers it; one to the post answers no one
            reply_to=(
                message_key(group, parent.message_id)
                if parent is not None and post is None and parent.message_id != thread_id
                else None
            ),
        ),
    )


def _post_url(forward: Message) -> str | None:
    """The channel post's public link; a private channel's posts have none for outsiders."""
    origin = forward.forward_origin
    if not isinstance(origin, MessageOriginChannel) or not origin.chat.username:
        return None
    return f"https://t.me/{origin.chat.username}/{origin.message_id}"


def _from_deleted(deleted: BusinessMessagesDeleted) -> list[InboundMessage]:
    """Each message the customer deleted in a business chat: marked deleted, its text kept for
    the agents' record (one never stored has nothing to mark)."""
    chat = business_chat(deleted.business_connection_id, deleted.chat.id)
    return [
        InboundMessage(
            network=Network.TELEGRAM,
            network_message_id=message_key(chat, message_id),
            kind="delete",
            chat_id=chat,
            user_id=str(deleted.chat.id),
        )
        for message_id in deleted.message_ids
    ]


def _from_button(query: CallbackQuery) -> InboundMessage | None:
    # a press under a message sent in a business chat belongs to that chat's conversation
    if isinstance(query.message, Message):
        chat = _chat_of(query.message)
    else:
        chat = str(query.message.chat.id if query.message is not None else query.from_user.id)
    return InboundMessage(
        network=Network.TELEGRAM,
        network_message_id=f"cb:{query.id}",
        kind="button",
        chat_id=chat,
        user_id=str(query.from_user.id),
        text=query.data or "",
        button_data=query.data,
        display_name=_name(query.from_user),
        language=_language(query.from_user),
    )


def _attachments(message: Message) -> list[Attachment]:
    found: list[Attachment] = []
    if message.photo:
        largest = max(message.photo, key=lambda size: size.width * size.height)
        found.append(
            Attachment(kind="photo", network_file_id=largest.file_id, size=_size(largest.file_size))
        )
    if message.document is not None:
        document = message.document
        found.append(
            Attachment(
                kind="document",
                network_file_id=document.file_id,
                name=(document.file_name or "")[:255] or None,
                # the sender's client names it; one past the domain's limit is no real type
                mime_type=document.mime_type if len(document.mime_type or "") <= 127 else None,
                size=_size(document.file_size),
            )
        )
    return found


def _size(value: int | None) -> int | None:
    """A file size the bus can carry (its JSON encoder takes 64-bit integers); any other is not
    a size a file has, so it is left unknown rather than losing the message."""
    return value if value is not None and 0 <= value < 2**63 else None


def _name(user: User) -> str:
    return (user.full_name or user.username or str(user.id))[:255]


def _language(user: User) -> str | None:
    code = (user.language_code or "")[:2].lower()
    # isalpha() alone takes any script's letters, and the domain's codes are a-z
    return code if len(code) == 2 and code.isascii() and code.isalpha() else None
