"""A send whose network names another chat than the message's (a Messenger private reply, sent
by the comment's id, reaches the person's PSID): the sender keys the conversation by it with the
outcome, the chat's next replies go there, and a conversation merged into the person's own is
announced, for its open pages to follow."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.base import BusEntry, encode
from bridge.bus.memory import MemoryBus
from bridge.channel import Delivered, FileLimits, Limit
from bridge.delivery.ratelimit import MemoryRateLimiter
from bridge.delivery.sender import Sender
from bridge.domain import EventKind, Network, OutboundMessage
from bridge.inbox.actions import reply_as_agent
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations
from tests.factories import drain_outbound, entries, facebook_commenter_moved_to_private, inbound

AUTHOR = 880000000000001  # the commenter's id in the Page's change
PSID = "501"


class PrivateReplies:
    """Messenger as far as these sends go: a private reply (it answers a comment) reaches PSID."""

    network = Network.FACEBOOK
    file_limits = FileLimits("Messenger", file_bytes=1, photo_bytes=1)

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []  # (chat, text)

    def limits(self, message: OutboundMessage) -> Sequence[Limit]:
        return [Limit("page", per_second=1000.0, burst=10)]

    async def send(self, message: OutboundMessage) -> Delivered:
        self.sent.append((message.chat_id, message.text))
        mid = f"m_{len(self.sent)}"
        return Delivered(mid, chat_id=PSID) if message.in_reply_to else Delivered(mid)

    async def fetch_file(self, network_file_id: str) -> bytes:
        raise LookupError(network_file_id)


@pytest.fixture
def pipeline(engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings) -> Pipeline:
    return Pipeline(engine, memory_bus, settings, responder=None)


async def private_reply_and_another(
    engine: AsyncEngine, bus: MemoryBus, pipeline: Pipeline
) -> tuple[int, list[BusEntry]]:
    """The commenter taken to private, and a second reply queued at once: the private
    conversation and the two sends, as the sender's batch."""
    moved, agent_id = await facebook_commenter_moved_to_private(engine, bus, pipeline, AUTHOR)
    await reply_as_agent(engine, bus, moved.conversation_id, agent_id, "Are you there?")
    queued = drain_outbound(bus, Network.FACEBOOK)
    return moved.conversation_id, [BusEntry(str(n), encode(m)) for n, m in enumerate(queued)]


async def test_the_conversation_goes_under_the_chat_the_network_named_and_its_next_reply_too(
    engine: AsyncEngine, memory_bus: MemoryBus, pipeline: Pipeline
) -> None:
    private, batch = await private_reply_and_another(engine, memory_bus, pipeline)
    channel = PrivateReplies()

    await Sender(engine, memory_bus, channel, MemoryRateLimiter()).handle(batch)

    assert channel.sent == [(str(AUTHOR), "Your order number?"), (PSID, "Are you there?")]
    async with engine.connect() as conn:
        chat = await conn.scalar(
            sa.select(conversations.c.chat_id).where(conversations.c.id == private)
        )
    assert chat == PSID


async def test_a_conversation_merged_into_the_persons_own_is_announced_with_where_it_went(
    engine: AsyncEngine, memory_bus: MemoryBus, pipeline: Pipeline
) -> None:
    await pipeline.handle(entries(inbound(PSID, 1, "Hello, shop", network=Network.FACEBOOK)))
    async with engine.connect() as conn:
        earlier = await conn.scalar(sa.select(conversations.c.id))
    private, batch = await private_reply_and_another(engine, memory_bus, pipeline)
    sender = Sender(engine, memory_bus, PrivateReplies(), MemoryRateLimiter())

    async with memory_bus.subscribe_events() as events:
        await sender.handle(batch[:1])
        heard = [await asyncio.wait_for(anext(aiter(events)), 5) for _ in range(2)]

    assert [(e.kind, e.conversation_id) for e in heard] == [
        (EventKind.MESSAGE_STATUS, earlier),
        (EventKind.CONVERSATION_MERGED, private),
    ]
    assert heard[1].data == {"into": earlier}
