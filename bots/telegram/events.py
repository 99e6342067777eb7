"""Telegram updates -> domain inbound messages. Only private chats are a support conversation."""

from __future__ import annotations

import logging
from typing import Literal

from aiogram.types import CallbackQuery, Message, Update, User
from aiogram.types.update import UpdateTypeLookupError
from pydantic import ValidationError

from bridge.domain import MAX_TEXT_CHARS, Attachment, InboundMessage, Network, Unreadable

log = logging.getLogger(__name__)


def to_inbound(update: Update) -> InboundMessage | Unreadable | None:
    """The domain message an update carries, or None for updates a support inbox ignores.
    An update whose fields do not fit a domain message (button data past its 256 characters...)
    is Unreadable, for dead_letters: an error would only bring it back again."""
    try:
        if update.message is not None:
            return _from_message(update.message, "message")
        if update.edited_message is not None:
            return _from_message(update.edited_message, "edit")
        if update.callback_query is not None:
            return _from_button(update.callback_query)
    except ValidationError as exc:
        log.error("telegram update %d is malformed (%s); dead-lettered", update.update_id, exc)
        return Unreadable(
            network=Network.TELEGRAM,
            reason=str(exc),
            payload=update.model_dump_json(exclude_none=True),
        )
    log.debug("telegram update %d of type %s ignored", update.update_id, _event_type(update))
    return None


def _event_type(update: Update) -> str:
    try:
        return update.event_type
    except UpdateTypeLookupError:  # a type newer than this aiogram
        return "unknown"


def message_key(chat_id: int | str, message_id: int) -> str:
    """Telegram message ids are unique per chat only."""
    return f"{chat_id}:{message_id}"


def _from_message(message: Message, kind: Literal["message", "edit"]) -> InboundMessage | None:
    if message.chat.type != "private" or message.from_user is None:
        log.info("telegram: message in a %s chat ignored", message.chat.type)
        return None
    text = message.text or message.caption or ""
    attachments = _attachments(message)
    if not text and not attachments:
        # A sticker, a voice note, a location...: kept as a note, so the agent knows it came.
        text = f"[{message.content_type}]"
    return InboundMessage(
        network=Network.TELEGRAM,
        network_message_id=message_key(message.chat.id, message.message_id),
        kind=kind,
        chat_id=str(message.chat.id),
        user_id=str(message.from_user.id),
        text=text[:MAX_TEXT_CHARS],
        display_name=_name(message.from_user),
        language=_language(message.from_user),
        attachments=attachments,
    )


def _from_button(query: CallbackQuery) -> InboundMessage | None:
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    return InboundMessage(
        network=Network.TELEGRAM,
        network_message_id=f"cb:{query.id}",
        kind="button",
        chat_id=str(chat_id),
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
