"""One person across networks: "same person as ..." and its undo, in the store and the inbox."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import Network
from bridge.inbox.customers import LinkRefused, find_customers, link_customers, undo_link
from bridge.inbox.views import conversation_view
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations, identities
from tests.factories import entries, inbound


@pytest.fixture
def pipeline(engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings) -> Pipeline:
    return Pipeline(engine, memory_bus, settings, responder=None)


async def conversation_and_customer(
    engine: AsyncEngine, network: Network, chat: str
) -> tuple[int, int]:
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                sa.select(conversations.c.id, conversations.c.customer_id).where(
                    conversations.c.network == network, conversations.c.chat_id == chat
                )
            )
        ).one()
    return row.id, row.customer_id


async def two_customers(
    pipeline: Pipeline, engine: AsyncEngine
) -> tuple[tuple[int, int], tuple[int, int]]:
    await pipeline.handle(entries(inbound(1, 1, "Telegram: where is my order?")))
    await pipeline.handle(entries(inbound(2, 1, "VK: it is me again", network=Network.VK)))
    return (
        await conversation_and_customer(engine, Network.TELEGRAM, "1"),
        await conversation_and_customer(engine, Network.VK, "2"),
    )


async def test_a_linked_customer_shows_one_history_across_networks(
    pipeline: Pipeline, engine: AsyncEngine, memory_bus: MemoryBus
) -> None:
    (telegram, kept), (_, merged) = await two_customers(pipeline, engine)

    await link_customers(engine, memory_bus, kept, merged, None)

    view = await conversation_view(engine, telegram)
    assert view is not None
    assert view.networks == [Network.TELEGRAM, Network.VK]
    texts = [m.text for m in view.history if m.author_kind == "customer"]
    assert texts == ["Telegram: where is my order?", "VK: it is me again"]


async def test_undo_puts_back_exactly_what_the_link_moved(
    pipeline: Pipeline, engine: AsyncEngine, memory_bus: MemoryBus
) -> None:
    (telegram, kept), (_, merged) = await two_customers(pipeline, engine)
    link = await link_customers(engine, memory_bus, kept, merged, None)
    # written after the link: the VK identity's new conversation must go back with it
    await pipeline.handle(entries(inbound(2, 2, "and one more", network=Network.VK)))

    await undo_link(engine, memory_bus, link)

    assert (await conversation_and_customer(engine, Network.VK, "2"))[1] == merged
    async with engine.connect() as conn:
        owners = dict(
            (await conn.execute(sa.select(identities.c.network, identities.c.customer_id))).all()
        )
    assert owners == {Network.TELEGRAM: kept, Network.VK: merged}
    view = await conversation_view(engine, telegram)
    assert view is not None and view.networks == [Network.TELEGRAM]


async def test_a_link_cannot_be_undone_twice(
    pipeline: Pipeline, engine: AsyncEngine, memory_bus: MemoryBus
) -> None:
    (_, kept), (_, merged) = await two_customers(pipeline, engine)
    link = await link_customers(engine, memory_bus, kept, merged, None)
    await undo_link(engine, memory_bus, link)

    with pytest.raises(LinkRefused):
        await undo_link(engine, memory_bus, link)


async def test_a_customer_cannot_be_linked_with_themselves(
    pipeline: Pipeline, engine: AsyncEngine, memory_bus: MemoryBus
) -> None:
    (_, kept), _ = await two_customers(pipeline, engine)

    with pytest.raises(LinkRefused):
        await link_customers(engine, memory_bus, kept, kept, None)


async def test_customers_are_found_by_name_or_network_user_id(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    (_, kept), (_, merged) = await two_customers(pipeline, engine)

    by_name = await find_customers(engine, "customer 2", other_than=kept)
    by_id = await find_customers(engine, "2", other_than=kept)
    not_self = await find_customers(engine, "Customer 1", other_than=kept)

    assert [c.customer_id for c in by_name] == [merged]
    assert [(c.customer_id, c.networks) for c in by_id] == [(merged, [Network.VK])]
    assert not_self == []


async def test_a_name_with_sql_wildcards_is_matched_literally(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await two_customers(pipeline, engine)

    assert await find_customers(engine, "%", other_than=0) == []
