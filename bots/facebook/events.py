"""Messenger Platform webhook payloads -> domain inbound messages, for Messenger (object
"page") and Instagram direct messages (object "instagram"), which come in the same shape, and
the comments on the page's posts or the account's media (bots.facebook.comments).

Only what a person sends the page (or the Instagram account) becomes a customer message: text, a
quick-reply tap or a postback. The page's own echoes, delivery and read receipts, and messages the
person unsent, are acknowledged and dropped. Shapes: docs/networks.md 3.1 and 3.3
(FB reference/webhook-events, IG webhooks).
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from bots.facebook.comments import from_change
from bots.facebook.ids import GraphId
from bridge.domain import (
    MAX_ID_CHARS,
    MAX_TEXT_CHARS,
    Attachment,
    InboundMessage,
    Network,
    Unreadable,
)

log = logging.getLogger(__name__)

# Milliseconds since the epoch; the bound keeps `timestamp / 1000` a float.
Timestamp = Annotated[int, Field(ge=0, lt=2**53)]
MAX_BUTTON_DATA_CHARS = 256  # InboundMessage.button_data


class _Model(BaseModel):
    # the platform adds fields over time; what we do not read must not break a webhook
    model_config = ConfigDict(extra="ignore", frozen=True)


class Party(_Model):
    id: GraphId


class QuickReply(_Model):
    payload: str


# The attachments that are files with an address; stickers come as images too.
FILE_TYPES = frozenset({"image", "file", "video", "audio"})


class MessageAttachment(_Model):
    type: str
    payload: Any = None  # an object for files, a location...; anything else is no file

    @property
    def url(self) -> str | None:
        """Where a file's content can be downloaded for a while (the platform's CDN)."""
        url = self.payload.get("url") if isinstance(self.payload, dict) else None
        if (
            self.type in FILE_TYPES
            and isinstance(url, str)
            and url.startswith(("https://", "http://"))
        ):
            return url
        return None


class Message(_Model):
    mid: Annotated[str, StringConstraints(min_length=1)]
    text: str | None = None
    is_echo: bool = False
    is_deleted: bool = False  # Instagram: the person unsent it
    quick_reply: QuickReply | None = None
    attachments: list[MessageAttachment] = []


class Postback(_Model):
    mid: str | None = None
    title: str | None = None
    payload: str | None = None


class MessagingEvent(_Model):
    sender: Party
    recipient: Party
    timestamp: Timestamp
    message: Message | None = None
    postback: Postback | None = None
    delivery: dict[str, Any] | None = None
    read: dict[str, Any] | None = None


class Entry(_Model):
    id: GraphId
    time: int
    # read one by one in `to_inbound`: a malformed event must not cost its neighbours
    messaging: list[dict[str, Any]] = []
    changes: list[Any] = []  # comments on the posts (bots.facebook.comments), one by one too


class WebhookPayload(_Model):
    object: str
    entry: list[Entry]


@dataclass(frozen=True, slots=True)
class Inbound:
    """A customer message and when the person sent it (which opens Messenger's windows), and
    where to download the files it carries (their keys in the message's attachments)."""

    message: InboundMessage
    sent_at: float
    downloads: tuple[tuple[str, str], ...] = ()


# The webhook object each network's messages come under (one Meta app may push both).
WEBHOOK_OBJECTS = {Network.FACEBOOK: "page", Network.INSTAGRAM: "instagram"}
# Before the hashed key of a customer's file kept in the store, one per network.
FILE_KEY_PREFIXES = {Network.FACEBOOK: "fb:", Network.INSTAGRAM: "ig:"}


def to_inbound(
    payload: WebhookPayload, network: Network = Network.FACEBOOK
) -> list[Inbound | Unreadable]:
    """The customer messages of one webhook POST for `network`, in the order of its entries and
    events; a payload for another object is not this network's, and is ignored."""
    if payload.object != WEBHOOK_OBJECTS[network]:
        log.info("%s: webhook for object %r ignored", network.value, payload.object)
        return []
    found: list[Inbound | Unreadable] = []
    for entry in payload.entry:
        for raw in entry.messaging:
            try:
                event = MessagingEvent.model_validate(raw)
                # an id of control characters alone passes the event's check, not the message's
                message = _from_event(event, network)
            except ValidationError as exc:
                log.error("%s: messaging event is malformed (%s); dead-lettered", network, exc)
                found.append(Unreadable(network=network, reason=str(exc), payload=_json(raw)))
                continue
            if message is not None:
                downloads = tuple(
                    (attachment.network_file_id, url)
                    for attachment, url in _files(event.message, network)
                )
                found.append(Inbound(message, event.timestamp / 1000, downloads))
        for change in entry.changes:
            try:
                comment = from_change(change, entry.id, network)
            except ValueError as exc:
                log.error("%s: webhook change is malformed (%s); dead-lettered", network, exc)
                found.append(Unreadable(network=network, reason=str(exc), payload=_json(change)))
                continue
            if comment is not None:
                found.append(Inbound(comment, comment.received_at))
    return found


def _from_event(event: MessagingEvent, network: Network) -> InboundMessage | None:
    if event.message is not None and not (event.message.is_echo or event.message.is_deleted):
        return _from_message(event, event.message, network)
    if event.postback is not None:
        return _from_postback(event, event.postback, network)
    # echoes of the page's own sends, receipts, unsent messages: no customer message
    log.debug("%s: event without a customer message from %s ignored", network, event.sender.id)
    return None


def _from_message(event: MessagingEvent, message: Message, network: Network) -> InboundMessage:
    text = message.text or ""
    files = [attachment for attachment, _ in _files(message, network)]
    if not text and not files:
        # a sticker, a location...: kept as a note, so the agent knows it came
        kinds = ", ".join(a.type for a in message.attachments) or "empty message"
        text = f"[{kinds}]"
    payload = message.quick_reply.payload if message.quick_reply is not None else None
    button = payload is not None and len(payload) <= MAX_BUTTON_DATA_CHARS
    return InboundMessage(
        network=network,
        network_message_id=message_key(message.mid),
        # a payload longer than ours ever are is not one of our buttons: the tap is plain text
        kind="button" if button else "message",
        chat_id=event.sender.id,
        user_id=event.sender.id,
        text=text[:MAX_TEXT_CHARS],
        button_data=payload if button else None,
        attachments=files,
    )


def _from_postback(event: MessagingEvent, postback: Postback, network: Network) -> InboundMessage:
    payload = postback.payload or ""
    # older postbacks carry no mid: sender and time name the tap, so a redelivery is the same
    mid = postback.mid or f"postback:{event.sender.id}:{event.timestamp}"
    button = len(payload) <= MAX_BUTTON_DATA_CHARS
    return InboundMessage(
        network=network,
        network_message_id=message_key(mid),
        kind="button" if button else "message",
        chat_id=event.sender.id,
        user_id=event.sender.id,
        text=(postback.title or payload)[:MAX_TEXT_CHARS],
        button_data=payload if button else None,
    )


def _files(message: Message | None, network: Network) -> list[tuple[Attachment, str]]:
    """The files of a message with where to download them, each under a key of its own: their
    addresses expire, so the channel downloads them as they come and keeps them."""
    if message is None:
        return []
    return [
        (
            Attachment(
                kind="photo" if item.type == "image" else "document",
                network_file_id=file_key(message.mid, n, network),
            ),
            item.url,
        )
        for n, item in enumerate(message.attachments[:10])
        if item.url is not None
    ]


def file_key(mid: str, number: int, network: Network = Network.FACEBOOK) -> str:
    """The same for a message delivered twice, so that its file is kept once."""
    digest = hashlib.sha256(f"{mid}:{number}".encode()).hexdigest()
    return FILE_KEY_PREFIXES[network] + digest


def message_key(mid: str) -> str:
    """mids are unique platform-wide; one longer than the store's id column is hashed."""
    if len(mid) <= MAX_ID_CHARS:
        return mid
    return "sha256:" + hashlib.sha256(mid.encode()).hexdigest()


def _json(raw: object) -> str:
    try:
        return json.dumps(raw, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(raw)
