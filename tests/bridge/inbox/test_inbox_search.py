"""Searching the inbox: by the words of the messages in any of their forms, Russian and English,
by the customer's name and by their id on the network; on both stores."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import AuthorKind, Direction, Network
from bridge.inbox.search import identities_found, matching, search_words
from bridge.inbox.views import InboxQuery, View, inbox
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations, messages, utcnow
from tests.factories import entries, inbound

SLA = dict.fromkeys(Network, 30)


@pytest.fixture
async def written(engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings) -> None:
    """Three customers waiting for an agent; Ольга wrote twice."""
    pipeline = Pipeline(engine, memory_bus, settings, responder=None)
    await pipeline.handle(
        entries(
            inbound(101, 1, "Здравствуйте, мой заказ не пришёл"),
            inbound(101, 2, "Номер 5521"),
            inbound(202, 1, "I keep ordering and nothing arrives"),
            inbound(303, 1, "Как поменять пароль от вайфая?"),
        )
    )


async def found(engine: AsyncEngine, words: str) -> list[str]:
    result = await inbox(engine, 0, InboxQuery(View.WAITING, search=words), SLA, utcnow())
    return sorted(row.preview for row in result.rows)


@pytest.mark.usefixtures("written")
async def test_russian_words_are_found_in_other_forms(engine: AsyncEngine) -> None:
    assert await found(engine, "заказы пришел") == ["Номер 5521"]


@pytest.mark.usefixtures("written")
async def test_english_words_are_found_in_other_forms(engine: AsyncEngine) -> None:
    assert await found(engine, "orders") == ["I keep ordering and nothing arrives"]


@pytest.mark.usefixtures("written")
async def test_every_word_must_be_found(engine: AsyncEngine) -> None:
    assert await found(engine, "заказ вайфай") == []


@pytest.mark.usefixtures("written")
async def test_a_customers_name_finds_their_conversation(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = Pipeline(engine, memory_bus, settings, responder=None)
    await pipeline.handle(entries(inbound(404, 1, "добрый день")))
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE identities SET display_name = 'Ольга Петрова'"))

    assert len(await found(engine, "Петрова")) == 4


@pytest.mark.usefixtures("written")
async def test_a_network_id_finds_the_customers_conversation(engine: AsyncEngine) -> None:
    assert await found(engine, "303") == ["Как поменять пароль от вайфая?"]


@pytest.mark.usefixtures("written")
async def test_the_counts_are_those_of_the_search(engine: AsyncEngine) -> None:
    query = InboxQuery(View.WAITING, search="пароль")

    result = await inbox(engine, 0, query, SLA, utcnow())

    assert result.counts[View.WAITING] == 1
    assert result.by_language == {"ru": 1}


@pytest.mark.usefixtures("written")
@pytest.mark.parametrize("words", ['"; DROP TABLE messages; --', "100% _x_ \\", "да", "ё", "*"])
async def test_any_text_searches_without_error(engine: AsyncEngine, words: str) -> None:
    assert await found(engine, words) == []


@pytest.mark.usefixtures("written")
async def test_control_characters_in_a_search_are_spaces(engine: AsyncEngine) -> None:
    words = search_words("пароль\x00\x1b")

    assert words == "пароль"
    assert await found(engine, words) == ["Как поменять пароль от вайфая?"]


@pytest.mark.parametrize("backend", [pytest.param("postgresql", marks=pytest.mark.postgres)])
async def test_postgresql_searches_words_and_names_through_indexes(engine: AsyncEngine) -> None:
    names = identities_found("Петрова")
    async with engine.begin() as conn:
        # enough customers and words that reading them all costs more than the indexes
        await conn.execute(
            sa.text(
                "WITH c AS (INSERT INTO customers (created_at) "
                "SELECT now() FROM generate_series(1, 20000) RETURNING id) "
                "INSERT INTO identities (customer_id, network, external_user_id, display_name, "
                "created_at) SELECT id, 'telegram', 'u' || id, 'Customer ' || id, now() FROM c"
            )
        )
        await conn.execute(
            sa.text(
                "INSERT INTO conversation_words SELECT 'w' || g, g "
                "FROM generate_series(1, 20000) AS g"
            )
        )
        await conn.execute(sa.text("ANALYZE"))
        await conn.execute(sa.text("SET LOCAL enable_seqscan = off"))
        words = sa.select(conversations.c.id).where(await matching(conn, "заказ"))
        plans = [
            "\n".join((await conn.execute(sa.text("EXPLAIN " + _sql(q, engine)))).scalars())
            for q in (words, names)
        ]

    assert "pk_conversation_words" in plans[0], plans[0]
    assert "ix_identities_display_name_trgm" in plans[1], plans[1]


@pytest.mark.usefixtures("written")
async def test_words_from_different_messages_find_their_conversation(engine: AsyncEngine) -> None:
    assert await found(engine, "заказ 5521") == ["Номер 5521"]


@pytest.mark.usefixtures("written")
async def test_an_edited_message_is_found_by_its_new_words_only(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = Pipeline(engine, memory_bus, settings, responder=None)
    await pipeline.handle(
        entries(inbound(303, 1, "Как поменять логин?").model_copy(update={"kind": "edit"}))
    )

    assert await found(engine, "пароль") == []
    assert await found(engine, "логин") == ["Как поменять логин?"]


@pytest.mark.usefixtures("written")
async def test_an_agents_note_is_searched_as_the_customers_messages_are(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        cid = (
            await conn.execute(sa.select(conversations.c.id).order_by(conversations.c.id))
        ).scalar()
        await conn.execute(
            messages.insert().values(
                conversation_id=cid,
                network=Network.TELEGRAM,
                direction=Direction.INTERNAL,
                author_kind=AuthorKind.AGENT,
                text="курьер перезвонит",
                created_at=utcnow(),
            )
        )

    assert await found(engine, "курьеры") == ["Номер 5521"]


def _sql(query: sa.Select[tuple[int]], engine: AsyncEngine) -> str:
    return str(query.compile(engine, compile_kwargs={"literal_binds": True}))
