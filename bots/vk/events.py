"""VK community events (Bots Long Poll and Callback API share one shape) -> domain messages.

Only a user's private dialogue with the community is a support conversation: peer_id between 0
and 2000000000 (chats start at 2000000000, communities are negative; VKS messages/methods.json).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bridge.domain import MAX_TEXT_CHARS, Attachment, InboundMessage, Network

log = logging.getLogger(__name__)

CHAT_PEER_BASE = 2_000_000_000
BUTTON_KEY = "button"
"""Our callback buttons carry `{"button": <Button.data>}` as their payload."""
# client_info.lang_id numbers, as the API's `lang` parameter numbers languages (dev.vk.com
# api-requests: ru 0, uk 1, be 2, en 3, es 4, fi 5, de 6, it 7)
LANGUAGES = {0: "ru", 1: "uk", 2: "be", 3: "en", 4: "es", 5: "fi", 6: "de", 7: "it"}


class _Lenient(BaseModel):
    # VK adds fields over versions; only the ones we read are checked
    model_config = ConfigDict(extra="ignore", frozen=True)


class VkUpdate(_Lenient):
    type: str
    object: dict[str, Any] = Field(default_factory=dict)
    group_id: int
    event_id: str | None = None


class VkMessage(_Lenient):
    id: int
    date: int
    peer_id: int
    conversation_message_id: int = 0
    from_id: int
    text: str = ""
    out: int = 0
    attachments: list[dict[str, Any]] = Field(default_factory=list)


class ClientInfo(_Lenient):
    lang_id: int | None = None


class MessageNew(_Lenient):
    message: VkMessage
    client_info: ClientInfo = ClientInfo()


class MessageEvent(_Lenient):
    user_id: int
    peer_id: int
    event_id: str
    payload: dict[str, Any] | str | None = None


def is_user_peer(peer_id: int) -> bool:
    return 0 < peer_id < CHAT_PEER_BASE


def author_id(update: VkUpdate) -> int | None:
    """The user whose name the message needs (for users.get), or None."""
    if update.type == "message_new":
        return MessageNew.model_validate(update.object).message.from_id
    if update.type == "message_edit":
        return VkMessage.model_validate(update.object).from_id
    if update.type == "message_event":
        return MessageEvent.model_validate(update.object).user_id
    return None


def to_inbound(update: VkUpdate, names: Mapping[int, str]) -> InboundMessage | None:
    """The domain message an update carries, or None for updates a support inbox ignores.
    A malformed object of a known type raises pydantic's ValidationError (a ValueError)."""
    if update.type == "message_new":
        new = MessageNew.model_validate(update.object)
        language = (
            LANGUAGES.get(new.client_info.lang_id) if new.client_info.lang_id is not None else None
        )
        return _from_message(new.message, "message", names, language)
    if update.type == "message_edit":
        return _from_message(VkMessage.model_validate(update.object), "edit", names, None)
    if update.type == "message_event":
        return _from_button(MessageEvent.model_validate(update.object), names)
    log.debug("vk event %s of type %s ignored", update.event_id, update.type)
    return None


def message_key(message: VkMessage) -> str:
    """What names one message for good (docs/networks.md 2.3): its `id`, numbered in one sequence
    for the community; a message that has none (`id` 0, as in chats) by its peer and its number
    within that peer's conversation."""
    if message.id > 0:
        return str(message.id)
    return f"{message.peer_id}_{message.conversation_message_id}"


def _from_message(
    message: VkMessage,
    kind: Literal["message", "edit"],
    names: Mapping[int, str],
    language: str | None,
) -> InboundMessage | None:
    # `out` 1 is the community's own message (an edit of our reply, for one)
    if not is_user_peer(message.peer_id) or message.out or message.from_id <= 0:
        log.info("vk: message %d in peer %d ignored", message.id, message.peer_id)
        return None
    attachments = _attachments(message)
    text = message.text
    if not text and not attachments:
        # a sticker, a voice note, a wall post...: kept as a note, so the agent knows it came
        kinds = sorted({str(a.get("type", "attachment")) for a in message.attachments})
        text = f"[{', '.join(kinds) or 'empty'}]"
    return InboundMessage(
        network=Network.VK,
        network_message_id=message_key(message),
        kind=kind,
        chat_id=str(message.peer_id),
        user_id=str(message.from_id),
        text=text[:MAX_TEXT_CHARS],
        display_name=names.get(message.from_id),
        language=language,
        attachments=attachments,
    )


def _from_button(event: MessageEvent, names: Mapping[int, str]) -> InboundMessage | None:
    if not is_user_peer(event.peer_id):
        return None
    data = button_data(event.payload)
    return InboundMessage(
        network=Network.VK,
        network_message_id=f"ev:{event.event_id}",
        kind="button",
        chat_id=str(event.peer_id),
        user_id=str(event.user_id),
        text=data or "",
        button_data=data,
        display_name=names.get(event.user_id),
    )


def button_data(payload: dict[str, Any] | str | None) -> str | None:
    """Our button's data from a payload; VK's schema types it a string, vk_api's examples an
    object (docs/networks.md 2.3), so both are read."""
    if isinstance(payload, str):
        try:
            payload = json.loads(payload)
        except (ValueError, RecursionError):  # not JSON, or nested deeper than json decodes
            return None
    if isinstance(payload, dict) and isinstance(value := payload.get(BUTTON_KEY), str):
        return value[:256]
    return None


def _attachments(message: VkMessage) -> list[Attachment]:
    found: list[Attachment] = []
    for item in message.attachments[:10]:
        kind = item.get("type")
        body = item.get(kind) if isinstance(kind, str) else None
        if kind not in ("photo", "doc") or not isinstance(body, dict):
            continue
        # The file's addresses expire, so its message is kept: a fresh one is asked for then.
        file_id = f"{message.id}:{attachment_name(kind, body)}"
        found.append(
            Attachment(
                kind="photo" if kind == "photo" else "document",
                network_file_id=file_id[:128],
                name=str(body["title"])[:255] if kind == "doc" and body.get("title") else None,
                size=_size(body.get("size")) if kind == "doc" else None,
            )
        )
    return found


def attachment_name(kind: str, body: Mapping[str, Any]) -> str:
    """VK's own name of an attachment: <type><owner_id>_<id>[_<access_key>]."""
    name = f"{kind}{body.get('owner_id')}_{body.get('id')}"
    if key := body.get("access_key"):
        name += f"_{key}"
    return name


def file_url(message: Mapping[str, Any], name: str) -> str | None:
    """Where the attachment `name` of a message object (messages.getById) can be downloaded
    now: a photo's largest size, a document's own address."""
    for item in message.get("attachments") or ():
        kind = item.get("type") if isinstance(item, dict) else None
        body = item.get(kind) if isinstance(kind, str) else None
        if not isinstance(kind, str) or not isinstance(body, dict):
            continue
        if attachment_name(kind, body) != name:
            continue
        if kind == "doc":
            return str(body["url"]) if body.get("url") else None
        sizes = [s for s in body.get("sizes") or () if isinstance(s, dict) and s.get("url")]
        if sizes:
            largest = max(sizes, key=lambda s: int(s.get("width") or 0) * int(s.get("height") or 0))
            return str(largest["url"])
    return None


def _size(value: object) -> int | None:
    """A document's size as the bus can carry it (its JSON encoder takes 64-bit integers); any
    other value is no size a file has, so it is left unknown rather than losing the message."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**63:
        return value
    return None
