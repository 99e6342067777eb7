"""The views' counts, shared by the pages asking at the same moment: one count for all of them,
never one that finished before a page asked, each agent's own "mine" still their own."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import ConversationState, Network
from bridge.inbox.agents import add_agent
from bridge.inbox.view_counts import Group, SharedCounts
from bridge.inbox.views import InboxQuery, View, inbox
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations, utcnow
from tests.factories import entries, inbound

SLA = dict.fromkeys(Network, 30)
GROUPS = [Group(ConversationState.WAITING, None, Network.TELEGRAM, "ru", 3)]


class SlowCount:
    """A count that takes a moment, and how many times it was made."""

    def __init__(self, result: list[Group] | Exception = GROUPS) -> None:
        self.made = 0
        self.result = result

    async def __call__(self) -> list[Group]:
        self.made += 1
        await asyncio.sleep(0.05)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


async def test_pages_asking_at_the_same_moment_share_one_count() -> None:
    shared, count = SharedCounts(max_age_s=10), SlowCount()

    answers = await asyncio.gather(*(shared.groups("open", count) for _ in range(5)))

    assert answers == [GROUPS] * 5
    assert count.made == 1


async def test_a_finished_count_is_not_served_again() -> None:
    shared, count = SharedCounts(max_age_s=10), SlowCount()

    await shared.groups("open", count)
    await shared.groups("open", count)

    assert count.made == 2


async def test_a_count_begun_longer_ago_than_the_limit_is_not_joined() -> None:
    shared, count = SharedCounts(max_age_s=0.01), SlowCount()
    first = asyncio.ensure_future(shared.groups("open", count))
    await asyncio.sleep(0.02)

    await shared.groups("open", count)

    assert count.made == 2
    await first


async def test_other_filters_are_counted_on_their_own() -> None:
    shared, count = SharedCounts(max_age_s=10), SlowCount()

    await asyncio.gather(shared.groups("open", count), shared.groups("label 3", count))

    assert count.made == 2


async def test_a_page_that_goes_away_does_not_cancel_the_count_others_wait_for() -> None:
    shared, count = SharedCounts(max_age_s=10), SlowCount()
    leaving = asyncio.ensure_future(shared.groups("open", count))
    staying = asyncio.ensure_future(shared.groups("open", count))
    await asyncio.sleep(0)

    leaving.cancel()

    assert await staying == GROUPS


async def test_a_failed_count_fails_the_pages_waiting_and_the_next_page_counts_again() -> None:
    shared, failing = SharedCounts(max_age_s=10), SlowCount(RuntimeError("database down"))
    with pytest.raises(RuntimeError):
        await shared.groups("open", failing)

    assert await shared.groups("open", SlowCount()) == GROUPS


async def test_two_agents_sharing_a_count_each_see_their_own_conversations_as_mine(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    anna = await add_agent(engine, "anna", "a long password for anna")
    boris = await add_agent(engine, "boris", "a long password for boris")
    pipeline = Pipeline(engine, memory_bus, settings, responder=None)
    await pipeline.handle(entries(*(inbound(chat, 1, f"q{chat}") for chat in range(1, 7))))
    c = conversations.c
    async with engine.begin() as conn:
        for agent, chats in ((anna, ["1"]), (boris, ["2", "3"])):
            await conn.execute(
                sa.update(conversations)
                .where(c.chat_id.in_(chats))
                .values(assignee_id=agent.id, state=ConversationState.ASSIGNED)
            )
    shared = SharedCounts(max_age_s=10)
    query = InboxQuery(View.MINE)

    for_anna, for_boris = await asyncio.gather(
        inbox(engine, anna.id, query, SLA, utcnow(), shared),
        inbox(engine, boris.id, query, SLA, utcnow(), shared),
    )

    assert (for_anna.counts[View.MINE], for_boris.counts[View.MINE]) == (1, 2)
    assert for_anna.counts == {**for_boris.counts, View.MINE: 1}
    assert (for_anna.counts[View.WAITING], for_anna.counts[View.OPEN]) == (3, 6)
