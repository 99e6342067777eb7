"""Public threads and private conversations apart in the figures, the tables (CSV) and the weekly
report: volume, first response, resolved in public, moved to private; on a small known week
whose figures are worked out by hand in `public_week`."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import AuthorKind, ConversationState, Network
from bridge.inbox.agents import add_agent
from bridge.inbox.public import move_to_private
from bridge.pipeline.worker import Pipeline
from bridge.reports.figures import (
    Durations,
    Period,
    PlaceFigures,
    Report,
    compute,
    tables,
)
from bridge.reports.weekly import WeeklyReport, render_html
from bridge.settings import Settings
from bridge.store.models import conversations, messages, utcnow
from tests.factories import comment, entries
from tests.known_week import SLA, WEEK, Week, at

TG, VK = Network.TELEGRAM, Network.VK
RESOLVED, WAITING, ASSIGNED = (
    ConversationState.RESOLVED,
    ConversationState.WAITING,
    ConversationState.ASSIGNED,
)
MINUTE = 60.0


async def public_week(engine: AsyncEngine) -> None:
    """Started in the week, each handed off when it started:

    | # | place   | network  | customers' messages | agent's first reply | state    |
    |---|---------|----------|---------------------|---------------------|----------|
    | 1 | public  | vk       | 2                   | Vera, 10 min        | resolved |
    | 2 | public  | vk       | 1                   | none                | waiting  |
    | 3 | private | telegram | 1                   | Vera, 30 min        | resolved |
    | 4 | private | vk       | 0                   | Vera, moving #1's   | assigned |
    |   |         |          |                     | first commenter     |          |

    So public: 2 conversations, 3 messages, 1 resolved, first response median 10 min, 1 moved
    to private; private: 2 conversations, 1 message, 1 resolved, first response 30 min."""
    week = Week(engine)
    vera = await week.agent("Vera")
    first = await week.conversation(VK, at(0, 9), RESOLVED, at(0, 9), "public")
    second = await week.conversation(VK, at(1, 9), WAITING, at(1, 9), "public")
    third = await week.conversation(TG, at(2, 9), RESOLVED, at(2, 9), "asked_for_human")
    fourth = await week.conversation(VK, at(0, 10), ASSIGNED)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(conversations)
            .where(conversations.c.id.in_([first, second]))
            .values(public=True)
        )
    asked = await week.message(first, VK, AuthorKind.CUSTOMER, at(0, 9))
    await week.message(first, VK, AuthorKind.CUSTOMER, at(0, 9, 5))
    await week.message(first, VK, AuthorKind.AGENT, at(0, 9, 10), vera)
    await week.message(second, VK, AuthorKind.CUSTOMER, at(1, 9))
    await week.message(third, TG, AuthorKind.CUSTOMER, at(2, 9))
    await week.message(third, TG, AuthorKind.AGENT, at(2, 9, 30), vera)
    moved = await week.message(fourth, VK, AuthorKind.AGENT, at(0, 10), vera)
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(messages).where(messages.c.id == moved).values(in_reply_to_id=asked)
        )


@pytest.fixture
async def report(engine: AsyncEngine) -> Report:
    await public_week(engine)
    return await compute(engine, WEEK, SLA)


def test_public_threads_and_private_conversations_are_counted_apart(report: Report) -> None:
    assert report.by_place == [
        PlaceFigures("public", 2, 3, 1, Durations(1, 10 * MINUTE, 10 * MINUTE), 1),
        PlaceFigures("private", 2, 1, 1, Durations(1, 30 * MINUTE, 30 * MINUTE), 0),
    ]


async def test_a_network_filter_counts_that_networks_threads_and_conversations_only(
    engine: AsyncEngine, report: Report
) -> None:
    on_telegram = await compute(engine, Period(WEEK.start, WEEK.end, TG), SLA)

    assert on_telegram.by_place == [
        PlaceFigures("public", 0, 0, 0, Durations(0, None, None), 0),
        PlaceFigures("private", 1, 1, 1, Durations(1, 30 * MINUTE, 30 * MINUTE), 0),
    ]


def test_the_places_table_exports_shares_and_minutes(report: Report) -> None:
    assert tables(report)["places"] == (
        [
            "place",
            "conversations",
            "customer_messages",
            "resolved",
            "resolved_rate",
            "first_response_median_min",
            "moved_to_private",
        ],
        [["public", 2, 3, 1, 0.5, 10.0, 1], ["private", 2, 1, 1, 0.5, 30.0, 0]],
    )


def test_the_weekly_report_shows_public_and_private_in_its_json_and_its_page(
    report: Report,
) -> None:
    weekly = WeeklyReport(report, 0.0, "RUB")

    data = weekly.as_json()
    page = render_html(weekly)

    assert data["places"][0]["moved_to_private"] == 1
    assert "<h2>Public threads and private conversations</h2>" in page
    assert (
        "<td>public</td><td>2</td><td>3</td><td>1</td><td>0.5</td><td>10.0</td><td>1</td>" in page
    )


async def test_an_agent_taking_a_commenter_to_private_is_counted_as_moved_to_private(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    await Pipeline(engine, memory_bus, settings, None).handle(entries(comment("wall-1_5", 7, 1)))
    agent = await add_agent(engine, "vera", "correct horse battery")
    async with engine.connect() as conn:
        thread, asked = (
            await conn.execute(sa.select(messages.c.conversation_id, messages.c.id))
        ).one()

    await move_to_private(engine, memory_bus, thread, asked, agent.id, "Напишу вам в личку")
    now = utcnow()
    report = await compute(
        engine, Period(now - dt.timedelta(hours=1), now + dt.timedelta(hours=1)), SLA
    )

    assert [(row.place, row.moved_to_private) for row in report.by_place] == [
        ("public", 1),
        ("private", 0),
    ]
