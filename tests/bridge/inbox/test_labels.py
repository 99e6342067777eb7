"""Labels: admins keep them (a unique name, a colour), agents put them on conversations and take
them off, open pages hear of it, and the inbox's list filters by them with exact counts and
pages that still join up."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import ConversationState, EventKind, Network
from bridge.inbox.actions import ConversationNotFound
from bridge.inbox.agents import add_agent
from bridge.inbox.labels import (
    DARK_INK,
    LIGHT_INK,
    LabelError,
    LabelNotFound,
    add_label,
    change_label,
    create_label,
    delete_label,
    ink_for,
    label_usage,
    list_labels,
    remove_label,
    set_labels,
)
from bridge.inbox.views import InboxQuery, View, conversation_view, inbox
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversation_labels, conversations, utcnow
from tests.factories import entries, inbound

SLA = dict.fromkeys(Network, 30)


async def waiting(
    engine: AsyncEngine, bus: MemoryBus, settings: Settings, count: int, **kwargs: object
) -> list[int]:
    """`count` conversations waiting for an agent, oldest first."""
    pipeline = Pipeline(engine, bus, settings, responder=None)
    for chat in range(1, count + 1):
        await pipeline.handle(entries(inbound(chat, 1, f"q{chat}", **kwargs)))  # type: ignore[arg-type]
    async with engine.connect() as conn:
        ids = await conn.scalars(sa.select(conversations.c.id).order_by(conversations.c.id))
        return list(ids)


async def test_an_admin_creates_a_label_with_its_colour_in_lower_case(engine: AsyncEngine) -> None:
    label = await create_label(engine, "  Refund   request ", "#FFAA00")

    assert (label.name, label.colour) == ("Refund request", "#ffaa00")
    assert await list_labels(engine) == [label]


async def test_the_labels_are_listed_by_name_whatever_their_case(engine: AsyncEngine) -> None:
    for name in ("bug", "Angry", "VIP"):
        await create_label(engine, name, "#000000")

    assert [label.name for label in await list_labels(engine)] == ["Angry", "bug", "VIP"]


async def test_a_name_taken_in_another_case_is_refused(engine: AsyncEngine) -> None:
    await create_label(engine, "Возврат", "#ff0000")

    with pytest.raises(LabelError, match="exists already"):
        await create_label(engine, "ВОЗВРАТ", "#00ff00")


async def test_a_colour_that_is_not_rrggbb_is_refused(engine: AsyncEngine) -> None:
    for colour in ("red", "#fff", "#12345g", "#1234567", "#123456\n"):
        with pytest.raises(LabelError, match="#rrggbb"):
            await create_label(engine, "bug", colour)


async def test_a_blank_too_long_or_unprintable_name_is_refused(engine: AsyncEngine) -> None:
    for name in ("", "   ", "x" * 51, "nul\x00in it"):
        with pytest.raises(LabelError, match="name"):
            await create_label(engine, name, "#000000")


async def test_renaming_and_recolouring_keeps_the_label_on_its_conversations(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    (cid,) = await waiting(engine, memory_bus, settings, 1)
    label = await create_label(engine, "bug", "#ff0000")
    await add_label(engine, memory_bus, cid, label.id, None)

    changed = await change_label(engine, label.id, name="Defect", colour="#00AA00")

    assert (changed.name, changed.colour) == ("Defect", "#00aa00")
    view = await conversation_view(engine, cid)
    assert view is not None and view.labels == [changed]


async def test_renaming_onto_a_name_taken_is_refused(engine: AsyncEngine) -> None:
    await create_label(engine, "bug", "#ff0000")
    other = await create_label(engine, "idea", "#00ff00")

    with pytest.raises(LabelError, match="exists already"):
        await change_label(engine, other.id, name="BUG")


async def test_changing_or_deleting_a_label_that_does_not_exist_says_so(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(LabelNotFound):
        await change_label(engine, 999, colour="#000000")
    with pytest.raises(LabelNotFound):
        await delete_label(engine, 999)


async def test_deleting_a_label_takes_it_off_its_conversations(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    (cid,) = await waiting(engine, memory_bus, settings, 1)
    bug = await create_label(engine, "bug", "#ff0000")
    vip = await create_label(engine, "vip", "#0000ff")
    await set_labels(engine, memory_bus, cid, [bug.id, vip.id], None)

    await delete_label(engine, bug.id)

    view = await conversation_view(engine, cid)
    assert view is not None and view.labels == [vip]
    assert await label_usage(engine) == {vip.id: 1}


async def test_adding_a_label_twice_keeps_one_and_who_added_it_first(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    (cid,) = await waiting(engine, memory_bus, settings, 1)
    anna = await add_agent(engine, "anna", "correct horse battery")
    boris = await add_agent(engine, "boris", "correct horse battery")
    label = await create_label(engine, "bug", "#ff0000")

    await add_label(engine, memory_bus, cid, label.id, anna.id)
    carried = await add_label(engine, memory_bus, cid, label.id, boris.id)

    assert carried == [label]
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(conversation_labels.c.added_by))).all()
    assert rows == [(anna.id,)]


async def test_removing_a_label_the_conversation_does_not_carry_changes_nothing(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    (cid,) = await waiting(engine, memory_bus, settings, 1)
    label = await create_label(engine, "bug", "#ff0000")

    assert await remove_label(engine, memory_bus, cid, label.id) == []


async def test_setting_labels_gives_the_conversation_exactly_those(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    (cid,) = await waiting(engine, memory_bus, settings, 1)
    bug, vip, idea = [await create_label(engine, n, "#123456") for n in ("bug", "vip", "idea")]
    await set_labels(engine, memory_bus, cid, [bug.id, vip.id], None)

    carried = await set_labels(engine, memory_bus, cid, [vip.id, idea.id], None)

    assert carried == [idea, vip]


async def test_a_label_that_does_not_exist_is_refused_and_nothing_changes(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    (cid,) = await waiting(engine, memory_bus, settings, 1)
    label = await create_label(engine, "bug", "#ff0000")

    with pytest.raises(LabelNotFound):
        await set_labels(engine, memory_bus, cid, [label.id, 999], None)

    assert await label_usage(engine) == {}


async def test_labelling_a_conversation_that_does_not_exist_says_so(
    engine: AsyncEngine, memory_bus: MemoryBus
) -> None:
    label = await create_label(engine, "bug", "#ff0000")

    with pytest.raises(ConversationNotFound):
        await add_label(engine, memory_bus, 999, label.id, None)


async def test_a_label_change_is_announced_to_open_pages_and_a_no_op_is_not(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    (cid,) = await waiting(engine, memory_bus, settings, 1)
    label = await create_label(engine, "bug", "#ff0000")
    async with memory_bus.subscribe_events() as events:
        heard = aiter(events)
        await add_label(engine, memory_bus, cid, label.id, None)
        await add_label(engine, memory_bus, cid, label.id, None)  # no change: no event
        await remove_label(engine, memory_bus, cid, label.id)
        first = await asyncio.wait_for(anext(heard), 5)
        second = await asyncio.wait_for(anext(heard), 5)

    assert (first.kind, first.conversation_id, first.data) == (
        EventKind.CONVERSATION_LABELS,
        cid,
        {"label_ids": [label.id]},
    )
    assert second.data == {"label_ids": []}


@pytest.mark.parametrize(
    ("colour", "ink"),
    [("#ffffff", DARK_INK), ("#ffeb3b", DARK_INK), ("#1d2433", LIGHT_INK), ("#d93b3b", LIGHT_INK)],
)
def test_a_labels_name_is_written_in_the_ink_that_contrasts_more(colour: str, ink: str) -> None:
    assert ink_for(colour) == ink


async def test_the_list_filters_by_label_and_pages_through_every_labelled_conversation(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    ids = await waiting(engine, memory_bus, settings, 7)
    label = await create_label(engine, "bug", "#ff0000")
    labelled = ids[::2]  # 4 of 7
    for cid in labelled:
        await add_label(engine, memory_bus, cid, label.id, None)

    query = InboxQuery(View.WAITING, limit=3, label=label.id)
    pages = [await inbox(engine, 0, query, SLA, utcnow())]
    while (after := pages[-1].next_page) is not None:
        pages.append(await inbox(engine, 0, replace(query, after=after), SLA, utcnow()))

    assert [row.id for page in pages for row in page.rows] == labelled
    assert [len(page.rows) for page in pages] == [3, 1]
    assert all(row.labels == [label] for page in pages for row in page.rows)


async def test_the_counts_honour_the_label_and_the_label_counts_the_other_filters(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    ids = await waiting(engine, memory_bus, settings, 4)
    vk = (await waiting(engine, memory_bus, settings, 1, network=Network.VK))[-1]
    bug = await create_label(engine, "bug", "#ff0000")
    vip = await create_label(engine, "vip", "#0000ff")
    for cid in (ids[0], ids[1], vk):
        await add_label(engine, memory_bus, cid, bug.id, None)
    await add_label(engine, memory_bus, ids[2], vip.id, None)
    async with engine.begin() as conn:  # one bug resolved: out of the waiting view
        await conn.execute(
            sa.update(conversations)
            .where(conversations.c.id == ids[0])
            .values(state=ConversationState.RESOLVED)
        )

    result = await inbox(engine, 0, InboxQuery(View.WAITING, label=bug.id), SLA, utcnow())
    on_telegram = await inbox(
        engine, 0, InboxQuery(View.WAITING, network=Network.TELEGRAM), SLA, utcnow()
    )

    assert [row.id for row in result.rows] == [ids[1], vk]
    assert (result.counts[View.WAITING], result.counts[View.RESOLVED]) == (2, 1)
    assert result.by_network[Network.TELEGRAM] == 1
    assert result.by_label == {bug.id: 2, vip.id: 1}
    assert on_telegram.by_label == {bug.id: 1, vip.id: 1}


async def test_a_label_no_conversation_carries_lists_nothing(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await waiting(engine, memory_bus, settings, 2)
    label = await create_label(engine, "bug", "#ff0000")

    result = await inbox(engine, 0, InboxQuery(View.WAITING, label=label.id), SLA, utcnow())

    assert result.rows == []
    assert result.counts[View.WAITING] == 0
