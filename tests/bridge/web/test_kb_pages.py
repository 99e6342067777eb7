"""The admins' knowledge-base pages over HTTP: the list, a new article in both languages (blank,
or drafted from an agent's reply or a knowledge gap), editing every field, disabling, deleting,
and the history of who changed what and when. (The real browser is in test_web_browser.py.)"""

from __future__ import annotations

import dataclasses
import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.inbox.agents import AgentInfo, Role, add_agent
from bridge.knowledge.article_edits import create_article
from bridge.knowledge.articles import load_article, load_articles
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations, messages
from bridge.web.app import add_inbox
from bridge.web.auth import SESSION_COOKIE, start_session
from bridge.web.server import make_app
from kb.articles import Article
from tests.factories import entries, inbound
from tests.web_client import PASSWORD

WIFI = Article(
    id="wifi-password",
    title="Wi-Fi password",
    answers={"ru": "Пароль меняется в личном кабинете.", "en": "Change it in your account."},
    examples=("как поменять пароль от вайфая", "how do I change my wifi password"),
    tags=("wifi",),
)
# The form as the page fills it for WIFI: what an admin sends without changing anything.
WIFI_FORM = {
    "title": "Wi-Fi password",
    "answer_ru": "Пароль меняется в личном кабинете.",
    "answer_en": "Change it in your account.",
    "examples": "как поменять пароль от вайфая\r\nhow do I change my wifi password",
    "tags": "wifi",
    "threshold": "",
    "enabled": "1",
}


@pytest.fixture
def backend() -> str:
    """The pages behave alike on both backends (the store's tests run on both)."""
    return "sqlite"


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    admin: AgentInfo
    csrf: str = ""

    async def sign_in(self, who: AgentInfo) -> None:
        """A session as the sign-in form starts it (the form itself: test_sign_in.py)."""
        token, self.csrf = await start_session(self.engine, who.id)
        self.client.session.cookie_jar.clear()
        self.client.session.cookie_jar.update_cookies({SESSION_COOKIE: token})

    async def post(self, path: str, fields: dict[str, str]) -> tuple[int, str]:
        response = await self.client.post(path, data=fields | {"csrf": self.csrf})
        return response.status, await response.text()

    async def page(self, path: str) -> str:
        response = await self.client.get(path)
        assert response.status == 200, await response.text()
        return await response.text()


@pytest.fixture
async def site(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Site]:
    app = make_app()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin = await add_agent(engine, "boss", PASSWORD, display_name="Boss", role=Role.ADMIN)
    site = Site(client, engine, admin)
    await site.sign_in(admin)
    yield site
    await client.close()


def textarea(page: str, name: str) -> str:
    found = re.search(rf'<textarea name="{name}"[^>]*>([^<]*)</textarea>', page)
    assert found is not None, f"no textarea {name}"
    return html.unescape(found[1])


def history(page: str) -> str:
    """The history table's text, one line per change."""
    table = page[page.index('<table class="table history">') :]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", table)).split())


async def test_the_list_links_each_article_to_its_page(site: Site) -> None:
    await create_article(site.engine, WIFI, None)

    page = await site.page("/admin/kb")

    assert '<a href="/admin/kb/wifi-password">Wi-Fi password</a>' in page


async def test_an_admin_creates_an_article_with_answers_in_both_languages(site: Site) -> None:
    status, page = await site.post(
        "/admin/kb",
        {
            "id": "mir-cards",
            "title": "Карты Мир",
            "answer_ru": "Да, мы принимаем карты Мир.",
            "answer_en": "Yes, we accept Mir cards.",
            "examples": "Можно оплатить картой Мир?\ncan I pay with a Mir card",
            "tags": "billing, cards",
            "threshold": "0,9",
            "enabled": "1",
        },
    )

    assert status == 200 and "<h1>Карты Мир" in page  # taken to the article's own page
    assert await load_article(site.engine, "mir-cards") == Article(
        id="mir-cards",
        title="Карты Мир",
        answers={"ru": "Да, мы принимаем карты Мир.", "en": "Yes, we accept Mir cards."},
        examples=("Можно оплатить картой Мир?", "can I pay with a Mir card"),
        tags=("billing", "cards"),
        threshold=0.9,
    )
    assert "Boss created" in history(page)


async def test_a_refused_new_article_shows_the_form_again_with_the_admins_input(
    site: Site,
) -> None:
    status, page = await site.post(
        "/admin/kb",
        {"id": "mir-cards", "title": "Карты Мир", "examples": "Можно картой Мир?", "enabled": "1"},
    )

    assert status == 400
    assert "needs an answer in Russian or English" in page
    assert 'value="mir-cards"' in page and textarea(page, "examples") == "Можно картой Мир?"
    assert await load_articles(site.engine) == []


async def test_a_new_article_cannot_take_an_id_that_exists(site: Site) -> None:
    await create_article(site.engine, WIFI, None)

    status, page = await site.post("/admin/kb", WIFI_FORM | {"id": "wifi-password"})

    assert status == 400 and "exists already" in page


async def test_an_admin_changes_every_field_of_an_article(site: Site) -> None:
    await create_article(site.engine, WIFI, None)
    form = textarea(await site.page("/admin/kb/wifi-password"), "answer_en")
    assert form == "Change it in your account."

    status, _ = await site.post(
        "/admin/kb/wifi-password",
        {
            "title": "Wi-Fi",
            "answer_ru": "",
            "answer_en": "In your account.",
            "examples": "how do I change my wifi password\nforgot my wifi password",
            "tags": "wifi, router",
            "threshold": "0.75",
            "never_auto": "1",
        },
    )

    assert status == 200
    assert await load_article(site.engine, "wifi-password") == Article(
        id="wifi-password",
        title="Wi-Fi",
        answers={"en": "In your account."},
        examples=("how do I change my wifi password", "forgot my wifi password"),
        tags=("wifi", "router"),
        never_auto=True,
        threshold=0.75,
        enabled=False,
    )


async def test_the_article_page_shows_who_changed_what_and_when(site: Site) -> None:
    await create_article(site.engine, WIFI, site.admin.id)

    await site.post(
        "/admin/kb/wifi-password",
        WIFI_FORM | {"tags": "wifi, router", "threshold": "0.8", "answer_en": "New answer."},
    )

    shown = history(await site.page("/admin/kb/wifi-password"))
    assert re.search(r"\d\d\.\d\d \d\d:\d\d Boss changed", shown)
    assert "Answer in English: Change it in your account. → New answer." in shown
    assert "Tags: + router" in shown
    assert "Threshold: — → 0.8" in shown
    assert "Answer in Russian" not in shown.split("Boss created")[0]  # unchanged: not listed


async def test_saving_the_form_unchanged_records_nothing(site: Site) -> None:
    await create_article(site.engine, WIFI, site.admin.id)

    await site.post("/admin/kb/wifi-password", WIFI_FORM)

    assert history(await site.page("/admin/kb/wifi-password")).count("Boss") == 1


async def test_unticking_enabled_disables_the_article(site: Site) -> None:
    await create_article(site.engine, WIFI, None)
    form = {key: value for key, value in WIFI_FORM.items() if key != "enabled"}

    await site.post("/admin/kb/wifi-password", form)

    assert await load_articles(site.engine) == [dataclasses.replace(WIFI, enabled=False)]
    assert "disabled" in await site.page("/admin/kb")


async def test_a_refused_change_keeps_the_admins_input_and_changes_nothing(site: Site) -> None:
    await create_article(site.engine, WIFI, None)

    status, page = await site.post(
        "/admin/kb/wifi-password", WIFI_FORM | {"title": "Wi-Fi 2", "threshold": "high"}
    )

    assert status == 400
    assert "threshold: &#39;high&#39; is not a number" in page
    assert 'value="Wi-Fi 2"' in page and 'value="high"' in page
    assert await load_articles(site.engine) == [WIFI]


async def test_deleting_an_article_removes_it_from_the_list(site: Site) -> None:
    await create_article(site.engine, WIFI, None)

    status, page = await site.post("/admin/kb/wifi-password/delete", {})

    assert status == 200 and "wifi-password" not in page
    assert (await site.client.get("/admin/kb/wifi-password")).status == 404


async def test_an_article_with_a_cyrillic_id_has_its_page(site: Site) -> None:
    await create_article(site.engine, dataclasses.replace(WIFI, id="пароль-вайфай"), None)
    listed = await site.page("/admin/kb")
    link = re.search(r'<a href="(/admin/kb/[^"]+)"><code>', listed)
    assert link is not None

    status, _ = await site.post(link[1], WIFI_FORM | {"title": "Пароль"})

    assert status == 200
    assert [a.title for a in await load_articles(site.engine)] == ["Пароль"]


async def test_an_agents_reply_drafts_an_article_answering_in_the_conversations_language(
    site: Site, memory_bus: MemoryBus, settings: Settings
) -> None:
    pipeline = Pipeline(site.engine, memory_bus, settings, responder=None)
    await pipeline.handle(entries(inbound(1, 1, "Можно оплатить картой Мир?", language="ru")))
    async with site.engine.connect() as conn:
        cid = (await conn.execute(sa.select(conversations.c.id))).scalar_one()
    await site.post(f"/c/{cid}/reply", {"text": "Да, мы принимаем карты Мир."})
    async with site.engine.connect() as conn:
        reply = sa.select(messages.c.id).where(messages.c.author_kind == "agent")
        reply_id = (await conn.execute(reply)).scalar_one()

    draft = await site.page(f"/admin/kb/new?message_id={reply_id}")

    assert textarea(draft, "examples") == "Можно оплатить картой Мир?"
    assert textarea(draft, "answer_ru") == "Да, мы принимаем карты Мир."
    assert textarea(draft, "answer_en") == ""


async def test_a_knowledge_gap_drafts_an_article_with_its_questions_as_examples(
    site: Site,
) -> None:
    draft = await site.page("/admin/kb/new?questions=заморозить договор%0Aпауза в договоре")

    assert textarea(draft, "examples") == "заморозить договор\nпауза в договоре"
    assert 'name="id" value="заморозить-договор"' in draft


async def test_an_agent_is_refused_the_knowledge_base_pages(site: Site) -> None:
    await create_article(site.engine, WIFI, None)
    await site.sign_in(await add_agent(site.engine, "anna", PASSWORD, display_name="Anna"))

    assert (await site.client.get("/admin/kb/wifi-password")).status == 403
    assert (await site.post("/admin/kb/wifi-password/delete", {}))[0] == 403
    assert await load_articles(site.engine) == [WIFI]


async def test_a_change_without_the_forms_csrf_token_is_refused(site: Site) -> None:
    await create_article(site.engine, WIFI, None)

    response = await site.client.post("/admin/kb/wifi-password/delete", data={"csrf": "forged"})

    assert response.status == 403
    assert await load_articles(site.engine) == [WIFI]
