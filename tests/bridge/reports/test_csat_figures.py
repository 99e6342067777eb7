"""CSAT in the figures, the dashboard's tables and the weekly report, on the ratings of the
week in tests/rated_week.py (its figures are worked out there by hand)."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import Network
from bridge.reports.figures import Csat, Period, Report, compute, tables
from bridge.reports.weekly import WeeklyReport, render_html
from tests.known_week import SLA, WEEK
from tests.rated_week import rated_week

TG, VK = Network.TELEGRAM, Network.VK


@pytest.fixture
async def report(engine: AsyncEngine) -> Report:
    await rated_week(engine)
    return await compute(engine, WEEK, SLA)


def test_csat_overall_is_the_mean_rating_and_the_share_of_4_and_5(report: Report) -> None:
    assert report.ratings == Csat(asked=5, rated=4, total=14, satisfied=2)
    assert (report.ratings.mean, report.ratings.satisfied_rate) == (3.5, 0.5)


def test_csat_per_agent_credits_the_agent_who_resolved(report: Report) -> None:
    assert [(row.agent, row.csat) for row in report.ratings_by_agent] == [
        ("Anna", Csat(asked=4, rated=3, total=11, satisfied=2)),
        ("Boris", Csat(asked=1, rated=1, total=3, satisfied=0)),
    ]


def test_csat_per_network(report: Report) -> None:
    assert report.ratings_by_network == {
        TG: Csat(asked=3, rated=3, total=12, satisfied=2),
        VK: Csat(asked=2, rated=1, total=2, satisfied=0),
    }


async def test_a_network_filter_keeps_that_networks_ratings_only(
    engine: AsyncEngine, report: Report
) -> None:
    on_vk = await compute(engine, Period(WEEK.start, WEEK.end, VK), SLA)

    assert on_vk.ratings == Csat(asked=2, rated=1, total=2, satisfied=0)
    assert [row.agent for row in on_vk.ratings_by_agent] == ["Anna"]


def test_the_tables_export_csat_rounded(report: Report) -> None:
    named = tables(report)

    summary: dict[object, object] = dict(named["summary"][1])  # type: ignore[arg-type]
    assert {k: v for k, v in summary.items() if str(k).startswith("csat_")} == {
        "csat_asked": 5,
        "csat_ratings": 4,
        "csat_mean": 3.5,
        "csat_rated_4_5_rate": 0.5,
    }
    assert named["csat_agents"] == (
        ["agent", "asked", "ratings", "mean", "rated_4_5_rate"],
        [["Anna", 4, 3, 3.67, 0.6667], ["Boris", 1, 1, 3.0, 0.0]],
    )
    assert named["csat_networks"][1] == [["telegram", 3, 3, 4.0, 0.6667], ["vk", 2, 1, 2.0, 0.0]]


def test_the_weekly_report_shows_csat_in_its_page_and_its_json(report: Report) -> None:
    weekly = WeeklyReport(report, 0.0, "RUB")

    data = weekly.as_json()
    page = render_html(weekly)

    assert data["csat"]["networks"][1] == {
        "network": "vk",
        "asked": 2,
        "ratings": 1,
        "mean": 2.0,
        "rated_4_5_rate": 0.0,
    }
    assert 'id="csat">3.5 / 5<' in page
    assert "<td>Boris</td><td>1</td><td>1</td><td>3.0</td><td>0.0</td>" in page


async def test_a_period_without_ratings_has_no_csat(engine: AsyncEngine) -> None:
    empty = await compute(engine, WEEK, SLA)

    assert (empty.ratings.mean, empty.ratings_by_agent, empty.ratings_by_network) == (None, [], {})
