"""Each figure of the dashboard and the weekly report, on a week of known conversations whose
figures are worked out by hand below."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import AuthorKind, ConversationState, DecisionOutcome, Direction, Network
from bridge.pipeline.phrases import FEEDBACK_NO, FEEDBACK_YES
from bridge.reports import Period, Report, compute
from bridge.store.models import agents, conversations, customers, decisions, identities, messages

MONDAY = dt.datetime(2026, 11, 2, tzinfo=dt.UTC)
WEEK = Period(MONDAY, MONDAY + dt.timedelta(days=7))
SLA = {network: 60 for network in Network}


def at(day: int, hour: int, minute: int = 0, second: int = 0) -> dt.datetime:
    return MONDAY + dt.timedelta(days=day, hours=hour, minutes=minute, seconds=second)


class Week:
    """Builds conversations with their messages and decisions, straight into the store."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.n = 0

    async def agent(self, name: str) -> int:
        async with self.engine.begin() as conn:
            query = sa.insert(agents).values(login=name.lower(), display_name=name)
            return int((await conn.execute(query.returning(agents.c.id))).scalar_one())

    async def conversation(
        self,
        network: Network,
        created: dt.datetime,
        state: ConversationState,
        handed_off: dt.datetime | None = None,
        reason: str | None = None,
    ) -> int:
        self.n += 1
        async with self.engine.begin() as conn:
            customer = (
                await conn.execute(
                    sa.insert(customers).values(created_at=created).returning(customers.c.id)
                )
            ).scalar_one()
            identity = (
                await conn.execute(
                    sa.insert(identities)
                    .values(
                        customer_id=customer,
                        network=network,
                        external_user_id=str(self.n),
                        created_at=created,
                    )
                    .returning(identities.c.id)
                )
            ).scalar_one()
            return int(
                (
                    await conn.execute(
                        sa.insert(conversations)
                        .values(
                            network=network,
                            chat_id=str(self.n),
                            customer_id=customer,
                            identity_id=identity,
                            state=state,
                            created_at=created,
                            last_message_at=created,
                            handed_off_at=handed_off,
                            handoff_reason=reason,
                        )
                        .returning(conversations.c.id)
                    )
                ).scalar_one()
            )

    async def message(
        self,
        conversation: int,
        network: Network,
        author: AuthorKind,
        when: dt.datetime,
        agent: int | None = None,
    ) -> int:
        direction = Direction.INBOUND if author is AuthorKind.CUSTOMER else Direction.OUTBOUND
        async with self.engine.begin() as conn:
            return int(
                (
                    await conn.execute(
                        sa.insert(messages)
                        .values(
                            conversation_id=conversation,
                            network=network,
                            direction=direction,
                            author_kind=author,
                            agent_id=agent,
                            text="…",
                            created_at=when,
                        )
                        .returning(messages.c.id)
                    )
                ).scalar_one()
            )

    async def decision(
        self, conversation: int, question: int, network: Network, feedback: str | None
    ) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                sa.insert(decisions).values(
                    message_id=question,
                    conversation_id=conversation,
                    network=network,
                    outcome=DecisionOutcome.ANSWERED,
                    confidence=0.95,
                    feedback=feedback,
                    created_at=MONDAY,
                )
            )


@pytest.fixture
async def report(engine: AsyncEngine) -> Report:
    """A: answered by the bot, helped, closed. B: the bot missed, Anna answered in 30 min.
    C: asked for a person, Boris answered in 2 h (SLA breach). D: still waiting at the end of the
    week (breach). E: next week, not counted."""
    week = Week(engine)
    anna, boris = await week.agent("Anna"), await week.agent("Boris")
    tg, vk, fb = Network.TELEGRAM, Network.VK, Network.FACEBOOK

    a = await week.conversation(tg, at(0, 10), ConversationState.RESOLVED)
    question = await week.message(a, tg, AuthorKind.CUSTOMER, at(0, 10))
    await week.message(a, tg, AuthorKind.BOT, at(0, 10, 0, 2))
    await week.decision(a, question, tg, FEEDBACK_YES)

    b = await week.conversation(
        vk, at(1, 9), ConversationState.ASSIGNED, at(1, 9, 1), "repeated_misses"
    )
    await week.message(b, vk, AuthorKind.CUSTOMER, at(1, 9))
    await week.message(b, vk, AuthorKind.BOT, at(1, 9, 0, 1))
    await week.message(b, vk, AuthorKind.CUSTOMER, at(1, 9, 1))
    await week.message(b, vk, AuthorKind.AGENT, at(1, 9, 31), anna)

    c = await week.conversation(
        tg, at(2, 12), ConversationState.ASSIGNED, at(2, 12), "asked_for_human"
    )
    question = await week.message(c, tg, AuthorKind.CUSTOMER, at(2, 12))
    await week.decision(c, question, tg, FEEDBACK_NO)
    await week.message(c, tg, AuthorKind.AGENT, at(2, 14), boris)

    d = await week.conversation(fb, at(3, 8), ConversationState.WAITING, at(3, 8), "low_confidence")
    await week.message(d, fb, AuthorKind.CUSTOMER, at(3, 8))

    e = await week.conversation(tg, at(8, 8), ConversationState.WAITING, at(8, 8), "low_confidence")
    await week.message(e, tg, AuthorKind.CUSTOMER, at(8, 8))

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
