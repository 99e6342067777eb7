"""Customers answering customers: an agent marks another customer's public comment as the solution
to a question of the thread; it is kept for the knowledge gaps, and its author may be thanked
publicly."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import Network
from bridge.inbox.actions import ActionRefused
from bridge.inbox.agents import AgentInfo, add_agent
from bridge.inbox.solutions import community_answers, mark_solution, thread_solutions
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import messages, utcnow
from tests.factories import comment, drain_outbound, entries

POST = "wall-1_5"


@pytest.fixture
async def thread(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> tuple[int, dict[int, int]]:
    """Under one post: 501 asks (#10), 502 answers it (#11), 501 thanks 502 (#12, answering #11),
    503 writes on its own (#13) and adds to it (#14, answering #13). Returns the thread's id and
    each comment's message id."""
    await Pipeline(engine, memory_bus, settings, None).handle(
        entries(
            comment(POST, 501, 10, "Как сбросить пароль роутера?"),
            comment(POST, 502, 11, "Зажмите reset на 10 секунд", reply_to=10),
            comment(POST, 501, 12, "Спасибо, получилось", reply_to=11),
            comment(POST, 503, 13, "А у меня интернет медленный"),
            comment(POST, 503, 14, "И роутер уже перезагружал", reply_to=13),
        )
    )
    drain_outbound(memory_bus, Network.VK)
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(messages.c.conversation_id, messages.c.network_message_id, messages.c.id)
            )
        ).all()
    return rows[0].conversation_id, {int(key.split(":")[1]): mid for _, key, mid in rows}


@pytest.fixture
async def vera(engine: AsyncEngine) -> AgentInfo:
    return await add_agent(engine, "vera", "correct horse battery")


async def test_a_customers_answer_to_another_is_kept_with_the_question_it_answers(
    engine: AsyncEngine, memory_bus: MemoryBus, thread: tuple[int, dict[int, int]], vera: AgentInfo
) -> None:
    cid, comments = thread

    await mark_solution(engine, memory_bus, cid, comments[11], vera.id)

    (found,) = await community_answers(engine, utcnow() - dt.timedelta(hours=1))
    assert (found.question, found.answer, found.author) == (
        "Как сбросить пароль роутера?",
        "Зажмите reset на 10 секунд",
        "Commenter 502",
    )
    assert await thread_solutions(engine, cid) == {comments[11]}


async def test_a_comment_answering_none_answers_the_threads_first_question(
    engine: AsyncEngine, memory_bus: MemoryBus, thread: tuple[int, dict[int, int]], vera: AgentInfo
) -> None:
    cid, comments = thread

    await mark_solution(engine, memory_bus, cid, comments[13], vera.id)

    (found,) = await community_answers(engine, utcnow() - dt.timedelta(hours=1))
    assert found.question == "Как сбросить пароль роутера?"


@pytest.mark.parametrize(
    ("number", "why"),
    [(14, "the customer's own question"), (10, "the thread's first comment answers nothing")],
)
async def test_a_comment_that_answers_no_other_customer_is_refused(
    engine: AsyncEngine,
    memory_bus: MemoryBus,
    thread: tuple[int, dict[int, int]],
    vera: AgentInfo,
    number: int,
    why: str,
) -> None:
    cid, comments = thread

    with pytest.raises(ActionRefused):
        await mark_solution(engine, memory_bus, cid, comments[number], vera.id)
    assert await community_answers(engine, utcnow() - dt.timedelta(hours=1)) == [], why


async def test_a_deleted_comment_cannot_be_the_solution(
    engine: AsyncEngine,
    memory_bus: MemoryBus,
    settings: Settings,
    thread: tuple[int, dict[int, int]],
    vera: AgentInfo,
) -> None:
    cid, comments = thread
    await Pipeline(engine, memory_bus, settings, None).handle(
        entries(comment(POST, 502, 11, kind="delete"))
    )

    with pytest.raises(ActionRefused, match="deleted"):
        await mark_solution(engine, memory_bus, cid, comments[11], vera.id)


async def test_marking_the_same_answer_twice_keeps_one_solution(
    engine: AsyncEngine, memory_bus: MemoryBus, thread: tuple[int, dict[int, int]], vera: AgentInfo
) -> None:
    cid, comments = thread

    first = await mark_solution(engine, memory_bus, cid, comments[11], vera.id)
    again = await mark_solution(engine, memory_bus, cid, comments[11], vera.id)

    assert first == again
    assert len(await community_answers(engine, utcnow() - dt.timedelta(hours=1))) == 1


async def test_the_author_is_thanked_publicly_under_the_answer_when_the_admin_wishes(
    engine: AsyncEngine, memory_bus: MemoryBus, thread: tuple[int, dict[int, int]], vera: AgentInfo
) -> None:
    cid, comments = thread

    await mark_solution(engine, memory_bus, cid, comments[11], vera.id, thank=True)

    (thanks,) = drain_outbound(memory_bus, Network.VK)
    assert (thanks.public, thanks.in_reply_to) == (True, f"{POST}:11")
    assert thanks.text.startswith("Спасибо за помощь")


async def test_without_the_admins_wish_nobody_is_thanked(
    engine: AsyncEngine, memory_bus: MemoryBus, thread: tuple[int, dict[int, int]], vera: AgentInfo
) -> None:
    cid, comments = thread

    await mark_solution(engine, memory_bus, cid, comments[11], vera.id)

    assert drain_outbound(memory_bus, Network.VK) == []
