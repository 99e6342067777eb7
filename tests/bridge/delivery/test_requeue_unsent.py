"""The embedded mode's outbound queue lives in memory: replies queued when the process died are
published again from the store when a sender starts, each once, and none already sent."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.delivery.sender import requeue_unsent
from bridge.domain import DeliveryStatus, Network
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import messages
from tests.factories import drain_outbound, entries, inbound


async def test_replies_left_queued_are_published_again_and_sent_ones_are_not(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await Pipeline(engine, memory_bus, settings, None).handle(
        entries(inbound(1, 1), inbound(2, 1), inbound(3, 1, network=Network.VK))
    )
    first, _ = drain_outbound(memory_bus, Network.TELEGRAM)  # the process died with these
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(messages)
            .where(messages.c.id == first.message_id)
            .values(delivery_status=DeliveryStatus.SENT)
        )
    restarted = MemoryBus(settings.inbound_shards)

    count = await requeue_unsent(engine, restarted, Network.TELEGRAM)

    again = drain_outbound(restarted, Network.TELEGRAM)
    assert count == 1 and [m.conversation_id for m in again] != [first.conversation_id]
    assert again[0].idempotency_key != first.idempotency_key
    assert drain_outbound(restarted, Network.VK) == [], "only the starting sender's network"
