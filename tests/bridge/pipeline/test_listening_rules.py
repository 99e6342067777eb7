"""Listening rules: a routing rule with words routes every public comment that has one of them,
in any word form (when it is written or edited to have them), to its team and may mark the
thread urgent; an angry comment is one step more
urgent; the open views list urgent threads first."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import Network
from bridge.inbox.labels import create_label
from bridge.inbox.paging import Cursor
from bridge.inbox.routing_rules import RuleDraft, add_rule
from bridge.inbox.teams import TeamDraft, create_team
from bridge.inbox.views import InboxQuery, inbox
from bridge.pipeline.team_routing import contains, phrase_stems
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversation_labels, conversations, utcnow
from tests.factories import ScriptedResponder, comment, entries, inbound

POST = "wall-1_5"


@pytest.fixture
def pipeline(engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings) -> Pipeline:
    return Pipeline(engine, memory_bus, settings, ScriptedResponder(0.99))


async def thread(engine: AsyncEngine, chat_id: str = POST) -> sa.Row[tuple[object, ...]]:
    async with engine.connect() as conn:
        query = sa.select(conversations).where(conversations.c.chat_id == chat_id)
        return (await conn.execute(query)).one()


async def escalations(engine: AsyncEngine, *, urgent: bool = True) -> int:
    team = await create_team(engine, TeamDraft("Escalations"))
    words = ("не работает", "верните деньги")
    await add_rule(engine, RuleDraft(words=words, urgent=urgent, team_id=team.id))
    return team.id


def test_a_phrase_is_found_in_another_word_form() -> None:
    stems = phrase_stems("Приложение опять не работают у нас")
    assert contains(stems, phrase_stems("не работает"))
    assert not contains(stems, phrase_stems("работает не"))


async def test_a_comment_with_a_rules_words_is_urgent_and_goes_to_the_rules_team(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    team_id = await escalations(engine)

    await pipeline.handle(entries(comment(POST, 501, 10, "Сайт у вас не работают с утра")))

    found = await thread(engine)
    assert (found.priority, found.team_id) == (1, team_id)


async def test_a_comment_without_the_words_is_not_urgent(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await escalations(engine)

    await pipeline.handle(entries(comment(POST, 501, 10, "Красивые фото")))

    found = await thread(engine)
    assert (found.priority, found.team_id) == (0, None)


async def test_a_later_comment_in_a_thread_people_have_is_still_heard(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    team_id = await escalations(engine)
    await pipeline.handle(entries(comment(POST, 501, 10, "Красивые фото")))

    await pipeline.handle(entries(comment(POST, 502, 11, "Верните деньги за заказ")))

    found = await thread(engine)
    assert (found.priority, found.team_id) == (1, team_id)


async def test_a_comment_edited_to_have_the_words_is_heard_as_a_new_one(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    team_id = await escalations(engine)
    await pipeline.handle(entries(comment(POST, 501, 10, "Красивые фото")))

    edited = comment(POST, 501, 10, "Красивые фото, но сайт не работает", kind="edit")
    await pipeline.handle(entries(edited))

    found = await thread(engine)
    assert (found.priority, found.team_id) == (1, team_id)


async def test_an_edit_in_the_batch_of_a_new_comment_raises_the_thread_once_written(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await escalations(engine)
    await pipeline.handle(entries(comment(POST, 501, 10, "Красивые фото")))

    angry = "Ужасный сервис, ничего не работает, верните деньги!!!"
    await pipeline.handle(
        entries(
            comment(POST, 502, 11, "А доставка есть?"), comment(POST, 501, 10, angry, kind="edit")
        )
    )

    assert (await thread(engine)).priority == 2


async def test_an_edit_in_a_resolved_thread_leaves_its_urgency(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await escalations(engine)
    await pipeline.handle(entries(comment(POST, 501, 10, "Красивые фото")))
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(conversations).values(state="resolved", resolved_at=dt.datetime.now(dt.UTC))
        )

    await pipeline.handle(entries(comment(POST, 501, 10, "Не работает доставка", kind="edit")))

    found = await thread(engine)
    assert (found.priority, found.state) == (0, "resolved")


async def test_negative_tone_raises_an_urgent_comments_priority(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await escalations(engine)

    angry = "Ужасный сервис, ничего не работает, верните деньги!!!"
    await pipeline.handle(entries(comment(POST, 501, 10, angry)))

    assert (await thread(engine)).priority == 2


async def test_a_rules_label_goes_on_the_thread_it_hears(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    label = await create_label(engine, "Refund", "#ffeb3b")
    await add_rule(engine, RuleDraft(words=("верните деньги",), label_id=label.id))

    await pipeline.handle(entries(comment(POST, 501, 10, "Верните деньги")))

    async with engine.connect() as conn:
        carried = (await conn.execute(sa.select(conversation_labels.c.label_id))).scalars().all()
    assert carried == [label.id]


async def test_a_private_message_with_the_words_is_not_marked(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await escalations(engine)

    await pipeline.handle(entries(inbound(501, 1, "у вас не работает оплата", network=Network.VK)))

    assert (await thread(engine, "501")).priority == 0


async def test_the_open_views_list_urgent_threads_first_and_page_past_them(
    pipeline: Pipeline, engine: AsyncEngine, settings: Settings
) -> None:
    await escalations(engine)
    await pipeline.handle(entries(comment("wall-1_6", 501, 10, "Красивые фото")))
    await pipeline.handle(entries(comment(POST, 502, 11, "Не работает доставка")))
    sla = {network: 30 for network in Network}

    first = await inbox(engine, 1, InboxQuery(limit=1), sla, utcnow())
    assert [(row.priority, row.customer) for row in first.rows] == [(1, "Commenter 502")]
    assert isinstance(first.next_page, Cursor)
    second = await inbox(engine, 1, InboxQuery(limit=1, after=first.next_page), sla, utcnow())
    assert [(row.priority, row.customer) for row in second.rows] == [(0, "Commenter 501")]
    assert second.next_page is None


async def test_urgency_ends_with_the_thread_a_new_comment_reopens(
    pipeline: Pipeline, engine: AsyncEngine
) -> None:
    await escalations(engine)
    await pipeline.handle(entries(comment(POST, 501, 10, "Не работает доставка")))
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(conversations).values(state="resolved", resolved_at=dt.datetime.now(dt.UTC))
        )

    await pipeline.handle(entries(comment(POST, 502, 11, "Спасибо, всё пришло")))

    assert (await thread(engine)).priority == 0
