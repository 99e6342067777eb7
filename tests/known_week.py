"""A week of known conversations, straight into the store, for the tests of the figures (their
values are worked out by hand where the tests state them)."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import AuthorKind, ConversationState, DecisionOutcome, Direction, Network
from bridge.pipeline.phrases import FEEDBACK_NO, FEEDBACK_YES
from bridge.reports.figures import Period
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


async def fill_known_week(engine: AsyncEngine) -> None:
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
