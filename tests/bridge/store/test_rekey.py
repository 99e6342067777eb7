"""A Facebook commenter's private conversation keyed anew by the PSID the private reply reached
(docs/networks.md 3.4), on both stores: the person's Messenger messages land in it, as the same
customer; one they already had is merged into, once, whatever is tried again."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import ConversationState, Direction, Network
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import (
    conversations,
    customer_links,
    identities,
    messages,
    utcnow,
)
from bridge.store.rekey import Rekeyed, merged_into, rekey_private_chat
from tests.factories import comment, entries, facebook_commenter_moved_to_private, inbound

FB = Network.FACEBOOK
AUTHOR = 880000000000001  # the commenter's id in the Page's feed change
PSID = "501"  # the same person's id in Messenger, which the private reply answers with


@pytest.fixture
def pipeline(engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings) -> Pipeline:
    return Pipeline(engine, memory_bus, settings, responder=None)


async def moved_to_private(engine: AsyncEngine, bus: MemoryBus, pipeline: Pipeline) -> int:
    """The commenter AUTHOR taken to private by an agent: the private conversation's id."""
    moved, _ = await facebook_commenter_moved_to_private(engine, bus, pipeline, AUTHOR)
    return moved.conversation_id


async def rekey(engine: AsyncEngine, conversation_id: int, chat_id: str = PSID) -> Rekeyed:
    async with engine.begin() as conn:
        return await rekey_private_chat(conn, conversation_id, chat_id, utcnow())


async def rows(engine: AsyncEngine, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(row) for row in (await conn.execute(query)).all()]


async def private_conversations(engine: AsyncEngine) -> list[tuple[Any, ...]]:
    c = conversations.c
    return await rows(
        engine, sa.select(c.id, c.chat_id, c.customer_id).where(sa.not_(c.public)).order_by(c.id)
    )


async def customers_of_identities(engine: AsyncEngine) -> set[int]:
    return {row[0] for row in await rows(engine, sa.select(identities.c.customer_id))}


async def test_the_private_conversation_goes_under_the_chat_the_network_named(
    engine: AsyncEngine, memory_bus: MemoryBus, pipeline: Pipeline
) -> None:
    private = await moved_to_private(engine, memory_bus, pipeline)

    rekeyed = await rekey(engine, private)

    assert rekeyed == Rekeyed(private)
    ((_, chat_id, _),) = await private_conversations(engine)
    assert chat_id == PSID


async def test_the_psid_is_an_identity_of_the_commenters_customer(
    engine: AsyncEngine, memory_bus: MemoryBus, pipeline: Pipeline
) -> None:
    private = await moved_to_private(engine, memory_bus, pipeline)

    await rekey(engine, private)

    i = identities.c
    found = await rows(engine, sa.select(i.external_user_id, i.customer_id).order_by(i.id))
    assert [user for user, _ in found] == [str(AUTHOR), PSID]
    assert len({customer for _, customer in found}) == 1


async def test_the_persons_messenger_message_lands_in_it_as_the_same_customer(
    engine: AsyncEngine, memory_bus: MemoryBus, pipeline: Pipeline
) -> None:
    private = await moved_to_private(engine, memory_bus, pipeline)
    await rekey(engine, private)

    await pipeline.handle(entries(inbound(PSID, 1, "Number 123", network=FB)))

    m = messages.c
    written = await rows(
        engine, sa.select(m.conversation_id, m.text).where(m.direction == Direction.INBOUND)
    )
    assert (private, "Number 123") in written
    assert len(await private_conversations(engine)) == 1
    assert len(await customers_of_identities(engine)) == 1


async def test_keying_it_again_changes_nothing(
    engine: AsyncEngine, memory_bus: MemoryBus, pipeline: Pipeline
) -> None:
    private = await moved_to_private(engine, memory_bus, pipeline)
    await rekey(engine, private)
    before = await private_conversations(engine), await rows(engine, sa.select(identities))

    assert await rekey(engine, private) == Rekeyed(private)

    assert (
        await private_conversations(engine),
        await rows(engine, sa.select(identities)),
    ) == before


async def test_a_conversation_the_person_already_had_under_the_psid_takes_it_in(
    engine: AsyncEngine, memory_bus: MemoryBus, pipeline: Pipeline
) -> None:
    await pipeline.handle(entries(inbound(PSID, 1, "Hello, shop", network=FB)))
    ((earlier, _, _),) = await private_conversations(engine)
    private = await moved_to_private(engine, memory_bus, pipeline)

    rekeyed = await rekey(engine, private)

    assert rekeyed == Rekeyed(earlier, merged_from=private)
    ((only, chat_id, _),) = await private_conversations(engine)
    assert (only, chat_id) == (earlier, PSID)
    m = messages.c
    texts = await rows(engine, sa.select(m.text).where(m.conversation_id == earlier).order_by(m.id))
    assert (texts[0], texts[-1]) == (("Hello, shop",), ("Your order number?",))


async def test_merged_the_person_is_one_customer_by_a_link_an_agent_can_undo(
    engine: AsyncEngine, memory_bus: MemoryBus, pipeline: Pipeline
) -> None:
    await pipeline.handle(entries(inbound(PSID, 1, "Hello, shop", network=FB)))
    private = await moved_to_private(engine, memory_bus, pipeline)

    await rekey(engine, private)

    (customer,) = await customers_of_identities(engine)
    link = customer_links.c
    ((kept, agent),) = await rows(engine, sa.select(link.customer_id, link.agent_id))
    assert (kept, agent) == (customer, None)
    owners = await rows(engine, sa.select(conversations.c.customer_id))
    assert {owner for (owner,) in owners} == {customer}


async def test_merged_it_is_handled_by_the_agent_who_moved_the_person(
    engine: AsyncEngine, memory_bus: MemoryBus, pipeline: Pipeline
) -> None:
    await pipeline.handle(entries(inbound(PSID, 1, "Hello, shop", network=FB)))
    private = await moved_to_private(engine, memory_bus, pipeline)
    c = conversations.c
    ((state, assignee),) = await rows(
        engine, sa.select(c.state, c.assignee_id).where(c.id == private)
    )

    rekeyed = await rekey(engine, private)

    found = await rows(
        engine, sa.select(c.state, c.assignee_id).where(c.id == rekeyed.conversation_id)
    )
    assert found == [(ConversationState.ASSIGNED, assignee)] and state == ConversationState.ASSIGNED


async def test_the_merged_conversations_address_leads_where_it_went_and_keying_it_again_too(
    engine: AsyncEngine, memory_bus: MemoryBus, pipeline: Pipeline
) -> None:
    await pipeline.handle(entries(inbound(PSID, 1, "Hello, shop", network=FB)))
    ((earlier, _, _),) = await private_conversations(engine)
    private = await moved_to_private(engine, memory_bus, pipeline)
    await rekey(engine, private)

    again = await rekey(engine, private)

    async with engine.connect() as conn:
        assert await merged_into(conn, private) == earlier
    assert again == Rekeyed(earlier)
    assert len(await rows(engine, sa.select(customer_links))) == 1


async def test_a_public_thread_is_never_keyed_anew(
    engine: AsyncEngine, memory_bus: MemoryBus, pipeline: Pipeline
) -> None:
    await pipeline.handle(entries(comment("post:1_5", AUTHOR, 1, "Size M?", network=FB)))
    c = conversations.c
    ((thread, chat_id),) = await rows(engine, sa.select(c.id, c.chat_id))

    assert await rekey(engine, thread) == Rekeyed(thread)

    assert await rows(engine, sa.select(c.id, c.chat_id)) == [(thread, chat_id)]
