"""Admins' edits of one article at a time, on both backends: each is one transaction writing the
article and who changed which fields, from what to what, and when."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbox.agents import AgentInfo, Role, add_agent
from bridge.knowledge.article_edits import (
    Action,
    ArticleExists,
    ArticleNotFound,
    article_history,
    check_new_id,
    checked,
    create_article,
    delete_article,
    update_article,
)
from bridge.knowledge.articles import load_article, load_articles
from bridge.store.models import article_changes, articles, utcnow
from kb.articles import Article, ArticleError
from tests.web_client import PASSWORD

WIFI = Article(
    id="wifi-password",
    title="Wi-Fi password",
    answers={"ru": "Пароль меняется в личном кабинете.", "en": "Change it in your account."},
    examples=("как поменять пароль от вайфая", "how do I change my wifi password"),
    tags=("wifi",),
)


@pytest.fixture
async def admin(engine: AsyncEngine) -> AgentInfo:
    return await add_agent(engine, "olga", PASSWORD, display_name="Olga", role=Role.ADMIN)


async def history_rows(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        count = sa.select(sa.func.count()).select_from(article_changes)
        return int((await conn.execute(count)).scalar_one())


async def updated_at(engine: AsyncEngine, article_id: str) -> Any:
    async with engine.connect() as conn:
        query = sa.select(articles.c.updated_at).where(articles.c.id == article_id)
        return (await conn.execute(query)).scalar_one()


async def test_a_created_article_is_stored_and_its_creation_recorded_with_who_and_when(
    engine: AsyncEngine, admin: AgentInfo
) -> None:
    before = utcnow()

    await create_article(engine, WIFI, admin.id)

    assert await load_article(engine, "wifi-password") == WIFI
    (created,) = await article_history(engine, "wifi-password")
    assert created.action is Action.CREATED
    assert (created.agent_id, created.agent_login, created.agent_name) == (admin.id, "olga", "Olga")
    assert before <= created.at <= utcnow()
    assert created.changes["title"] == (None, "Wi-Fi password")
    assert created.changes["examples"] == (None, list(WIFI.examples))
    assert "threshold" not in created.changes  # nothing to say: no threshold of its own


async def test_an_update_records_only_the_fields_that_changed_before_and_after(
    engine: AsyncEngine, admin: AgentInfo
) -> None:
    await create_article(engine, WIFI, admin.id)

    stored = await update_article(
        engine,
        "wifi-password",
        {"title": "Wi-Fi password", "answers": {"ru": "Новый ответ."}, "threshold": 0.8},
        admin.id,
    )

    assert stored.answers == {"ru": "Новый ответ.", "en": "Change it in your account."}
    assert await load_article(engine, "wifi-password") == stored
    latest = (await article_history(engine, "wifi-password"))[0]
    assert latest.action is Action.UPDATED
    assert latest.changes == {
        "answers": (dict(WIFI.answers), dict(stored.answers)),
        "threshold": (None, 0.8),
    }


async def test_an_update_of_answers_sets_the_languages_it_names_and_an_empty_one_removes_it(
    engine: AsyncEngine, admin: AgentInfo
) -> None:
    await create_article(engine, WIFI, admin.id)

    stored = await update_article(engine, "wifi-password", {"answers": {"ru": ""}}, admin.id)

    assert stored.answers == {"en": "Change it in your account."}


async def test_an_update_that_changes_nothing_writes_no_history_and_keeps_updated_at(
    engine: AsyncEngine, admin: AgentInfo
) -> None:
    await create_article(engine, WIFI, admin.id)
    was = await updated_at(engine, "wifi-password")

    await update_article(
        engine, "wifi-password", {"title": " Wi-Fi password ", "tags": ("wifi", "wifi")}, admin.id
    )

    assert await history_rows(engine) == 1
    assert await updated_at(engine, "wifi-password") == was


async def test_a_real_change_moves_updated_at_so_that_every_responder_refits(
    engine: AsyncEngine, admin: AgentInfo
) -> None:
    await create_article(engine, WIFI, admin.id)
    was = await updated_at(engine, "wifi-password")

    await update_article(engine, "wifi-password", {"tags": ("wifi", "router")}, admin.id)

    assert await updated_at(engine, "wifi-password") > was


async def test_disabling_is_an_update_of_enabled_and_keeps_the_article(
    engine: AsyncEngine, admin: AgentInfo
) -> None:
    await create_article(engine, WIFI, admin.id)

    await update_article(engine, "wifi-password", {"enabled": False}, admin.id)

    assert await load_articles(engine) == [dataclasses.replace(WIFI, enabled=False)]
    assert (await article_history(engine, "wifi-password"))[0].changes == {"enabled": (True, False)}


async def test_deleting_removes_the_article_and_keeps_its_history_ending_with_what_it_was(
    engine: AsyncEngine, admin: AgentInfo
) -> None:
    await create_article(engine, WIFI, admin.id)
    await update_article(engine, "wifi-password", {"never_auto": True}, admin.id)

    await delete_article(engine, "wifi-password", admin.id)

    assert await load_article(engine, "wifi-password") is None
    history = await article_history(engine, "wifi-password")
    assert [edit.action for edit in history] == [Action.DELETED, Action.UPDATED, Action.CREATED]
    assert history[0].changes["never_auto"] == (True, None)
    assert history[0].changes["title"] == ("Wi-Fi password", None)


async def test_a_change_without_an_agent_is_recorded_as_nobodys(engine: AsyncEngine) -> None:
    await create_article(engine, WIFI, None)

    (created,) = await article_history(engine, "wifi-password")

    assert (created.agent_id, created.agent_login, created.agent_name) == (None, None, None)


async def test_creating_an_id_that_exists_is_refused_and_changes_nothing(
    engine: AsyncEngine, admin: AgentInfo
) -> None:
    await create_article(engine, WIFI, admin.id)

    with pytest.raises(ArticleExists, match="wifi-password"):
        await create_article(engine, dataclasses.replace(WIFI, title="Other"), admin.id)

    assert await load_articles(engine) == [WIFI]
    assert await history_rows(engine) == 1


async def test_changing_or_deleting_an_article_that_does_not_exist_is_refused(
    engine: AsyncEngine, admin: AgentInfo
) -> None:
    with pytest.raises(ArticleNotFound, match="no article 'nothing'"):
        await update_article(engine, "nothing", {"enabled": False}, admin.id)
    with pytest.raises(ArticleNotFound, match="no article 'nothing'"):
        await delete_article(engine, "nothing", admin.id)

    assert await history_rows(engine) == 0


async def test_an_invalid_value_is_refused_with_the_reason_and_changes_nothing(
    engine: AsyncEngine, admin: AgentInfo
) -> None:
    await create_article(engine, WIFI, admin.id)

    with pytest.raises(ArticleError, match="has no words"):
        await update_article(engine, "wifi-password", {"title": "x", "examples": ("?",)}, admin.id)
    with pytest.raises(ArticleError, match="id"):
        await create_article(engine, dataclasses.replace(WIFI, id="two words"), admin.id)

    assert await load_articles(engine) == [WIFI]
    assert await history_rows(engine) == 1


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"answers": {"ru": " ", "en": ""}}, "needs an answer"),
        ({"examples": ("???",)}, "has no words"),
        ({"examples": ()}, "at least one example"),
        ({"threshold": 1.5}, r"not in \[0, 1\]"),
        ({"title": "x" * 256}, "longer than 255"),
        ({"tags": ("wifi, router",)}, "comma"),
        ({"answers": {"de": "Antwort"}}, "not ru or en"),
    ],
)
def test_an_invalid_value_is_refused_with_the_reason(fields: Any, reason: str) -> None:
    with pytest.raises(ArticleError, match=reason):
        checked(dataclasses.replace(WIFI, **fields))


@pytest.mark.parametrize("article_id", ["new", "two words", "../etc", "-dash-first", "x" * 129])
def test_a_new_id_is_letters_digits_and_dashes_and_not_a_pages_name(article_id: str) -> None:
    with pytest.raises(ArticleError, match="id"):
        check_new_id(article_id)


async def test_a_cyrillic_id_is_fine(engine: AsyncEngine) -> None:
    await create_article(engine, dataclasses.replace(WIFI, id="пароль-wi-fi_2.0"), None)

    assert [a.id for a in await load_articles(engine)] == ["пароль-wi-fi_2.0"]


def test_an_article_is_stored_trimmed_without_repeats_and_examples_in_language_order() -> None:
    typed = dataclasses.replace(
        WIFI,
        title="  Wi-Fi  ",
        answers={"ru": " Ответ.\n", "en": "  "},
        examples=("where is my bill", "где мой счёт", " где мой счёт ", "bill\x00 please"),
        tags=("billing", " billing", ""),
    )

    assert checked(typed) == dataclasses.replace(
        WIFI,
        title="Wi-Fi",
        answers={"ru": "Ответ."},
        examples=("где мой счёт", "where is my bill", "bill please"),
        tags=("billing",),
    )
