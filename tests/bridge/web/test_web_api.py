"""The REST API: its OpenAPI document, token auth, the role every endpoint checks, and the
actions (the same service functions as the pages)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import ConversationState, Network
from bridge.inbox.agents import Role, add_agent
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations, messages
from bridge.web.api import api
from bridge.web.app import add_inbox
from bridge.web.auth import issue_api_token
from tests.factories import comment, drain_outbound, entries, inbound, permission

PASSWORD = "correct horse battery"


@dataclass
class Api:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    bus: MemoryBus
    pipeline: Pipeline
    agent_token: str
    admin_token: str

    def as_agent(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.agent_token}"}

    def as_admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_token}"}

    async def conversation(self, chat: int = 1, text: str = "hello") -> int:
        await self.pipeline.handle(entries(inbound(chat, 1, text)))
        async with self.engine.connect() as conn:
            query = sa.select(conversations.c.id).where(conversations.c.chat_id == str(chat))
            return int((await conn.execute(query)).scalar_one())


@pytest.fixture
async def rest(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Api]:
    app = web.Application()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin = await add_agent(engine, "boss", PASSWORD, role=Role.ADMIN)
    agent = await add_agent(engine, "anna", PASSWORD)
    yield Api(
        client,
        engine,
        memory_bus,
        Pipeline(engine, memory_bus, settings, responder=None),
        await issue_api_token(engine, agent.id, "crm"),
        await issue_api_token(engine, admin.id, "ops"),
    )
    await client.close()


def concrete(path: str) -> str:
    return re.sub(r"{\w+}", "1", path)


async def test_the_openapi_document_is_valid_and_lists_every_endpoint(rest: Api) -> None:
    response = await rest.client.get("/api/openapi.json")
    document = await response.json()

    validate(document)
    listed = {(method.upper(), path) for path, ops in document["paths"].items() for method in ops}
    assert listed == {(e.method, e.path) for e in api.endpoints}


@pytest.mark.parametrize("endpoint", api.endpoints, ids=lambda e: f"{e.method} {e.path}")
async def test_a_client_without_credentials_can_call_no_endpoint(rest: Api, endpoint) -> None:  # type: ignore[no-untyped-def]
    response = await rest.client.request(endpoint.method, concrete(endpoint.path), json={})

    assert response.status == 401
    assert (await response.json())["error"]


@pytest.mark.parametrize(
    "endpoint", [e for e in api.endpoints if e.admin], ids=lambda e: f"{e.method} {e.path}"
)
async def test_an_agent_can_call_no_admin_endpoint(rest: Api, endpoint) -> None:  # type: ignore[no-untyped-def]
    response = await rest.client.request(
        endpoint.method, concrete(endpoint.path), json={}, headers=rest.as_agent()
    )

    assert response.status == 403


async def test_an_unknown_token_is_refused(rest: Api) -> None:
    response = await rest.client.get("/api/me", headers={"Authorization": "Bearer sb_forged"})

    assert response.status == 401


async def test_a_token_acts_as_its_agent(rest: Api) -> None:
    response = await rest.client.get("/api/me", headers=rest.as_agent())

    assert (await response.json())["login"] == "anna"


async def test_a_reply_through_the_api_reaches_the_customers_network(rest: Api) -> None:
    cid = await rest.conversation()

    response = await rest.client.post(
        f"/api/conversations/{cid}/reply", json={"text": "On it!"}, headers=rest.as_agent()
    )

    assert response.status == 200
    sent = drain_outbound(rest.bus, Network.TELEGRAM)[-1]
    assert (sent.text, sent.author_kind) == ("On it!", "agent")


async def test_bad_input_gets_a_clear_error_and_changes_nothing(rest: Api) -> None:
    cid = await rest.conversation()

    empty = await rest.client.post(
        f"/api/conversations/{cid}/reply", json={"text": "   "}, headers=rest.as_agent()
    )
    broken = await rest.client.post(
        f"/api/conversations/{cid}/reply", data=b"{not json", headers=rest.as_agent()
    )
    extra = await rest.client.post(
        f"/api/conversations/{cid}/reply",
        json={"text": "hi", "as_admin": True},
        headers=rest.as_agent(),
    )

    assert [r.status for r in (empty, broken, extra)] == [400, 400, 400]
    assert (await empty.json())["error"].startswith("text:")
    assert [m.author_kind for m in drain_outbound(rest.bus, Network.TELEGRAM)] == ["system"]


async def test_a_note_of_what_python_counts_as_whitespace_is_refused_not_a_server_error(
    rest: Api,
) -> None:
    cid = await rest.conversation()

    response = await rest.client.post(
        f"/api/conversations/{cid}/notes", json={"text": "\u001d"}, headers=rest.as_agent()
    )

    assert response.status == 400


# what JavaScript's \s holds (ECMA-262 WhiteSpace and LineTerminator), as a client reads a pattern
JAVASCRIPT_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


async def test_the_documented_text_pattern_refuses_every_text_the_server_refuses(
    rest: Api,
) -> None:
    schemas = (await (await rest.client.get("/api/openapi.json")).json())["components"]["schemas"]
    pattern = schemas["TextIn"]["properties"]["text"]["pattern"]
    as_javascript_reads_it = pattern.replace("\\S", f"[^{JAVASCRIPT_SPACE}]").replace(
        "\\s", JAVASCRIPT_SPACE
    )
    python_whitespace = [chr(c) for c in range(0x110000) if chr(c).isspace()]

    assert not [c for c in python_whitespace if re.search(as_javascript_reads_it, c)]
    assert not [c for c in python_whitespace if re.search(pattern, c)]


async def test_an_unknown_conversation_is_not_found(rest: Api) -> None:
    response = await rest.client.post(
        "/api/conversations/999/reply", json={"text": "hi"}, headers=rest.as_agent()
    )

    assert response.status == 404


async def test_an_action_the_state_does_not_allow_is_a_conflict(rest: Api) -> None:
    cid = await rest.conversation()

    response = await rest.client.post(f"/api/conversations/{cid}/reopen", headers=rest.as_agent())

    assert response.status == 409
    assert "only a resolved conversation" in (await response.json())["error"]


async def test_the_inbox_and_a_conversation_read_as_json(rest: Api) -> None:
    cid = await rest.conversation(text="where is my order?")

    listing = await (await rest.client.get("/api/conversations", headers=rest.as_agent())).json()
    detail = await (
        await rest.client.get(f"/api/conversations/{cid}", headers=rest.as_agent())
    ).json()

    assert listing["counts"]["waiting"] == 1
    assert listing["conversations"][0]["preview"] == "where is my order?"
    assert detail["state"] == ConversationState.WAITING
    assert [m["author_kind"] for m in detail["history"]] == ["customer", "system"]


async def test_the_list_pages_with_limit_and_cursor_to_a_null_next_cursor(rest: Api) -> None:
    for chat in range(1, 6):
        await rest.conversation(chat)

    seen: list[int] = []
    params = {"limit": "2"}
    while True:
        response = await rest.client.get(
            "/api/conversations", params=params, headers=rest.as_agent()
        )
        page = await response.json()
        seen += [row["id"] for row in page["conversations"]]
        assert page["counts"]["waiting"] == 5
        if page["next_cursor"] is None:
            break
        params = {"limit": "2", "cursor": page["next_cursor"]}

    assert len(seen) == len(set(seen)) == 5


async def test_reading_a_conversation_through_the_api_marks_it_read(rest: Api) -> None:
    cid = await rest.conversation(1, "Где мой заказ?")

    async def unread() -> bool:
        page = await (await rest.client.get("/api/conversations", headers=rest.as_agent())).json()
        return bool(page["conversations"][0]["unread"])

    assert await unread()
    await rest.client.get(f"/api/conversations/{cid}", headers=rest.as_agent())
    assert not await unread()


async def test_the_list_searches_the_words_of_the_messages(rest: Api) -> None:
    await rest.conversation(1, "Мой заказ не пришёл")
    await rest.conversation(2, "Как поменять пароль?")

    params = {"q": "заказы"}
    page = await (
        await rest.client.get("/api/conversations", params=params, headers=rest.as_agent())
    ).json()

    assert [row["preview"] for row in page["conversations"]] == ["Мой заказ не пришёл"]
    assert page["counts"]["waiting"] == 1


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"cursor": "bm90IGpzb24"}, "cursor: not one this list gave"),
        ({"limit": "0"}, "limit:"),
        ({"q": "слово " * 50}, "q: at most 200 characters"),
    ],
)
async def test_a_bad_cursor_or_limit_is_refused_with_the_reason(
    rest: Api, params: dict[str, str], reason: str
) -> None:
    response = await rest.client.get("/api/conversations", params=params, headers=rest.as_agent())

    assert response.status == 400
    assert reason in (await response.json())["error"]


async def test_a_conversations_messages_carry_the_fields_the_document_lists(rest: Api) -> None:
    cid = await rest.conversation()

    schemas = (await (await rest.client.get("/api/openapi.json")).json())["components"]["schemas"]
    detail = await (
        await rest.client.get(f"/api/conversations/{cid}", headers=rest.as_agent())
    ).json()

    listed = schemas["ConversationOut"]["properties"]["history"]["items"]["$ref"]
    fields = set(schemas[listed.rsplit("/", 1)[1]]["properties"])
    assert detail["history"]
    assert all(set(message) == fields for message in detail["history"])


async def test_an_admin_adds_and_disables_an_agent(rest: Api) -> None:
    added = await rest.client.post(
        "/api/admin/agents",
        json={"login": "petr", "password": PASSWORD},
        headers=rest.as_admin(),
    )
    petr = await added.json()
    changed = await rest.client.patch(
        f"/api/admin/agents/{petr['id']}", json={"active": False}, headers=rest.as_admin()
    )

    assert (added.status, changed.status) == (200, 200)
    assert (await changed.json())["active"] is False


async def test_a_cookie_session_needs_the_csrf_header_on_the_api(rest: Api) -> None:
    page = await rest.client.get("/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert csrf is not None
    await rest.client.post("/login", data={"login": "anna", "password": PASSWORD, "csrf": csrf[1]})
    cid = await rest.conversation()

    response = await rest.client.post(f"/api/conversations/{cid}/claim")

    assert response.status == 403


async def public_thread(rest: Api) -> tuple[int, int]:
    """A VK post with two comments; the thread's id and the first comment's."""
    await rest.pipeline.handle(
        entries(comment("wall-1_5", 501, 10, "Есть размер M?"), comment("wall-1_5", 502, 11))
    )
    async with rest.engine.connect() as conn:
        thread = (await conn.execute(sa.select(conversations.c.id))).scalar_one()
        first = (
            await conn.execute(sa.select(messages.c.id).where(messages.c.text == "Есть размер M?"))
        ).scalar_one()
    return int(thread), int(first)


async def test_a_public_thread_reads_as_public_with_its_post_and_its_commenters(
    rest: Api,
) -> None:
    cid, _ = await public_thread(rest)

    detail = await (
        await rest.client.get(f"/api/conversations/{cid}", headers=rest.as_agent())
    ).json()

    assert (detail["public"], detail["post_url"]) == (True, "https://vk.com/wall-1_5")
    assert [(m["public"], m["commenter"]) for m in detail["history"]] == [
        (True, "Commenter 501"),
        (True, "Commenter 502"),
    ]


async def test_a_reply_through_the_api_answers_the_comment_it_names(rest: Api) -> None:
    cid, first = await public_thread(rest)

    response = await rest.client.post(
        f"/api/conversations/{cid}/reply",
        json={"text": "Есть", "reply_to": first},
        headers=rest.as_agent(),
    )

    assert response.status == 200
    (sent,) = drain_outbound(rest.bus, Network.VK)
    assert (sent.public, sent.in_reply_to) == (True, "wall-1_5:10")


async def test_moving_to_private_through_the_api_answers_the_private_conversation(
    rest: Api,
) -> None:
    cid, first = await public_thread(rest)

    response = await rest.client.post(
        f"/api/conversations/{cid}/private",
        json={"text": "Напишите номер заказа", "message_id": first},
        headers=rest.as_agent(),
    )

    moved = await response.json()
    (sent,) = drain_outbound(rest.bus, Network.VK)
    assert (sent.chat_id, sent.public, sent.conversation_id) == (
        "501",
        False,
        moved["conversation_id"],
    )


async def test_moving_a_customer_who_denied_messages_is_a_conflict_that_says_why(
    rest: Api,
) -> None:
    cid, first = await public_thread(rest)
    await rest.pipeline.handle(entries(permission(501, allows=False)))

    response = await rest.client.post(
        f"/api/conversations/{cid}/private",
        json={"text": "Напишите номер заказа", "message_id": first},
        headers=rest.as_agent(),
    )

    assert response.status == 409
    assert "in public" in await response.text()
    assert drain_outbound(rest.bus, Network.VK) == []


async def test_marking_a_solution_through_the_api_answers_its_id_and_refuses_a_question(
    rest: Api,
) -> None:
    cid, first = await public_thread(rest)
    async with rest.engine.connect() as conn:
        answer = (await conn.execute(sa.select(sa.func.max(messages.c.id)))).scalar_one()

    marked = await rest.client.post(
        f"/api/conversations/{cid}/solutions", json={"message_id": answer}, headers=rest.as_agent()
    )
    refused = await rest.client.post(
        f"/api/conversations/{cid}/solutions", json={"message_id": first}, headers=rest.as_agent()
    )

    assert marked.status == 200
    assert isinstance((await marked.json())["id"], int)
    assert refused.status == 409
    assert "answers no question" in await refused.text()
