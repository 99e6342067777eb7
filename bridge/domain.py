"""Domain types shared by every layer: what a message, a conversation and a reply are."""

from __future__ import annotations

import enum
import re
import time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

MAX_TEXT_CHARS = 8192
MAX_ID_CHARS = 128
MAX_URL_CHARS = 1024
LAST_TIMESTAMP = 253_402_300_799  # 9999-12-31 23:59:59 UTC: the last a datetime holds


class Network(enum.StrEnum):
    TELEGRAM = "telegram"
    VK = "vk"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    WEBCHAT = "webchat"


class ConversationState(enum.StrEnum):
    BOT = "bot"
    WAITING = "waiting"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"  # an agents' note: shown in the inbox, never sent


class AuthorKind(enum.StrEnum):
    CUSTOMER = "customer"
    BOT = "bot"
    AGENT = "agent"
    SYSTEM = "system"


class DeliveryStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"


class HandoffReason(enum.StrEnum):
    NO_RESPONDER = "no_responder"
    LOW_CONFIDENCE = "low_confidence"
    ASKED_FOR_HUMAN = "asked_for_human"
    REPEATED_MISSES = "repeated_misses"
    NEGATIVE_TONE = "negative_tone"
    NEVER_AUTO = "never_auto"
    NOT_HELPFUL = "not_helpful"
    AGENT_TOOK_OVER = "agent_took_over"
    SHADOW_MODE = "shadow_mode"
    PUBLIC = "public"  # a public comment, which the bot leaves to people unless an admin allows


class DecisionOutcome(enum.StrEnum):
    """What the bot did with a customer's question (see bridge.pipeline.route)."""

    ANSWERED = "answered"
    REPHRASE = "rephrase"
    HANDOFF = "handoff"
    SUGGESTED = "suggested"


# What no store keeps (PostgreSQL refuses U+0000, no UTF-8 encodes a lone surrogate) and no
# person means: C0/C1 control characters other than tab and line breaks, and DEL.
_UNSTORABLE_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def storable(text: str) -> str:
    """`text` as every store keeps it: control characters dropped, a lone surrogate (half of a
    character, as some clients send) replaced by U+FFFD."""
    if text.isprintable():  # nearly every text: no control character, no surrogate (fast, in C)
        return text
    return _LONE_SURROGATE.sub("\ufffd", _UNSTORABLE_CONTROLS.sub("", text))


def storable_fields(data: Any) -> Any:
    """A model's input with each text made storable: one call a model, not one a field (this
    runs for every message, twice: where a worker makes it and where the pipeline reads it)."""
    if isinstance(data, dict) and not all(
        v.isprintable() for v in data.values() if isinstance(v, str)
    ):
        return {k: storable(v) if isinstance(v, str) else v for k, v in data.items()}
    return data


class _Storable(BaseModel):
    """Every text a network hands over is made storable at the border."""

    @model_validator(mode="before")
    @classmethod
    def _storable_texts(cls, data: Any) -> Any:
        return storable_fields(data)


Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")]
ExternalId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]


class Attachment(_Storable):
    """Metadata only. A customer's file stays on the network and is fetched on demand
    (`network_file_id` is the network's id of it, or the key it is kept under where the network
    does not keep it); an agent's file is kept under the key `network_file_id` until it is sent.
    An agent sends `kind` PHOTO (shown in the chat) or DOCUMENT."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    network_file_id: ExternalId
    name: Annotated[str, StringConstraints(max_length=255)] | None = None
    mime_type: Annotated[str, StringConstraints(max_length=127)] | None = None
    size: int | None = Field(default=None, ge=0)


PHOTO = "photo"
DOCUMENT = "document"


class PublicPlace(_Storable):
    """Where a public comment hangs: the post (or photo, video, item, topic) everyone sees it
    under, and the comment it answers. The thread itself is the message's `chat_id`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    post_text: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)] | None = None
    post_url: Annotated[str, StringConstraints(max_length=MAX_URL_CHARS)] | None = None
    reply_to: ExternalId | None = Field(
        default=None, description="the network message id of the comment this one answers"
    )


class InboundMessage(_Storable):
    """One customer message as a bot worker hands it to the bridge.

    `chat_id` names the conversation on the network (a private chat, a VK peer, a PSID; for a
    public comment the post it is under, so one thread has many authors); `user_id` names the
    person; for private chats they are usually equal. `public` is set on a public comment.
    `kind` "edit" carries the new content of the message `network_message_id`; "delete" says it
    was deleted; "button" a press of one of our buttons; "permission" that the person allowed
    (`allows_private` True) or forbade the community to write to them privately.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    network: Network
    network_message_id: ExternalId
    kind: Literal["message", "edit", "delete", "button", "permission"] = "message"
    chat_id: ExternalId
    user_id: ExternalId
    text: Annotated[str, StringConstraints(max_length=MAX_TEXT_CHARS)] = ""
    display_name: Annotated[str, StringConstraints(max_length=255)] | None = None
    language: Language | None = None
    attachments: list[Attachment] = Field(default_factory=list, max_length=10)
    button_data: Annotated[str, StringConstraints(max_length=256)] | None = None
    public: PublicPlace | None = None
    allows_private: bool | None = None
    received_at: float = Field(
        default_factory=time.time, ge=0, le=LAST_TIMESTAMP, description="unix time accepted"
    )

    @model_validator(mode="after")
    def _permission_says_which(self) -> InboundMessage:
        if (self.kind == "permission") != (self.allows_private is not None):
            raise ValueError("allows_private is given with kind permission, and only then")
        return self

    @property
    def conversation_key(self) -> str:
        return f"{self.network.value}:{self.chat_id}"


class Unreadable(_Storable):
    """An event a network sent that cannot become a message (a field out of the network's own
    limits, a shape we do not know): acknowledged like any, and kept in `dead_letters` with the
    reason, never only logged."""

    model_config = ConfigDict(frozen=True)

    network: Network
    reason: str
    payload: str = Field(description="the event as it came, as JSON")


class Button(BaseModel):
    """A reply button under a message; a press comes back as an inbound "button" message."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    data: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class OutboundMessage(BaseModel):
    """A reply the bridge has stored and asks a network sender to deliver."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: int
    conversation_id: int
    network: Network
    chat_id: str
    text: str
    idempotency_key: str
    author_kind: AuthorKind
    buttons: list[Button] = Field(default_factory=list, max_length=10)
    attachments: list[Attachment] = Field(
        default_factory=list, max_length=10, description="the files an agent sends with it"
    )
    in_reply_to: str | None = None
    public: bool = Field(
        default=False,
        description="goes out publicly, as the community, in reply to the comment `in_reply_to`",
    )
    received_at: float | None = Field(
        default=None, description="when the inbound message that caused it was accepted"
    )
    customer_last_message_at: float | None = Field(
        default=None, description="the customer's latest message (networks' reply windows)"
    )


class EventKind(enum.StrEnum):
    """What changed, for the live inbox (its names are what the pages receive)."""

    MESSAGE_CREATED = "message.created"
    MESSAGE_EDITED = "message.edited"
    MESSAGE_STATUS = "message.status"  # a reply's delivery status: queued, sent or failed
    CONVERSATION_STATE = "conversation.state"
    CONVERSATION_LABELS = "conversation.labels"  # an agent added or removed a label
    CONVERSATION_TEAM = "conversation.team"  # an agent moved it to another team
    CUSTOMER_LINKED = "customer.linked"
    # a private conversation went into the one its person had (data: "into"): its page goes there
    CONVERSATION_MERGED = "conversation.merged"
    AGENT_PRESENCE = "agent.presence"  # an agent views a conversation, types in it, or leaves it


class Event(BaseModel):
    """A change the inbox shows live: a message stored, a state changed, a delivery status."""

    model_config = ConfigDict(frozen=True)

    kind: EventKind
    conversation_id: int
    data: dict[str, Any] = Field(default_factory=dict)
