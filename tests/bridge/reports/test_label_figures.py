"""Conversations per label in the figures, the tables (CSV) and the weekly report, on a small
known week whose figures are worked out by hand in `labelled_week`."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import ConversationState, Network
from bridge.inbox.labels import create_label, set_labels
from bridge.reports.figures import LabelCount, Period, Report, compute, tables
from bridge.reports.weekly import WeeklyReport, render_html
from tests.known_week import MONDAY, SLA, WEEK, Week, at

TG, VK = Network.TELEGRAM, Network.VK
RESOLVED, WAITING = ConversationState.RESOLVED, ConversationState.WAITING


async def labelled_week(engine: AsyncEngine) -> None:
    """Started in the week: #1 TG resolved (bug, vip), #2 TG waiting (bug), #3 VK resolved
    (bug), #4 TG assigned (vip), #5 TG no label; #6 TG resolved (bug) started the week before.
    "idea" is on no conversation. So: bug 3 conversations, 2 resolved; vip 2, 1 resolved."""
    week, bus = Week(engine), MemoryBus(shards=1)
    bug, vip, _idea = [await create_label(engine, n, "#123456") for n in ("bug", "vip", "idea")]
    carried = [
        (TG, at(0, 9), RESOLVED, [bug.id, vip.id]),
        (TG, at(1, 9), WAITING, [bug.id]),
        (VK, at(2, 9), RESOLVED, [bug.id]),
        (TG, at(3, 9), ConversationState.ASSIGNED, [vip.id]),
        (TG, at(4, 9), WAITING, []),
        (TG, MONDAY - dt.timedelta(hours=1), RESOLVED, [bug.id]),
    ]
    for network, created, state, label_ids in carried:
        cid = await week.conversation(network, created, state)
        await set_labels(engine, bus, cid, label_ids, None)


@pytest.fixture
async def report(engine: AsyncEngine) -> Report:
    await labelled_week(engine)
    return await compute(engine, WEEK, SLA)


def test_each_label_counts_the_conversations_started_in_the_period_and_those_resolved(
    report: Report,
) -> None:
    assert report.by_label == [LabelCount("bug", 3, 2), LabelCount("vip", 2, 1)]
    assert [row.resolved_rate for row in report.by_label] == [2 / 3, 0.5]


async def test_a_network_filter_counts_that_networks_conversations_only(
    engine: AsyncEngine, report: Report
) -> None:
    on_vk = await compute(engine, Period(WEEK.start, WEEK.end, VK), SLA)

    assert on_vk.by_label == [LabelCount("bug", 1, 1)]


def test_the_labels_table_exports_the_resolved_share_rounded(report: Report) -> None:
    assert tables(report)["labels"] == (
        ["label", "conversations", "resolved", "resolved_rate"],
        [["bug", 3, 2, 0.6667], ["vip", 2, 1, 0.5]],
    )


def test_the_weekly_report_shows_the_labels_in_its_json_and_its_page(report: Report) -> None:
    weekly = WeeklyReport(report, 0.0, "RUB")

    data = weekly.as_json()
    page = render_html(weekly)

    assert data["labels"] == [
        {"label": "bug", "conversations": 3, "resolved": 2, "resolved_rate": 0.6667},
        {"label": "vip", "conversations": 2, "resolved": 1, "resolved_rate": 0.5},
    ]
    assert "<h2>Conversations per label</h2>" in page
    assert "<td>bug</td><td>3</td><td>2</td><td>0.6667</td>" in page


async def test_a_period_without_labelled_conversations_lists_no_label(
    engine: AsyncEngine,
) -> None:
    assert (await compute(engine, WEEK, SLA)).by_label == []
