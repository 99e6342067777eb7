"""Public threads in the pipeline: one conversation per post, each comment with its author, the
bot silent in public unless an admin lets it answer there."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import ConversationState, HandoffReason, Network
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations, identities, messages
from tests.factories import (
    ScriptedResponder,
    comment,
    drain_outbound,
    entries,
    inbound,
    permission,
)

POST = "wall-1_5"


@pytest.fixture
def pipeline(engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings) -> Pipeline:
    """A bot sure of every answer: whatever it leaves unanswered, it left on purpose."""
    return Pipeline(engine, memory_bus, settings, ScriptedResponder(0.99))


async def select(
    engine: AsyncEngine, query: sa.Select[tuple[object, ...]]
) -> list[sa.Row[tuple[object, ...]]]:
    async with engine.connect() as conn:
        return list((await conn.execute(query)).all())


async def test_a_comment_opens_a_public_thread_that_keeps_its_post(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(comment(POST, 501, 10)))

    (thread,) = await select(engine, sa.select(conversations))
    assert (thread.network, thread.chat_id, thread.public) == (Network.VK, POST, True)
    assert (thread.post_text, thread.post_url) == (f"the post {POST}", f"https://vk.com/{POST}")


async def test_comments_under_one_post_are_one_thread(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(comment(POST, 501, 10), comment(POST, 502, 11)))
    await pipeline.handle(entries(comment(POST, 503, 12), comment("wall-1_6", 501, 13)))

    threads = await select(engine, sa.select(conversations.c.chat_id).order_by("id"))
    assert [t.chat_id for t in threads] == [POST, "wall-1_6"]


async def test_each_comment_keeps_its_own_author(pipeline: Pipeline, engine: AsyncEngine) -> None:
    await pipeline.handle(entries(comment(POST, 501, 10), comment(POST, 502, 11, reply_to=10)))

    authors = await select(
        engine,
        sa.select(identities.c.external_user_id, messages.c.reply_to_network_id)
        .join(identities, identities.c.id == messages.c.author_identity_id)
        .order_by(messages.c.id),
    )
    assert [(a.external_user_id, a.reply_to_network_id) for a in authors] == [
        ("501", None),
        ("502", f"{POST}:10"),
    ]


async def test_the_bot_does_not_answer_in_public_by_default(
    pipeline: Pipeline, engine: AsyncEngine, memory_bus: MemoryBus
) -> None:
    await pipeline.handle(entries(comment(POST, 501, 10)))

    (thread,) = await select(engine, sa.select(conversations))
    assert (thread.state, thread.handoff_reason) == (
        ConversationState.WAITING,
        HandoffReason.PUBLIC,
    )
    # not even "an agent will answer you soon": that is for one customer, not for everyone
    assert drain_outbound(memory_bus, Network.VK) == []


async def test_the_bot_answers_in_public_where_an_admin_allows_it(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    allowed = settings.model_copy(update={"public_auto_answer_networks": [Network.VK]})
    pipeline = Pipeline(engine, memory_bus, allowed, ScriptedResponder(0.99))

    await pipeline.handle(entries(comment(POST, 501, 10)))

    (answer,) = drain_outbound(memory_bus, Network.VK)
    assert (answer.public, answer.in_reply_to, answer.chat_id) == (True, f"{POST}:10", POST)
    # the answer alone: a comment has no "did this help?" buttons
    assert (answer.text, answer.buttons) == ("answer to where is my order?", [])


async def test_where_allowed_the_same_threshold_applies(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    allowed = settings.model_copy(update={"public_auto_answer_networks": [Network.VK]})
    pipeline = Pipeline(engine, memory_bus, allowed, ScriptedResponder(0.2))

    await pipeline.handle(entries(comment(POST, 501, 10)))

    (thread,) = await select(engine, sa.select(conversations))
    assert thread.handoff_reason == HandoffReason.LOW_CONFIDENCE
    assert drain_outbound(memory_bus, Network.VK) == []


async def test_an_edited_comment_changes_its_message(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(comment(POST, 501, 10, "where is it?")))
    await pipeline.handle(entries(comment(POST, 501, 10, "found it", kind="edit")))

    (stored,) = await select(engine, sa.select(messages.c.text, messages.c.edited_at))
    assert stored.text == "found it" and stored.edited_at is not None


async def test_a_deleted_comment_is_marked_deleted_and_kept(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(comment(POST, 501, 10, "where is it?")))
    await pipeline.handle(entries(comment(POST, 501, 10, "", kind="delete")))

    (stored,) = await select(engine, sa.select(messages.c.text, messages.c.deleted_at))
    assert stored.text == "where is it?" and stored.deleted_at is not None


async def test_a_restored_comment_is_no_longer_deleted_nor_marked_edited(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(comment(POST, 501, 10, "where is it?")))
    await pipeline.handle(entries(comment(POST, 501, 10, "", kind="delete")))
    await pipeline.handle(entries(comment(POST, 501, 10, "where is it?", kind="edit")))

    (stored,) = await select(
        engine, sa.select(messages.c.text, messages.c.deleted_at, messages.c.edited_at)
    )
    assert (stored.text, stored.deleted_at, stored.edited_at) == ("where is it?", None, None)


async def test_whether_a_person_allows_private_messages_is_kept_as_they_last_said(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(permission(501, allows=True), permission(502, allows=True)))
    await pipeline.handle(entries(permission(502, allows=False)))

    found = await select(
        engine,
        sa.select(identities.c.external_user_id, identities.c.allows_private).order_by(
            identities.c.external_user_id
        ),
    )
    assert [(f.external_user_id, f.allows_private) for f in found] == [
        ("501", True),
        ("502", False),
    ]
    assert await select(engine, sa.select(conversations)) == []


async def test_a_private_message_of_a_commenter_opens_a_private_conversation(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    """The same person, one identity: their comment in public, their message in private."""
    await pipeline.handle(entries(comment(POST, 501, 10), inbound(501, 1, network=Network.VK)))

    threads = await select(
        engine, sa.select(conversations.c.public, conversations.c.identity_id).order_by("id")
    )
    assert [t.public for t in threads] == [True, False]
    assert threads[0].identity_id == threads[1].identity_id
