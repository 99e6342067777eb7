"""The border between the bridge and a network. Each `bots/<network>` adapter implements it;
the bridge never imports a network's client library."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from bridge.domain import (
    DOCUMENT,
    PHOTO,
    Attachment,
    AuthorKind,
    Button,
    InboundMessage,
    Network,
    OutboundMessage,
    Unreadable,
)

InboundSink = Callable[[Sequence[InboundMessage | Unreadable]], Awaitable[None]]
"""Where a receiver hands what it normalised (and what it could not read): the bus's inbound
side; once it returns, the network may be told the events were received."""


FileFetcher = Callable[[str], Awaitable[bytes]]
"""The content of a file a customer sent, by the network's id of it (`Channel.fetch_file`)."""

MB = 1024 * 1024
# Telegram's Bot API hands bots files of up to 20 MB; no channel fetches a larger one (the web
# chat takes smaller ones still: bots.webchat.protocol.MAX_UPLOAD_BYTES).
MAX_FILE_BYTES = 20 * MB


@dataclass(frozen=True, slots=True)
class FileLimits:
    """What a network takes of the files an agent sends (each channel's, from docs/networks.md):
    a picture within the photo limits goes as a photo, shown in the chat; anything else as a
    document; a file the network refuses not at all, and the agent is told why."""

    network: str  # its name as agents know it, for the reasons they read
    file_bytes: int
    photo_bytes: int
    photo_sides: int | None = None  # the most width + height may add up to
    photo_ratio: float | None = None  # the most the longer side may be of the shorter
    refused_extensions: frozenset[str] = frozenset()  # documents it does not take
    # The only types it takes, by extension, each with its most bytes (None: any type).
    only_extensions: Mapping[str, int] | None = field(default=None, hash=False)

    def refusal(self, name: str | None, size: int) -> str | None:
        """Why the network would refuse this file, or None when it takes it."""
        if size > self.file_bytes:
            return f"file too large for {self.network}: {self.file_bytes // MB} MB max"
        extension = (name or "").rpartition(".")[2].lower() if "." in (name or "") else ""
        if extension in self.refused_extensions:
            return f"{self.network} does not take .{extension} files"
        if self.only_extensions is not None:
            most = self.only_extensions.get(extension)
            if most is None:
                taken = ", ".join(sorted(self.only_extensions))
                return f"{self.network} takes only these files: {taken}"
            if size > most:
                return f"file too large for {self.network}: {most // MB} MB max for .{extension}"
        return None

    def kind_of(self, size: int, sides: tuple[int, int] | None) -> str:
        """PHOTO for a picture (of `sides` width, height; None for any other file) the network
        shows as one, else DOCUMENT."""
        if sides is None or size > self.photo_bytes or min(sides) == 0:
            return DOCUMENT
        width, height = sides
        if self.photo_sides is not None and width + height > self.photo_sides:
            return DOCUMENT
        if self.photo_ratio is not None and max(sides) / min(sides) > self.photo_ratio:
            return DOCUMENT
        return PHOTO


@dataclass(frozen=True, slots=True)
class Limit:
    """A network's rate limit on one key (a bot, a chat): `per_second` sends, `burst` at once."""

    key: str
    per_second: float
    burst: int = 1

    @property
    def interval(self) -> float:
        return 1.0 / self.per_second


@dataclass(frozen=True, slots=True)
class SeenMessage:
    """A message of a conversation as its customer may see it."""

    id: int
    author_kind: AuthorKind
    text: str
    buttons: list[Button]
    network_message_id: str | None
    created_at: dt.datetime
    files: list[str]  # the names of the files it carries (or their kinds, when unnamed)
    attachments: list[Attachment] = field(default_factory=list)  # the files themselves


class StoreUnavailable(Exception):
    """The conversation store could not be read or written now; trying later may succeed."""


CustomerHistory = Callable[[Network, str, int], Awaitable[list[SeenMessage]]]
"""The latest (at most the given number of) messages of a chat's conversation that its customer
may see, oldest first; raises StoreUnavailable. A channel whose customers come back to read
their conversation (the web chat) is given one; the bridge reads it from its store."""


class FileKeeper(Protocol):
    """Keeps the files customers send where no network keeps them for us (the web chat has no
    network, Messenger's addresses expire), and the files agents send until they are delivered;
    what the file is stays in the message's attachment. Each raises StoreUnavailable when the
    store cannot be reached."""

    async def keep(self, key: str, content: bytes) -> None:
        """Keep `content` under `key`; a second call with the same key keeps the first."""
        ...

    async def load(self, key: str) -> bytes:
        """The content kept under `key`; LookupError when there is none."""
        ...

    async def kept_bytes(self, prefix: str) -> int:
        """The bytes of every file kept under a key starting with `prefix`."""
        ...


@dataclass(frozen=True, slots=True)
class Delivered:
    network_message_id: str
    # The chat the network delivered to, when the message was addressed otherwise: a Messenger
    # private reply goes by the comment's id and reaches the person's PSID (docs/networks.md
    # 3.4); the private conversation is keyed by it from then on. None: the message's chat.
    chat_id: str | None = None


class DeliveryError(Exception):
    """The network did not take a message. `permanent`: retrying cannot help (the customer
    blocked the bot, the chat does not exist); otherwise retry, after `retry_after` if given."""

    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class OutgoingFile:
    attachment: Attachment
    content: bytes

    @property
    def name(self) -> str:
        """The file's name, or one made of its kind (a network wants one for an upload)."""
        return self.attachment.name or ("photo.jpg" if self.attachment.kind == PHOTO else "file")


async def outgoing_files(
    files: FileKeeper | None, limits: FileLimits, message: OutboundMessage
) -> list[OutgoingFile]:
    """The files an agent sends with `message`, read as they were kept and checked against the
    network's limits, all before any part of it is sent: a DeliveryError (saying whether trying
    again can help) sends nothing."""
    if not message.attachments:
        return []
    if files is None:
        raise DeliveryError("this process keeps no files, so it sends none", permanent=True)
    found = []
    for attachment in message.attachments:
        name = attachment.name or attachment.kind
        try:
            content = await files.load(attachment.network_file_id)
        except StoreUnavailable as exc:
            raise DeliveryError(f"{name} could not be read now: {exc}", permanent=False) from exc
        except LookupError as exc:
            raise DeliveryError(f"{name} is no longer kept: {exc}", permanent=True) from exc
        if (why := limits.refusal(attachment.name, len(content))) is not None:
            raise DeliveryError(f"{name}: {why}", permanent=True)
        found.append(OutgoingFile(attachment, content))
    return found


class Channel(Protocol):
    """Sending side of a network. A message's attachments are files an agent sends, kept by the
    FileKeeper the channel was given (`outgoing_file`); `file_limits` says which it takes."""

    network: Network
    file_limits: FileLimits

    def limits(self, message: OutboundMessage) -> Sequence[Limit]:
        """The network's rate limits this send counts against (per bot, per chat, ...)."""
        ...

    async def send(self, message: OutboundMessage) -> Delivered:
        """Deliver one message or raise DeliveryError; transport errors may propagate too."""
        ...

    async def fetch_file(self, network_file_id: str) -> bytes:
        """The content of an attachment a customer sent (stored as metadata only)."""
        ...


class PollPosition(Protocol):
    """Where a network's poller left off, kept outside its process, so that the next poller
    (a restart, or another process taking over) goes on from there instead of from "now"."""

    async def load(self) -> str | None: ...

    async def save(self, position: str) -> None: ...


Receive = Callable[[bytes], Awaitable[None]]


class Broadcast(Protocol):
    """One topic's messages to every process of the product, kept nowhere: within this process in
    the embedded mode, through Redis pub/sub in the distributed one (the web chat reaches a
    visitor's socket in whichever process holds it this way)."""

    def subscribe(self, receive: Receive) -> None:
        """`receive` gets every payload published on the topic from now on."""
        ...

    async def publish(self, payload: bytes) -> None: ...

    async def run(self, stop: asyncio.Event) -> None:
        """Carry what other processes publish to this process's receivers until `stop`
        (returns at once where there are no other processes)."""
        ...


class Receiver(Protocol):
    """Receiving side of a network: long polling, or webhook routes on the product's port."""

    network: Network

    async def poll(
        self, sink: InboundSink, stop: asyncio.Event, position: PollPosition | None = None
    ) -> None:
        """Pull events until `stop`; an unreachable network is retried, never fatal. A network
        that does not keep the position itself resumes from `position`, and updates it."""
        ...

    def webhook_routes(self, sink: InboundSink) -> Sequence[web.RouteDef]:
        """Routes that verify and accept the network's pushes (empty: polling only)."""
        ...
