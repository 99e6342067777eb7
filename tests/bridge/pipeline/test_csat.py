"""Customer satisfaction: when an agent resolves a conversation the customer is asked to rate the
help from 1 to 5 with buttons; the press is stored for the agent who had the conversation, and
the next message, if it asks for nothing, is the rating's comment. On both database backends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import AuthorKind, ConversationState, InboundMessage, Network, OutboundMessage
from bridge.inbox.actions import reopen, reply_as_agent, resolve
from bridge.inbox.ratings import QUESTION
from bridge.pipeline import phrases
from bridge.pipeline.route import is_comment
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import agents, conversations, csat_ratings, dead_letters, messages
from bridge.store.ratings import RatingPress, parse_rating, rating_data
from tests.factories import ScriptedResponder, drain_outbound, entries, inbound

TG = Network.TELEGRAM
CHAT = 7


@pytest.fixture
def pipeline(engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings) -> Pipeline:
    return Pipeline(engine, memory_bus, settings, responder=None)


@pytest.fixture
async def anna(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        query = sa.insert(agents).values(login="anna", display_name="Anna").returning(agents.c.id)
        return int((await conn.execute(query)).scalar_one())


async def rows(engine: AsyncEngine, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
    async with engine.connect() as conn:
        return [tuple(row) for row in (await conn.execute(query)).all()]


async def conversation_of(engine: AsyncEngine, chat: int = CHAT) -> int:
    query = sa.select(conversations.c.id).where(conversations.c.chat_id == str(chat))
    return int((await rows(engine, query))[0][0])


async def state(engine: AsyncEngine) -> object:
    return (await rows(engine, sa.select(conversations.c.state)))[0][0]


async def answered_by_an_agent(
    pipeline: Pipeline, bus: MemoryBus, agent: int, chat: int = CHAT
) -> int:
    """A customer's question (in Russian) that `agent` answered; the conversation's id."""
    await pipeline.handle(entries(inbound(chat, 1, "Где мой заказ? Жду уже неделю")))
    cid = await conversation_of(pipeline.engine, chat)
    await reply_as_agent(pipeline.engine, bus, cid, agent, "Ваш заказ в пути, будет завтра")
    drain_outbound(bus, TG)
    return cid


async def asked(
    pipeline: Pipeline, bus: MemoryBus, agent: int, chat: int = CHAT
) -> OutboundMessage:
    """The request for a rating the customer got when `agent` resolved their conversation."""
    cid = await answered_by_an_agent(pipeline, bus, agent, chat)
    await resolve(pipeline.engine, bus, cid)
    (request,) = drain_outbound(bus, TG)
    return request


def press(chat: int, seq: int, data: str) -> InboundMessage:
    return inbound(chat, seq, data, button_data=data)


async def rating_rows(engine: AsyncEngine) -> list[tuple[object, ...]]:
    r = csat_ratings.c
    return await rows(engine, sa.select(r.rating, r.comment).order_by(r.id))


async def test_resolving_after_an_agents_reply_asks_for_a_rating_with_five_buttons(
    pipeline: Pipeline, memory_bus: MemoryBus, anna: int
) -> None:
    request = await asked(pipeline, memory_bus, anna)

    assert request.text == QUESTION["ru"]
    assert [b.label[0] for b in request.buttons] == ["1", "2", "3", "4", "5"]
    assert [parse_rating(b.data) for b in request.buttons] == [
        RatingPress(request.message_id, score) for score in range(1, 6)
    ]
    assert request.author_kind is AuthorKind.SYSTEM  # not an answer of the bot's


async def test_the_request_is_sent_once_per_agents_answer(
    pipeline: Pipeline, memory_bus: MemoryBus, engine: AsyncEngine, anna: int
) -> None:
    """Reopened and resolved again with no new reply, the customer is not asked twice."""
    await asked(pipeline, memory_bus, anna)
    cid = await conversation_of(engine)

    await reopen(engine, memory_bus, cid, anna)
    await resolve(engine, memory_bus, cid)

    assert drain_outbound(memory_bus, TG) == []
    assert len(await rating_rows(engine)) == 1


async def test_a_conversation_no_agent_replied_in_is_not_asked_for_a_rating(
    pipeline: Pipeline, memory_bus: MemoryBus, engine: AsyncEngine
) -> None:
    await pipeline.handle(entries(inbound(CHAT, 1, "Где мой заказ?")))
    drain_outbound(memory_bus, TG)

    await resolve(engine, memory_bus, await conversation_of(engine))

    assert drain_outbound(memory_bus, TG) == []
    assert await rating_rows(engine) == []


async def test_a_conversation_the_bot_resolved_is_not_asked_for_a_rating(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    bot = Pipeline(engine, memory_bus, settings, ScriptedResponder(0.97))
    await bot.handle(entries(inbound(CHAT, 1, "Где мой заказ?")))
    (answer,) = drain_outbound(memory_bus, TG)
    helped = answer.buttons[0].data

    await bot.handle(entries(press(CHAT, 2, helped)))

    assert [m.text for m in drain_outbound(memory_bus, TG)] == [phrases.text("glad", "ru")]
    assert await state(engine) is ConversationState.RESOLVED
    assert await rating_rows(engine) == []


async def test_with_rating_requests_switched_off_resolving_sends_nothing(
    pipeline: Pipeline, memory_bus: MemoryBus, engine: AsyncEngine, anna: int
) -> None:
    cid = await answered_by_an_agent(pipeline, memory_bus, anna)

    await resolve(engine, memory_bus, cid, ask_rating=False)  # csat_enabled = false

    assert drain_outbound(memory_bus, TG) == []
    assert await rating_rows(engine) == []


async def test_a_press_stores_the_rating_for_the_agent_who_resolved_and_invites_a_comment(
    pipeline: Pipeline, memory_bus: MemoryBus, engine: AsyncEngine, anna: int
) -> None:
    request = await asked(pipeline, memory_bus, anna)

    await pipeline.handle(entries(press(CHAT, 2, request.buttons[3].data)))

    r = csat_ratings.c
    stored = await rows(engine, sa.select(r.rating, r.agent_id, r.network, r.rated_at.is_not(None)))
    assert stored == [(4, anna, TG, True)]
    (thanks,) = drain_outbound(memory_bus, TG)
    assert thanks.text == f"{phrases.text('rated', 'ru')} {phrases.text('add_comment', 'ru')}"
    assert await state(engine) is ConversationState.RESOLVED


async def test_a_second_press_replaces_the_rating(
    pipeline: Pipeline, memory_bus: MemoryBus, engine: AsyncEngine, anna: int
) -> None:
    request = await asked(pipeline, memory_bus, anna)

    await pipeline.handle(entries(press(CHAT, 2, request.buttons[1].data)))
    await pipeline.handle(entries(press(CHAT, 3, request.buttons[4].data)))

    assert await rating_rows(engine) == [(5, None)]


async def test_rating_data_naming_no_request_of_the_conversation_is_ignored_and_the_rest_goes_on(
    pipeline: Pipeline, memory_bus: MemoryBus, engine: AsyncEngine, anna: int
) -> None:
    ours = await asked(pipeline, memory_bus, anna)
    theirs = await asked(pipeline, memory_bus, anna, chat=8)
    bad = [
        rating_data(theirs.message_id, 5),  # another customer's request
        rating_data(ours.message_id + 1000, 5),  # no such request
        rating_data(ours.message_id, 9),  # no such score
        f"{rating_data(ours.message_id, 5)}:1",
        "csat:",
        "csat:٣:٥",  # digits, but not ASCII ones
    ]

    await pipeline.handle(
        entries(
            *(press(CHAT, seq, data) for seq, data in enumerate(bad, 2)),
            inbound(9, 1, "Здравствуйте, вопрос по оплате"),
        )
    )

    assert await rating_rows(engine) == [(None, None), (None, None)]
    assert await rows(engine, sa.select(sa.func.count()).select_from(dead_letters)) == [(0,)]
    states = await rows(engine, sa.select(conversations.c.chat_id, conversations.c.state))
    assert sorted(states) == [
        ("7", ConversationState.RESOLVED),
        ("8", ConversationState.RESOLVED),
        ("9", ConversationState.WAITING),
    ]


async def test_a_comment_within_the_window_is_kept_and_does_not_reopen(
    pipeline: Pipeline, memory_bus: MemoryBus, engine: AsyncEngine, anna: int
) -> None:
    request = await asked(pipeline, memory_bus, anna)
    await pipeline.handle(entries(press(CHAT, 2, request.buttons[4].data)))
    drain_outbound(memory_bus, TG)

    await pipeline.handle(entries(inbound(CHAT, 3, "Очень быстро помогли, спасибо!")))

    assert await rating_rows(engine) == [(5, "Очень быстро помогли, спасибо!")]
    assert await state(engine) is ConversationState.RESOLVED
    assert [m.text for m in drain_outbound(memory_bus, TG)] == [phrases.text("comment_noted", "ru")]


@pytest.mark.parametrize("text", ["А деньги когда вернут?", "Позовите оператора"])
async def test_a_new_request_after_the_rating_reopens_the_conversation(
    pipeline: Pipeline, memory_bus: MemoryBus, engine: AsyncEngine, anna: int, text: str
) -> None:
    request = await asked(pipeline, memory_bus, anna)
    await pipeline.handle(entries(press(CHAT, 2, request.buttons[2].data)))

    await pipeline.handle(entries(inbound(CHAT, 3, text)))

    assert await rating_rows(engine) == [(3, None)]
    assert await state(engine) is ConversationState.WAITING


async def test_a_message_after_the_window_reopens_the_conversation(
    pipeline: Pipeline, memory_bus: MemoryBus, engine: AsyncEngine, anna: int
) -> None:
    request = await asked(pipeline, memory_bus, anna)
    await pipeline.handle(entries(press(CHAT, 2, request.buttons[4].data)))
    async with engine.begin() as conn:
        earlier = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=11)
        await conn.execute(sa.update(csat_ratings).values(rated_at=earlier))

    await pipeline.handle(entries(inbound(CHAT, 3, "Спасибо, всё получил")))

    assert await rating_rows(engine) == [(5, None)]
    assert await state(engine) is ConversationState.WAITING


async def test_the_request_and_the_thanks_are_no_bot_answers(
    pipeline: Pipeline, memory_bus: MemoryBus, engine: AsyncEngine, anna: int
) -> None:
    """The bot's figures (its first response) count its answers, not these."""
    request = await asked(pipeline, memory_bus, anna)
    await pipeline.handle(entries(press(CHAT, 2, request.buttons[4].data)))

    kinds = await rows(engine, sa.select(messages.c.author_kind).distinct())
    assert AuthorKind.BOT not in {kind for (kind,) in kinds}


@pytest.mark.parametrize(
    ("text", "comment"),
    [
        ("Всё отлично, спасибо", True),
        ("The agent was very patient", True),
        ("Why did it take two days?", False),
        ("позовите человека", False),
        ("   ", False),
    ],
)
def test_a_comment_is_text_that_asks_for_nothing(text: str, comment: bool) -> None:
    assert is_comment(inbound(CHAT, 1, text)) is comment
