"""The border between the bridge and a network. Each `bots/<network>` adapter implements it;
the bridge never imports a network's client library."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from bridge.domain import (
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

# Telegram's Bot API hands bots files of up to 20 MB; no channel fetches a larger one (the web
# chat takes smaller ones still: bots.webchat.protocol.MAX_UPLOAD_BYTES).
MAX_FILE_BYTES = 20 * 1024 * 1024


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


class StoreUnavailable(Exception):
    """The conversation store could not be read or written now; trying later may succeed."""


CustomerHistory = Callable[[Network, str, int], Awaitable[list[SeenMessage]]]
"""The latest (at most the given number of) messages of a chat's conversation that its customer
may see, oldest first; raises StoreUnavailable. A channel whose customers come back to read
their conversation (the web chat) is given one; the bridge reads it from its store."""


class FileKeeper(Protocol):
    """Keeps the files customers send where no network keeps them for us (the web chat has no
    network, Messenger's addresses expire); what the file is stays in the message's attachment.
    Both raise StoreUnavailable when the store cannot be reached."""

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


class DeliveryError(Exception):
    """The network did not take a message. `permanent`: retrying cannot help (the customer
    blocked the bot, the chat does not exist); otherwise retry, after `retry_after` if given."""

    def __init__(self, reason: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


class Channel(Protocol):
    """Sending side of a network."""

    network: Network

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
