"""Customers answering customers: in a public thread an agent marks another customer's comment as
the solution to a question asked there. The marks are kept for the knowledge base's gaps page,
where each becomes a draft article, so what the community knows feeds the bot."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.bus import Bus
from bridge.domain import Direction, Network
from bridge.inbox.actions import ActionRefused, ConversationNotFound, reply_as_agent
from bridge.inbox.public import a_comment_of
from bridge.store.engine import insert_ignoring_conflicts
from bridge.store.models import community_solutions, conversations, identities, messages, utcnow

# What the brand says publicly under the answer when the admin wishes it, in the thread's language
_THANKS = {
    "en": "Thank you for helping! That is exactly right.",
    "ru": "Спасибо за помощь! Всё верно.",
}


def thanks(language: str | None) -> str:
    return _THANKS["ru" if language == "ru" else "en"]


@dataclass(frozen=True, slots=True)
class Solution:
    id: int
    conversation_id: int
    network: Network
    question: str
    answer: str
    language: str | None
    author: str | None  # who answered, as the network names them
    marked_at: dt.datetime


async def mark_solution(
    engine: AsyncEngine,
    bus: Bus,
    conversation_id: int,
    answer_id: int,
    agent_id: int,
    *,
    thank: bool = False,
) -> int:
    """Mark the customer's comment `answer_id` of the public thread as the solution to the comment
    it answers (or, answering none, to the thread's first comment), which another customer must
    have written; with `thank`, thank its author publicly under it. Returns the solution's id;
    marking the same answer again changes nothing."""
    async with engine.begin() as conn:
        answer = await _comment(conn, conversation_id, answer_id)
        question = await _question_of(conn, conversation_id, answer)
        if question is None:
            raise ActionRefused("this comment answers no question of another customer")
        await conn.execute(
            insert_ignoring_conflicts(conn, community_solutions),
            [
                {
                    "conversation_id": conversation_id,
                    "question_message_id": question,
                    "answer_message_id": answer_id,
                    "agent_id": agent_id,
                    "marked_at": utcnow(),
                }
            ],
        )
        solution_id = (
            await conn.execute(
                sa.select(community_solutions.c.id).where(
                    community_solutions.c.answer_message_id == answer_id
                )
            )
        ).scalar_one()
    if thank:
        await reply_as_agent(
            engine, bus, conversation_id, agent_id, thanks(answer.language), reply_to=answer_id
        )
    return int(solution_id)


async def _comment(
    conn: AsyncConnection, conversation_id: int, message_id: int
) -> sa.Row[int, int | None, str | None, dt.datetime | None, str | None]:
    """A customer's comment of the public thread, still there."""
    m, c = messages.c, conversations.c
    found = (
        await conn.execute(
            sa.select(m.id, m.author_identity_id, m.reply_to_network_id, m.deleted_at, c.language)
            .join(conversations, c.id == m.conversation_id)
            .where(*a_comment_of(conversation_id, message_id))
        )
    ).first()
    if found is None:
        raise ConversationNotFound(conversation_id)
    if found.deleted_at is not None:
        raise ActionRefused("its author deleted this comment")
    return found


async def _question_of(
    conn: AsyncConnection,
    conversation_id: int,
    answer: sa.Row[int, int | None, str | None, dt.datetime | None, str | None],
) -> int | None:
    """The comment `answer` answers, or the thread's first one; None when that is the answer
    itself or was written by the same customer."""
    m = messages.c
    query = sa.select(m.id, m.author_identity_id).where(
        m.conversation_id == conversation_id, m.direction == Direction.INBOUND
    )
    if answer.reply_to_network_id is not None:
        query = query.where(m.network_message_id == answer.reply_to_network_id)
    found = (await conn.execute(query.order_by(m.id).limit(1))).first()
    if found is None or found.id == answer.id:
        return None
    if found.author_identity_id == answer.author_identity_id:
        return None
    return int(found.id)


def _solutions_query() -> sa.Select[
    int, int, Network, str, str, str | None, str | None, dt.datetime
]:
    s, c, i = community_solutions.c, conversations.c, identities.c
    question, answer = messages.alias("question"), messages.alias("answer")
    return (
        sa.select(
            s.id,
            s.conversation_id,
            c.network,
            question.c.text,
            answer.c.text,
            c.language,
            sa.func.coalesce(i.display_name, i.external_user_id),
            s.marked_at,
        )
        .join(conversations, c.id == s.conversation_id)
        .join(question, question.c.id == s.question_message_id)
        .join(answer, answer.c.id == s.answer_message_id)
        .outerjoin(identities, i.id == answer.c.author_identity_id)
    )


async def community_answers(
    engine: AsyncEngine, since: dt.datetime, network: Network | None = None
) -> list[Solution]:
    """The solutions marked since `since` (on `network`), the latest first."""
    s = community_solutions.c
    query = _solutions_query().where(s.marked_at >= since).order_by(s.marked_at.desc(), s.id.desc())
    if network is not None:
        query = query.where(conversations.c.network == network)
    async with engine.connect() as conn:
        return [Solution(*row) for row in await conn.execute(query)]


async def load_solution(engine: AsyncEngine, solution_id: int) -> Solution | None:
    query = _solutions_query().where(community_solutions.c.id == solution_id)
    async with engine.connect() as conn:
        row = (await conn.execute(query)).first()
    return None if row is None else Solution(*row)


async def thread_solutions(engine: AsyncEngine, conversation_id: int) -> set[int]:
    """The comments of a thread marked as solutions."""
    s = community_solutions.c
    query = sa.select(s.answer_message_id).where(s.conversation_id == conversation_id)
    async with engine.connect() as conn:
        return set((await conn.execute(query)).scalars())
