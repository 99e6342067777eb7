"""Each figure of the dashboard and the weekly report, on the known week of
tests/known_week.py: A answered by the bot, helped, closed; B the bot missed, Anna answered in
30 min; C asked for a person, Boris answered in 2 h (SLA breach); D still waiting at the end of
the week (breach); E next week, not counted."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import Network
from bridge.reports.figures import Period, Report, compute
from tests.known_week import SLA, WEEK, at, fill_known_week


@pytest.fixture
async def report(engine: AsyncEngine) -> Report:
    await fill_known_week(engine)
    return await compute(engine, WEEK, SLA)


def test_conversations_of_the_period_are_counted(report: Report) -> None:
    assert report.conversations == 4


def test_self_service_is_closed_by_the_bot_without_a_handoff(report: Report) -> None:
    assert (report.self_service, report.self_service_rate) == (1, 0.25)


def test_handoffs_are_counted_by_reason(report: Report) -> None:
    assert report.handoffs == {"repeated_misses": 1, "asked_for_human": 1, "low_confidence": 1}


def test_the_bots_first_response_time(report: Report) -> None:
    first = report.bot_first_response
    assert (first.count, first.median_s, first.p90_s) == (2, 1.5, 2.0)


def test_the_agents_first_response_time_runs_from_the_handoff(report: Report) -> None:
    first = report.agent_first_response
    assert (first.count, first.median_s, first.p90_s) == (2, 4500.0, 7200.0)


def test_sla_breaches_count_late_answers_and_those_still_waiting(report: Report) -> None:
    assert report.sla_breaches == 2


async def test_a_customer_waiting_less_than_the_sla_so_far_is_no_breach(
    engine: AsyncEngine, report: Report
) -> None:
    """Seen on the Thursday at 8:30, D has waited 30 minutes of its 60."""
    midweek = await compute(engine, WEEK, SLA, now=at(3, 8, 30))

    assert midweek.sla_breaches == 1


def test_csat_is_the_share_of_yes_it_helped(report: Report) -> None:
    assert (report.feedback, report.helped, report.csat) == (2, 1, 0.5)


def test_volume_is_customer_messages_per_network_per_day(report: Report) -> None:
    assert report.volume[Network.VK][dt.date(2026, 11, 3)] == 2
    assert report.volume[Network.TELEGRAM][dt.date(2026, 11, 2)] == 1
    assert report.volume[Network.TELEGRAM][dt.date(2026, 11, 4)] == 1
    assert sum(report.volume[Network.FACEBOOK].values()) == 1
    assert len(report.volume[Network.TELEGRAM]) == 7, "every day of the period, zeros included"


def test_load_per_agent(report: Report) -> None:
    assert [(a.agent, a.conversations, a.replies) for a in report.load] == [
        ("Anna", 1, 1),
        ("Boris", 1, 1),
    ]


async def test_a_network_filter_keeps_that_network_only(
    engine: AsyncEngine, report: Report
) -> None:
    on_vk = await compute(engine, Period(WEEK.start, WEEK.end, Network.VK), SLA)

    assert (on_vk.conversations, on_vk.handoffs) == (1, {"repeated_misses": 1})
    assert list(on_vk.volume) == [Network.VK]
