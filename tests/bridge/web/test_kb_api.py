"""The knowledge-base articles in the REST API, for admins: list, read, create, change, disable,
delete, history; the refusals; and a change reaching the bot within `kb_refresh_seconds`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import Network
from bridge.inbox.agents import AgentInfo, Role, add_agent
from bridge.knowledge.articles import load_articles, upsert_articles
from bridge.knowledge.responder import KnowledgeResponder
from bridge.pipeline.responder import Question
from bridge.settings import Settings
from bridge.web.app import add_inbox
from bridge.web.auth import issue_api_token
from bridge.web.server import make_app
from kb.io import read_articles
from tests.bus_helpers import eventually
from tests.conftest import REPO
from tests.web_client import PASSWORD

SAMPLE_KB = REPO / "config" / "kb" / "sample.yaml"
MIR = {
    "id": "mir-cards",
    "title": "Карты Мир",
    "answers": {"ru": "Да, мы принимаем карты Мир.", "en": "Yes, we accept Mir cards."},
    "examples": ["можно ли оплатить картой мир", "do you accept mir cards"],
    "tags": ["billing"],
}
# what the API answers for MIR: every field, the defaults filled in
MIR_OUT = MIR | {"never_auto": False, "threshold": None, "enabled": True}


@pytest.fixture
def backend() -> str:
    """The API behaves alike on both backends (the store's tests run on both)."""
    return "sqlite"


@dataclass
class Api:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    admin: AgentInfo
    token: str

    async def call(
        self, method: str, path: str, body: Any = None, token: str | None = None
    ) -> tuple[int, Any]:
        response = await self.client.request(
            method,
            path,
            json=body,
            headers={"Authorization": f"Bearer {token or self.token}"},
        )
        return response.status, await response.json()

    async def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = await self.call(method, path, body)
        assert status == 200, answer
        return answer


@pytest.fixture
async def api(engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings) -> AsyncIterator[Api]:
    app = make_app()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin = await add_agent(engine, "boss", PASSWORD, display_name="Boss", role=Role.ADMIN)
    yield Api(client, engine, admin, await issue_api_token(engine, admin.id, "test"))
    await client.close()


async def test_an_admin_creates_an_article_and_reads_it_back(api: Api) -> None:
    created = await api.ok("POST", "/api/admin/kb/articles", MIR)

    assert created == MIR_OUT
    assert await api.ok("GET", "/api/admin/kb/articles/mir-cards") == MIR_OUT
    assert await api.ok("GET", "/api/admin/kb/articles") == {"articles": [MIR_OUT]}


async def test_a_change_sets_only_the_fields_it_names(api: Api) -> None:
    await api.ok("POST", "/api/admin/kb/articles", MIR)

    changed = await api.ok(
        "PATCH",
        "/api/admin/kb/articles/mir-cards",
        {"answers": {"en": "Mir cards: yes."}, "tags": ["billing", "cards"], "threshold": 0.8},
    )

    assert changed == MIR_OUT | {
        "answers": {"ru": "Да, мы принимаем карты Мир.", "en": "Mir cards: yes."},
        "tags": ["billing", "cards"],
        "threshold": 0.8,
    }


async def test_an_empty_answer_removes_its_language_and_a_null_threshold_the_override(
    api: Api,
) -> None:
    await api.ok("POST", "/api/admin/kb/articles", MIR | {"threshold": 0.9})

    changed = await api.ok(
        "PATCH", "/api/admin/kb/articles/mir-cards", {"answers": {"en": ""}, "threshold": None}
    )

    assert changed["answers"] == {"ru": "Да, мы принимаем карты Мир."}
    assert changed["threshold"] is None


async def test_the_history_says_who_changed_which_fields_from_what_to_what_and_when(
    api: Api,
) -> None:
    await api.ok("POST", "/api/admin/kb/articles", MIR)
    await api.ok(
        "PATCH", "/api/admin/kb/articles/mir-cards", {"enabled": False, "title": "Карты Мир"}
    )

    history = await api.ok("GET", "/api/admin/kb/articles/mir-cards/history")

    latest, created = history["changes"]
    assert latest["action"] == "updated"
    assert latest["changes"] == {"enabled": {"before": True, "after": False}}
    assert (latest["agent_id"], latest["agent_login"], latest["agent_name"]) == (
        api.admin.id,
        "boss",
        "Boss",
    )
    assert latest["at"] >= created["at"]
    assert created["action"] == "created"
    assert created["changes"]["examples"] == {"before": None, "after": MIR["examples"]}


async def test_a_deleted_article_is_gone_and_its_history_stays(api: Api) -> None:
    await api.ok("POST", "/api/admin/kb/articles", MIR)

    assert await api.ok("DELETE", "/api/admin/kb/articles/mir-cards") == {"ok": True}

    assert (await api.call("GET", "/api/admin/kb/articles/mir-cards"))[0] == 404
    history = await api.ok("GET", "/api/admin/kb/articles/mir-cards/history")
    assert [entry["action"] for entry in history["changes"]] == ["deleted", "created"]
    assert history["changes"][0]["changes"]["title"] == {"before": "Карты Мир", "after": None}


async def test_an_article_that_does_not_exist_is_404(api: Api) -> None:
    for method, path, body in [
        ("GET", "/api/admin/kb/articles/nothing", None),
        ("PATCH", "/api/admin/kb/articles/nothing", {"enabled": False}),
        ("DELETE", "/api/admin/kb/articles/nothing", None),
        ("GET", "/api/admin/kb/articles/nothing/history", None),
    ]:
        assert await api.call(method, path, body) == (404, {"error": "no such article"}), method


async def test_an_id_that_is_taken_is_409(api: Api) -> None:
    await api.ok("POST", "/api/admin/kb/articles", MIR)

    status, answer = await api.call("POST", "/api/admin/kb/articles", MIR | {"title": "Again"})

    assert (status, answer) == (409, {"error": "an article with the id 'mir-cards' exists already"})


async def test_a_value_the_knowledge_base_cannot_use_is_409_with_the_reason(api: Api) -> None:
    await api.ok("POST", "/api/admin/kb/articles", MIR)

    status, answer = await api.call(
        "PATCH", "/api/admin/kb/articles/mir-cards", {"answers": {"ru": "", "en": ""}}
    )

    assert (status, answer) == (409, {"error": "answers: needs an answer in Russian or English"})
    assert [a.answers for a in await load_articles(api.engine)] == [MIR["answers"]]


async def test_a_change_that_is_not_one_is_400_and_changes_nothing(api: Api) -> None:
    await api.ok("POST", "/api/admin/kb/articles", MIR)

    for body in [
        {"id": "other-id"},  # an id never changes
        {"threshold": 1.5},
        {"examples": []},
        {"tags": ["a,b"]},
        {"answers": {"de": "Antwort"}},
        {"title": "x" * 256},
    ]:
        status, _ = await api.call("PATCH", "/api/admin/kb/articles/mir-cards", body)
        assert status == 400, body

    assert await api.ok("GET", "/api/admin/kb/articles/mir-cards") == MIR_OUT


async def test_a_new_id_of_other_characters_is_400(api: Api) -> None:
    status, answer = await api.call("POST", "/api/admin/kb/articles", MIR | {"id": "mir cards"})

    assert status == 400 and answer["error"].startswith("id:")


async def test_an_agent_who_is_not_an_admin_is_refused_every_article_endpoint(api: Api) -> None:
    await api.ok("POST", "/api/admin/kb/articles", MIR)
    agent = await add_agent(api.engine, "anna", PASSWORD)
    token = await issue_api_token(api.engine, agent.id, "anna's")

    for method, path in [
        ("GET", "/api/admin/kb/articles"),
        ("POST", "/api/admin/kb/articles"),
        ("GET", "/api/admin/kb/articles/mir-cards"),
        ("PATCH", "/api/admin/kb/articles/mir-cards"),
        ("DELETE", "/api/admin/kb/articles/mir-cards"),
        ("GET", "/api/admin/kb/articles/mir-cards/history"),
    ]:
        answer = await api.call(method, path, MIR if method == "POST" else {}, token=token)
        assert answer == (403, {"error": "admins only"}), (method, path)

    assert len(await load_articles(api.engine)) == 1


async def test_the_article_endpoints_are_in_the_openapi_document(api: Api) -> None:
    document = await api.ok("GET", "/api/openapi.json")

    paths = document["paths"]
    assert set(paths["/api/admin/kb/articles"]) == {"get", "post"}
    assert set(paths["/api/admin/kb/articles/{article_id}"]) == {"get", "patch", "delete"}
    assert set(paths["/api/admin/kb/articles/{article_id}/history"]) == {"get"}
    assert paths["/api/admin/kb/articles"]["post"]["summary"].endswith("(admins only)")


async def test_a_change_is_live_in_the_bot_within_kb_refresh_seconds(
    api: Api, settings: Settings
) -> None:
    await upsert_articles(api.engine, read_articles(SAMPLE_KB)[:4])  # a small KB fits fast
    refresh = 0.05
    bot = KnowledgeResponder(api.engine, refresh_seconds=refresh)
    await bot.prepare()
    question = Question(1, Network.TELEGRAM, "можно ли оплатить картой мир?", "ru")

    async def answered_with_mir() -> bool:
        answer = await bot.answer(question)
        return answer is not None and answer.article_id == "mir-cards"

    assert not await answered_with_mir()
    await api.ok("POST", "/api/admin/kb/articles", MIR)
    # the refresh interval, then a refit in the background
    await eventually(answered_with_mir, refresh + 5, "the new article answered")
    answer = await bot.answer(question)
    assert answer is not None and answer.text == "Да, мы принимаем карты Мир."

    await api.ok("PATCH", "/api/admin/kb/articles/mir-cards", {"enabled": False})

    async def not_answered_with_mir() -> bool:
        return not await answered_with_mir()

    await eventually(not_answered_with_mir, refresh + 5, "the disabled article not answered")
