"""The conversation list pages through any number of conversations with a keyset cursor: every
conversation once, in the view's order, the counts exact."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import ConversationState, Network
from bridge.inbox.paging import MAX_PAGE_SIZE, Cursor, CursorError, page_size
from bridge.inbox.views import Inbox, InboxQuery, View, inbox
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations, utcnow
from tests.factories import entries, inbound

SLA = dict.fromkeys(Network, 30)


async def waiting(engine: AsyncEngine, bus: MemoryBus, settings: Settings, count: int) -> None:
    """`count` conversations waiting for an agent (no bot: every one is handed off)."""
    pipeline = Pipeline(engine, bus, settings, responder=None)
    await pipeline.handle(entries(*(inbound(chat, 1, f"q{chat}") for chat in range(1, count + 1))))


async def every_page(engine: AsyncEngine, view: View, limit: int) -> list[Inbox]:
    pages = [await inbox(engine, 0, InboxQuery(view, limit=limit), SLA, utcnow())]
    while pages[-1].next_page is not None:
        query = InboxQuery(view, limit=limit, after=pages[-1].next_page)
        pages.append(await inbox(engine, 0, query, SLA, utcnow()))
    return pages


async def test_paging_through_lists_every_conversation_once_in_order(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await waiting(engine, memory_bus, settings, 250)

    pages = await every_page(engine, View.WAITING, limit=100)

    ids = [row.id for page in pages for row in page.rows]
    assert [len(page.rows) for page in pages] == [100, 100, 50]
    assert len(set(ids)) == 250
    first = await inbox(engine, 0, InboxQuery(View.WAITING, limit=250), SLA, utcnow())
    assert ids == [row.id for row in first.rows]
    assert {page.counts[View.WAITING] for page in pages} == {250}


async def test_the_last_page_says_no_page_follows(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await waiting(engine, memory_bus, settings, 3)

    result = await inbox(engine, 0, InboxQuery(View.WAITING, limit=3), SLA, utcnow())

    assert len(result.rows) == 3
    assert result.next_page is None


async def test_resolved_conversations_page_latest_first(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await waiting(engine, memory_bus, settings, 30)
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    async with engine.begin() as conn:
        ids = (await conn.execute(sa.select(conversations.c.id))).scalars().all()
        for n, cid in enumerate(ids):
            # pairs share a moment: the id breaks the tie
            await conn.execute(
                sa.update(conversations)
                .where(conversations.c.id == cid)
                .values(state=ConversationState.RESOLVED, resolved_at=start + dt.timedelta(n // 2))
            )

    pages = await every_page(engine, View.RESOLVED, limit=7)

    listed = [row.id for page in pages for row in page.rows]
    assert listed == sorted(ids, key=lambda cid: (ids.index(cid) // 2, cid), reverse=True)


async def test_a_conversation_leaving_the_view_does_not_shift_the_next_page(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await waiting(engine, memory_bus, settings, 20)
    first = await inbox(engine, 0, InboxQuery(View.WAITING, limit=10), SLA, utcnow())
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(conversations)
            .where(conversations.c.id == first.rows[0].id)
            .values(state=ConversationState.RESOLVED, resolved_at=utcnow())
        )

    query = InboxQuery(View.WAITING, limit=10, after=first.next_page)
    second = await inbox(engine, 0, query, SLA, utcnow())

    everyone = await inbox(engine, 0, InboxQuery(View.WAITING, limit=100), SLA, utcnow())
    assert [row.id for row in second.rows] == [row.id for row in everyone.rows][9:]


def test_a_cursor_reads_back_as_it_was_given() -> None:
    cursor = Cursor(dt.datetime(2026, 12, 6, 3, 4, 5, 678901, tzinfo=dt.UTC), 42)

    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize(
    "text", ["", "abc", "bm90IGpzb24", "WyJ4IiwxXQ", "WyIyMDI2LTAxLTAxVDAwOjAwOjAwIiwxXQ"]
)
def test_a_cursor_the_list_did_not_give_is_refused(text: str) -> None:
    # not base64 JSON, a word, a bad date, a date without its time zone
    with pytest.raises(CursorError):
        Cursor.decode(text)


@pytest.mark.parametrize("text", ["0", "-1", str(MAX_PAGE_SIZE + 1), "ten"])
def test_a_page_size_out_of_range_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="limit"):
        page_size(text)
