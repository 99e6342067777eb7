"""Figures per team in the figures, the tables (CSV) and the weekly report, on a small known week
whose figures are worked out by hand in `teamed_week`."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import AuthorKind, ConversationState, Network
from bridge.inbox.teams import TeamDraft, create_team
from bridge.reports.figures import Csat, Durations, Period, Report, TeamFigures, compute, tables
from bridge.reports.weekly import WeeklyReport, render_html
from bridge.store.models import conversations, csat_ratings
from tests.known_week import MONDAY, SLA, WEEK, Week, at

TG, VK = Network.TELEGRAM, Network.VK
RESOLVED, WAITING = ConversationState.RESOLVED, ConversationState.WAITING
MINUTE = 60.0


async def teamed_week(engine: AsyncEngine) -> None:
    """Started in the week, each handed off when it started:

    | # | network | team    | agent's first reply | state    | rating (by)   |
    |---|---------|---------|---------------------|----------|---------------|
    | 1 | telegram| Billing | Vera, 10 min        | resolved | 5 (Vera)      |
    | 2 | telegram| Billing | Vera, 30 min        | resolved | 2 (Vera)      |
    | 3 | vk      | Billing | none                | waiting  |               |
    | 4 | vk      | Support | Gleb, 60 min        | resolved | 4 (Vera)      |
    | 5 | telegram| none    | none                | waiting  |               |

    and #6, Billing, telegram, started and resolved the week before, rated 3 (asked this week).
    "Sales" has nothing. So Billing: 3 conversations, 2 resolved, first response median 20 min,
    CSAT 3 asked, 3 rated, total 10, 1 rated 4-5; Support: 1, 1, 60 min, CSAT 1, 1, 4, 1."""
    week = Week(engine)
    vera, gleb = await week.agent("Vera"), await week.agent("Gleb")
    billing, support, _sales = [
        (await create_team(engine, TeamDraft(name))).id for name in ("Billing", "Support", "Sales")
    ]
    before = MONDAY - dt.timedelta(hours=1)
    plan = [
        (TG, at(0, 9), billing, (vera, 10), RESOLVED, (vera, 5)),
        (TG, at(1, 9), billing, (vera, 30), RESOLVED, (vera, 2)),
        (VK, at(2, 9), billing, None, WAITING, None),
        (VK, at(3, 9), support, (gleb, 60), RESOLVED, (vera, 4)),
        (TG, at(4, 9), None, None, WAITING, None),
        (TG, before, billing, (vera, 5), RESOLVED, (vera, 3)),
    ]
    for network, started, team, reply, state, rating in plan:
        cid = await week.conversation(network, started, state, started, "asked_for_human")
        await week.message(cid, network, AuthorKind.CUSTOMER, started)
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(conversations).where(conversations.c.id == cid).values(team_id=team)
            )
        if reply is not None:
            agent, minutes = reply
            replied = started + dt.timedelta(minutes=minutes)
            await week.message(cid, network, AuthorKind.AGENT, replied, agent)
        if rating is not None:
            agent, stars = rating
            asked = max(started, MONDAY) + dt.timedelta(hours=2)
            request = await week.message(cid, network, AuthorKind.SYSTEM, asked)
            async with engine.begin() as conn:
                await conn.execute(
                    sa.insert(csat_ratings).values(
                        request_message_id=request,
                        conversation_id=cid,
                        agent_id=agent,
                        network=network,
                        asked_at=asked,
                        rating=stars,
                        rated_at=asked + dt.timedelta(minutes=1),
                    )
                )


@pytest.fixture
async def report(engine: AsyncEngine) -> Report:
    await teamed_week(engine)
    return await compute(engine, WEEK, SLA)


def test_each_team_counts_its_conversations_started_in_the_period_and_those_resolved(
    report: Report,
) -> None:
    assert [(row.team, row.conversations, row.resolved) for row in report.by_team] == [
        ("Billing", 3, 2),
        ("Support", 1, 1),
    ]
    assert [row.resolved_rate for row in report.by_team] == [2 / 3, 1.0]


def test_each_teams_first_response_counts_its_conversations_an_agent_answered(
    report: Report,
) -> None:
    assert [row.first_response for row in report.by_team] == [
        Durations(2, 20 * MINUTE, 30 * MINUTE),
        Durations(1, 60 * MINUTE, 60 * MINUTE),
    ]


def test_csat_per_team_is_of_the_conversations_team_whoever_was_credited(report: Report) -> None:
    assert [row.csat for row in report.by_team] == [
        Csat(asked=3, rated=3, total=10, satisfied=1),
        Csat(asked=1, rated=1, total=4, satisfied=1),
    ]


async def test_a_team_with_only_a_rating_request_in_the_period_is_listed_with_it(
    engine: AsyncEngine, report: Report
) -> None:
    around_the_request = Period(at(3, 10), at(3, 12))  # #4 started at 9:00, was rated at 11:00

    assert (await compute(engine, around_the_request, SLA)).by_team == [
        TeamFigures("Support", 0, 0, Durations(0, None, None), Csat(1, 1, 4, 1))
    ]


async def test_a_network_filter_counts_that_networks_conversations_and_ratings_only(
    engine: AsyncEngine, report: Report
) -> None:
    on_vk = await compute(engine, Period(WEEK.start, WEEK.end, VK), SLA)

    assert on_vk.by_team == [
        TeamFigures("Billing", 1, 0, Durations(0, None, None), Csat()),
        TeamFigures("Support", 1, 1, Durations(1, 60 * MINUTE, 60 * MINUTE), Csat(1, 1, 4, 1)),
    ]


def test_the_teams_table_exports_shares_minutes_and_csat_rounded(report: Report) -> None:
    assert tables(report)["teams"] == (
        [
            "team",
            "conversations",
            "resolved",
            "resolved_rate",
            "first_response_median_min",
            "csat_asked",
            "csat_ratings",
            "csat_mean",
            "csat_rated_4_5_rate",
        ],
        [
            ["Billing", 3, 2, 0.6667, 20.0, 3, 3, 3.33, 0.3333],
            ["Support", 1, 1, 1.0, 60.0, 1, 1, 4.0, 1.0],
        ],
    )


def test_the_weekly_report_shows_the_teams_in_its_json_and_its_page(report: Report) -> None:
    weekly = WeeklyReport(report, 0.0, "RUB")

    data = weekly.as_json()
    page = render_html(weekly)

    assert data["teams"][1] == {
        "team": "Support",
        "conversations": 1,
        "resolved": 1,
        "resolved_rate": 1.0,
        "first_response_median_min": 60.0,
        "csat_asked": 1,
        "csat_ratings": 1,
        "csat_mean": 4.0,
        "csat_rated_4_5_rate": 1.0,
    }
    assert "<h2>Per team</h2>" in page
    assert "<td>Billing</td><td>3</td><td>2</td><td>0.6667</td><td>20.0</td>" in page


async def test_a_period_without_teams_lists_no_team(engine: AsyncEngine) -> None:
    await create_team(engine, TeamDraft("Billing"))

    assert (await compute(engine, WEEK, SLA)).by_team == []
