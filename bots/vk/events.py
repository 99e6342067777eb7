"""VK community events (Bots Long Poll and Callback API share one shape) -> domain messages.

Two kinds of support conversation: a user's private dialogue with the community (peer_id between
0 and 2000000000; chats start at 2000000000, communities are negative; VKS
messages/methods.json), and a public thread, the users' comments under one of the community's
wall posts, photos, videos, market items or board topics (docs/networks.md 2.7).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bridge.domain import MAX_TEXT_CHARS, Attachment, InboundMessage, Network, PublicPlace

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
    if update.type in COMMENT_EVENTS and not update.type.endswith("_delete"):
        return Comment.model_validate(update.object).from_id
    return None


def to_inbound(
    update: VkUpdate, names: Mapping[int, str], posts: Mapping[str, str] | None = None
) -> InboundMessage | None:
    """The domain message an update carries, or None for updates a support inbox ignores.
    `posts`: the text of the wall posts comments are under, by thread. A malformed object of a
    known type raises a ValueError (pydantic's ValidationError is one) saying what is wrong."""
    if (place := COMMENT_EVENTS.get(update.type)) is not None:
        return _from_comment(update, place, names, posts or {})
    if update.type in ("message_allow", "message_deny"):
        return _permission(update)
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


# -- public threads -------------------------------------------------------------------------------

Verb = Literal["new", "edit", "delete", "restore"]


class CommentPlace(_Lenient):
    """What a comment event is about: the kind of place it is under in VK's own names, the
    object field holding the place's id (VK names it differently per event), and whether the
    comment is new, edited, deleted or restored."""

    kind: Literal["wall", "photo", "video", "market", "topic"]
    id_field: str
    verb: Verb


def _events() -> dict[str, CommentPlace]:
    places = {
        "wall_reply": ("wall", "post_id"),
        "photo_comment": ("photo", "photo_id"),
        "video_comment": ("video", "video_id"),
        "market_comment": ("market", "item_id"),
        "board_post": ("topic", "topic_id"),
    }
    return {
        f"{prefix}_{verb}": CommentPlace(kind=kind, id_field=field, verb=verb)
        for prefix, (kind, field) in places.items()
        for verb in ("new", "edit", "delete", "restore")
    }


COMMENT_EVENTS = _events()
"""The comment events (docs/networks.md 2.7) by type."""

THREAD = re.compile(r"^(wall|photo|video|market|topic)(-\d+)_(\d+)$")
# A page of each place on vk.com (docs/networks.md 2.7: the product page's address unconfirmed)
URLS = {
    "wall": "https://vk.com/wall{owner}_{id}",
    "photo": "https://vk.com/photo{owner}_{id}",
    "video": "https://vk.com/video{owner}_{id}",
    "market": "https://vk.com/product{owner}_{id}",
    "topic": "https://vk.com/topic{owner}_{id}",
}


class Comment(_Lenient):
    """A new or edited comment: VK's comment object with the id of what it is under."""

    id: int
    from_id: int
    text: str = ""
    reply_to_comment: int | None = None
    attachments: list[dict[str, Any]] = Field(default_factory=list)


class DeletedComment(_Lenient):
    id: int
    # who deleted it: VK names them deleter_id or user_id depending on the event
    deleter_id: int | None = None
    user_id: int | None = None


def thread_key(kind: str, owner_id: int, item_id: int) -> str:
    """A public thread's chat id: VK's own name of the place, e.g. wall-1_5 (post 5 of
    community 1), so one post is one conversation."""
    return f"{kind}{owner_id}_{item_id}"


def comment_key(thread: str, comment_id: int) -> str:
    """What names one comment for good: comment ids are numbered per place kind and owner, so
    the thread goes with it (docs/networks.md 2.7)."""
    return f"{thread}:{comment_id}"


def parse_thread(chat_id: str) -> tuple[str, int, int] | None:
    """(kind, owner id, item id) of a public thread's chat id, or None for a private chat."""
    found = THREAD.match(chat_id)
    if found is None:
        return None
    return found[1], int(found[2]), int(found[3])


def comment_id(network_message_id: str) -> int | None:
    """The comment's own number within its place, from its key; None for any other message."""
    thread, _, number = network_message_id.rpartition(":")
    return int(number) if parse_thread(thread) is not None and number.isdigit() else None


def wall_post(update: VkUpdate) -> str | None:
    """The thread of a new wall comment, whose post's text the channel looks up."""
    if update.type != "wall_reply_new":
        return None
    item = update.object.get(COMMENT_EVENTS[update.type].id_field)
    return thread_key("wall", -update.group_id, item) if isinstance(item, int) else None


def _from_comment(
    update: VkUpdate, place: CommentPlace, names: Mapping[int, str], posts: Mapping[str, str]
) -> InboundMessage | None:
    item = update.object.get(place.id_field)
    if not isinstance(item, int) or isinstance(item, bool) or item <= 0:
        raise ValueError(f"{update.type} without a valid {place.id_field}: {item!r}")
    # only the community's own places send it events, so its owner is the community
    thread = thread_key(place.kind, -update.group_id, item)
    if place.verb == "delete":
        gone = DeletedComment.model_validate(update.object)
        who = gone.deleter_id or gone.user_id or -update.group_id
        return InboundMessage(
            network=Network.VK,
            network_message_id=comment_key(thread, gone.id),
            kind="delete",
            chat_id=thread,
            user_id=str(who),
        )
    comment = Comment.model_validate(update.object)
    if comment.from_id <= 0:
        # the community's own comment (an agent's reply coming back), or another community's
        log.info("vk: comment %d in %s by %d ignored", comment.id, thread, comment.from_id)
        return None
    text = comment.text
    if not text:
        kinds = sorted({str(a.get("type", "attachment")) for a in comment.attachments})
        text = f"[{', '.join(kinds) or 'empty'}]"
    parent = (
        comment_key(thread, comment.reply_to_comment)
        if comment.reply_to_comment and place.kind != "topic"
        else None
    )
    return InboundMessage(
        network=Network.VK,
        network_message_id=comment_key(thread, comment.id),
        # a restored comment is the comment as it was: an edit that brings it back
        kind="message" if place.verb == "new" else "edit",
        chat_id=thread,
        user_id=str(comment.from_id),
        text=text[:MAX_TEXT_CHARS],
        display_name=names.get(comment.from_id),
        public=PublicPlace(
            post_text=(posts.get(thread) or None),
            post_url=URLS[place.kind].format(owner=-update.group_id, id=item),
            reply_to=parent,
        ),
    )


class Permission(_Lenient):
    user_id: int


def _permission(update: VkUpdate) -> InboundMessage:
    """message_allow / message_deny: whether the community may now write to the user."""
    user = Permission.model_validate(update.object).user_id
    if not is_user_peer(user):
        raise ValueError(f"{update.type} for {user}, which is no user")
    return InboundMessage(
        network=Network.VK,
        network_message_id=f"{update.type}:{update.event_id or user}",
        kind="permission",
        chat_id=str(user),
        user_id=str(user),
        allows_private=update.type == "message_allow",
    )
