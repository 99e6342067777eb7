"""The web inbox over HTTP: sign-in, roles, CSRF, the list and its filters, the conversation view
and the agents' actions. (The real browser is in test_web_browser.py.)"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import ClientWebSocketResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.bus.redis import RedisBus
from bridge.domain import (
    ConversationState,
    DeliveryStatus,
    Direction,
    Event,
    EventKind,
    InboundMessage,
    Network,
    PublicPlace,
)
from bridge.inbox.agents import AgentInfo, Role, add_agent
from bridge.knowledge.articles import load_articles, seed_articles
from bridge.knowledge.responder import KnowledgeResponder
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversation_merges, conversations, decisions, messages, utcnow
from bridge.web.app import add_inbox
from bridge.web.server import make_app
from tests.conftest import REPO
from tests.factories import (
    ScriptedResponder,
    comment,
    drain_outbound,
    entries,
    inbound,
    judged_answers,
    permission,
)
from tests.web_client import CSRF_FIELD, PASSWORD, sign_in

SAMPLE_KB = REPO / "config" / "kb" / "sample.yaml"


@dataclass
class Web:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    bus: MemoryBus
    pipeline: Pipeline
    admin: AgentInfo
    agent: AgentInfo

    async def sign_in(self, who: AgentInfo) -> str:
        return await sign_in(self.client, who)

    async def customer_writes(self, chat: int, seq: int, text: str, **kwargs: object) -> int:
        await self.pipeline.handle(entries(inbound(chat, seq, text, **kwargs)))  # type: ignore[arg-type]
        async with self.engine.connect() as conn:
            return int(
                (
                    await conn.execute(
                        sa.select(conversations.c.id).where(conversations.c.chat_id == str(chat))
                    )
                ).scalar_one()
            )


@pytest.fixture
async def site(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Web]:
    app = make_app()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin = await add_agent(engine, "boss", PASSWORD, display_name="Boss", role=Role.ADMIN)
    agent = await add_agent(engine, "anna", PASSWORD, display_name="Anna")
    pipeline = Pipeline(engine, memory_bus, settings, responder=None)
    yield Web(client, engine, memory_bus, pipeline, admin, agent)
    await client.close()


async def test_a_signed_out_visitor_is_sent_to_the_sign_in_page(site: Web) -> None:
    response = await site.client.get("/", allow_redirects=False)

    assert response.status == 303
    assert response.headers["Location"].startswith("/login")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/c/1/reply"),
        ("POST", "/c/1/resolve"),
        ("GET", "/admin/agents"),
        ("POST", "/admin/agents"),
        ("POST", "/me/language"),
    ],
)
async def test_a_signed_out_client_can_do_nothing(site: Web, method: str, path: str) -> None:
    response = await site.client.request(
        method, path, allow_redirects=False, headers={"Accept": "application/json"}
    )

    assert response.status == 401


async def test_a_wrong_password_is_refused_with_a_clear_message(site: Web) -> None:
    page = await site.client.get("/login")
    csrf = CSRF_FIELD.search(await page.text())
    assert csrf is not None
    response = await site.client.post(
        "/login", data={"login": "anna", "password": "nope nope", "csrf": csrf[1]}
    )

    assert response.status == 401
    assert "Wrong login or password." in await response.text()


async def test_a_disabled_agent_cannot_sign_in(site: Web) -> None:
    csrf = await site.sign_in(site.admin)
    await site.client.post(f"/admin/agents/{site.agent.id}", data={"active": "0", "csrf": csrf})
    site.client.session.cookie_jar.clear()

    page = await site.client.get("/login")
    token = CSRF_FIELD.search(await page.text())
    assert token is not None
    response = await site.client.post(
        "/login", data={"login": "anna", "password": PASSWORD, "csrf": token[1]}
    )
    assert response.status == 401


async def test_a_sign_in_never_redirects_to_another_site(site: Web) -> None:
    page = await site.client.get("/login?next=//evil.example/")
    csrf = CSRF_FIELD.search(await page.text())
    assert csrf is not None
    response = await site.client.post(
        "/login",
        data={"login": "anna", "password": PASSWORD, "csrf": csrf[1], "next": "//evil.example/"},
        allow_redirects=False,
    )

    assert response.headers["Location"] == "/"


async def test_a_post_without_the_csrf_token_is_refused(site: Web) -> None:
    await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "hello")

    response = await site.client.post(f"/c/{cid}/reply", data={"text": "hi"})

    assert response.status == 403
    assert drain_outbound(site.bus, Network.TELEGRAM)[-1].author_kind != "agent"


async def test_an_agent_cannot_do_admin_actions(site: Web) -> None:
    csrf = await site.sign_in(site.agent)

    page = await site.client.get("/admin/agents")
    add = await site.client.post(
        "/admin/agents", data={"login": "eve", "password": PASSWORD, "role": "admin", "csrf": csrf}
    )

    assert (page.status, add.status) == (403, 403)


async def test_the_inbox_lists_waiting_conversations_with_counts_per_view(site: Web) -> None:
    await site.sign_in(site.agent)
    await site.customer_writes(1, 1, "Не работает интернет")
    await site.customer_writes(2, 1, "my router is broken")

    page = await (await site.client.get("/?view=waiting")).text()

    assert "Не работает интернет" in page and "my router is broken" in page
    assert re.search(r'data-view="waiting">\s*<span>[^<]+</span><span class="count">2<', page)
    assert re.search(r'data-view="mine">\s*<span>[^<]+</span><span class="count">0<', page)


async def test_the_inbox_filters_by_network_and_language(site: Web) -> None:
    await site.sign_in(site.agent)
    await site.customer_writes(1, 1, "Не работает интернет")
    await site.customer_writes(2, 1, "my router is broken", network=Network.VK)

    by_network = await (await site.client.get("/?view=waiting&network=vk")).text()
    by_language = await (await site.client.get("/?view=waiting&language=ru")).text()

    assert "my router is broken" in by_network and "Не работает интернет" not in by_network
    assert "Не работает интернет" in by_language and "my router is broken" not in by_language


async def test_every_network_and_language_choice_shows_how_many_it_holds(site: Web) -> None:
    await site.sign_in(site.agent)
    await site.customer_writes(1, 1, "Не работает интернет")
    await site.customer_writes(2, 1, "Роутер не включается")
    await site.customer_writes(3, 1, "my router is broken", network=Network.VK)

    page = await (await site.client.get("/?view=waiting&language=ru")).text()
    answer = await (await site.client.get("/api/conversations?view=waiting&network=vk")).json()

    assert re.search(r'value="telegram"\s*>Telegram \(2\)<', page)
    assert re.search(r'value="vk"\s*>Vk \(0\)<', page), "within the language chosen"
    assert re.search(r"selected>Русский \(2\)<", page)
    assert re.search(r">English \(1\)<", page), "the language's own choice left out"
    assert answer["network_counts"]["telegram"] == 2, "the network's own choice left out"
    assert answer["language_counts"] == {"en": 1}


async def test_instagram_conversations_are_listed_marked_and_filtered_like_any_network(
    site: Web,
) -> None:
    await site.sign_in(site.agent)
    await site.customer_writes(1, 1, "Не работает интернет")
    await site.customer_writes(2, 1, "где мой заказ?", network=Network.INSTAGRAM)

    page = await (await site.client.get("/?view=waiting&network=instagram")).text()

    assert "где мой заказ?" in page and "Не работает интернет" not in page
    assert re.search(r'value="instagram"\s*selected>Instagram \(1\)<', page)
    assert re.search(r'class="net net-instagram"[^>]*>IG<', page)


async def test_the_sla_clock_turns_amber_then_red(site: Web) -> None:
    await site.sign_in(site.agent)
    amber = await site.customer_writes(1, 1, "one")
    red = await site.customer_writes(2, 1, "two")
    now = dt.datetime.now(dt.UTC)
    async with site.engine.begin() as conn:
        for cid, minutes in ((amber, 50), (red, 70)):
            await conn.execute(
                sa.update(conversations)
                .where(conversations.c.id == cid)
                .values(awaiting_since=now - dt.timedelta(minutes=minutes))
            )

    page = await (await site.client.get("/")).text()

    assert re.search(r'class="sla sla-amber"[^>]*>50 min<', page)
    assert re.search(r'class="sla sla-red"[^>]*>1 h 10 min<', page)


async def test_customer_text_is_escaped_in_the_list_and_the_conversation(site: Web) -> None:
    await site.sign_in(site.agent)
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    cid = await site.customer_writes(1, 1, attack)

    listing = await (await site.client.get("/")).text()
    thread = await (await site.client.get(f"/c/{cid}")).text()

    for page in (listing, thread):
        assert attack not in page
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in page


async def test_an_agents_reply_is_stored_queued_and_takes_the_conversation(site: Web) -> None:
    csrf = await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "hello")

    response = await site.client.post(
        f"/c/{cid}/reply", data={"text": "Hello! How can I help?", "csrf": csrf}
    )

    assert response.status == 200  # followed the redirect back to the conversation
    assert "Hello! How can I help?" in await response.text()
    sent = drain_outbound(site.bus, Network.TELEGRAM)[-1]
    assert (sent.text, sent.author_kind) == ("Hello! How can I help?", "agent")
    async with site.engine.connect() as conn:
        row = (await conn.execute(sa.select(conversations))).one()
    assert (row.state, row.assignee_id, row.awaiting_since) == (
        ConversationState.ASSIGNED,
        site.agent.id,
        None,
    )


async def test_an_internal_note_is_shown_and_never_sent(site: Web) -> None:
    csrf = await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "hello")
    queued_before = len(drain_outbound(site.bus, Network.TELEGRAM))

    response = await site.client.post(
        f"/c/{cid}/note", data={"text": "VIP customer, be gentle", "csrf": csrf}
    )

    assert "VIP customer, be gentle" in await response.text()
    assert queued_before == 1 and drain_outbound(site.bus, Network.TELEGRAM) == []
    async with site.engine.connect() as conn:
        direction = (
            await conn.execute(sa.select(messages.c.direction).order_by(messages.c.id.desc()))
        ).first()
    assert direction is not None and direction[0] is Direction.INTERNAL


async def test_claim_resolve_and_reopen_move_the_conversation(site: Web) -> None:
    csrf = await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "hello")

    async def state() -> tuple[object, ...]:
        async with site.engine.connect() as conn:
            return tuple(
                (
                    await conn.execute(
                        sa.select(conversations.c.state, conversations.c.assignee_id)
                    )
                ).one()
            )

    await site.client.post(f"/c/{cid}/claim", data={"csrf": csrf})
    assert await state() == (ConversationState.ASSIGNED, site.agent.id)
    await site.client.post(f"/c/{cid}/resolve", data={"csrf": csrf})
    assert (await state())[0] is ConversationState.RESOLVED
    await site.client.post(f"/c/{cid}/reopen", data={"csrf": csrf})
    assert await state() == (ConversationState.ASSIGNED, site.agent.id)


async def test_a_conversation_can_be_transferred_to_a_colleague(site: Web) -> None:
    csrf = await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "hello")

    await site.client.post(f"/c/{cid}/transfer", data={"agent_id": site.admin.id, "csrf": csrf})

    async with site.engine.connect() as conn:
        assignee = (await conn.execute(sa.select(conversations.c.assignee_id))).scalar_one()
    assert assignee == site.admin.id


async def test_a_refused_action_explains_why(site: Web) -> None:
    csrf = await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "hello")

    response = await site.client.post(f"/c/{cid}/reopen", data={"csrf": csrf})

    assert "only a resolved conversation can be reopened" in await response.text()


async def test_a_failed_message_shows_the_networks_reason_and_can_be_sent_again(
    site: Web,
) -> None:
    csrf = await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "hello")
    drain_outbound(site.bus, Network.TELEGRAM)
    async with site.engine.begin() as conn:
        await conn.execute(
            sa.update(messages)
            .where(messages.c.direction == Direction.OUTBOUND)
            .values(
                delivery_status=DeliveryStatus.FAILED,
                delivery_error="Forbidden: bot was blocked by the user",
            )
        )
        failed = (
            await conn.execute(
                sa.select(messages.c.id).where(messages.c.direction == Direction.OUTBOUND)
            )
        ).scalar_one()

    page = await (await site.client.get(f"/c/{cid}")).text()
    assert "Forbidden: bot was blocked by the user" in page
    await site.client.post(f"/c/{cid}/retry", data={"message_id": failed, "csrf": csrf})

    (again,) = drain_outbound(site.bus, Network.TELEGRAM)
    assert again.message_id == failed


async def test_an_admin_adds_an_agent_who_can_then_sign_in(site: Web) -> None:
    csrf = await site.sign_in(site.admin)

    await site.client.post(
        "/admin/agents",
        data={"login": "Petr", "password": PASSWORD, "role": "agent", "csrf": csrf},
    )
    page = await (await site.client.get("/admin/agents")).text()
    assert "petr" in page
    site.client.session.cookie_jar.clear()
    petr = AgentInfo(0, "petr", "petr", Role.AGENT, "en", True)
    await site.sign_in(petr)


async def test_disabling_an_agent_signs_them_out_at_once(site: Web) -> None:
    await site.sign_in(site.agent)
    agent_cookies = site.client.session.cookie_jar.filter_cookies(site.client.make_url("/"))
    site.client.session.cookie_jar.clear()
    csrf = await site.sign_in(site.admin)
    await site.client.post(f"/admin/agents/{site.agent.id}", data={"active": "0", "csrf": csrf})

    site.client.session.cookie_jar.clear()
    site.client.session.cookie_jar.update_cookies(agent_cookies)
    response = await site.client.get("/", allow_redirects=False)
    assert response.status == 303


async def test_the_last_admin_cannot_be_disabled(site: Web) -> None:
    csrf = await site.sign_in(site.admin)

    response = await site.client.post(
        f"/admin/agents/{site.admin.id}", data={"active": "0", "csrf": csrf}
    )

    assert "the last active admin cannot be demoted or disabled" in await response.text()


async def test_an_agent_reads_the_inbox_in_russian(site: Web) -> None:
    csrf = await site.sign_in(site.agent)

    await site.client.post("/me/language", data={"language": "ru", "next": "/", "csrf": csrf})
    page = await (await site.client.get("/")).text()

    assert "Ожидают" in page and "Выйти" in page
    assert '<html lang="ru">' in page


async def test_pages_forbid_inline_scripts_and_framing(site: Web) -> None:
    response = await site.client.get("/login")

    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_the_live_socket_refuses_a_signed_out_client(site: Web) -> None:
    response = await site.client.get("/ws/inbox", headers={"Accept": "application/json"})

    assert response.status == 401


async def test_the_live_socket_refuses_a_page_of_another_site(site: Web) -> None:
    await site.sign_in(site.agent)

    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await site.client.ws_connect("/ws/inbox", headers={"Origin": "https://evil.example"})

    assert refused.value.status == 403


async def test_a_socket_first_says_it_is_subscribed_so_the_page_fetches_what_it_missed(
    site: Web,
) -> None:
    await site.sign_in(site.agent)
    origin = str(site.client.make_url("/")).rstrip("/")
    socket = await site.client.ws_connect("/ws/inbox", headers={"Origin": origin})

    assert await asyncio.wait_for(socket.receive_json(), 5) == {"kind": "subscribed"}
    await socket.close()


async def test_an_open_inbox_hears_of_a_new_customer_message_at_once(site: Web) -> None:
    await site.sign_in(site.agent)
    origin = str(site.client.make_url("/")).rstrip("/")
    socket = await site.client.ws_connect("/ws/inbox", headers={"Origin": origin})
    await asyncio.wait_for(socket.receive_json(), 5)  # subscribed

    cid = await site.customer_writes(1, 1, "hello")
    event = await asyncio.wait_for(socket.receive_json(), 5)

    assert (event["kind"], event["conversation_id"]) == ("message.created", cid)
    await socket.close()


async def test_a_colleague_on_the_same_conversation_hears_who_views_types_and_leaves(
    site: Web,
) -> None:
    cid = await site.customer_writes(1, 1, "hello")
    colleague = TestClient(site.client.server)  # a second browser: its own cookies
    await sign_in(colleague, site.admin)
    await site.sign_in(site.agent)
    boss, anna = [await _live_socket(client) for client in (colleague, site.client)]

    await anna.send_str(json.dumps({"viewing": cid, "hello": True}))
    viewing = await _next_presence(boss)
    await anna.send_str(json.dumps({"viewing": cid, "typing": True}))
    typing = await _next_presence(boss)
    await anna.close()
    left = await _next_presence(boss)

    assert viewing["conversation_id"] == cid
    assert (viewing["data"]["name"], viewing["data"]["hello"]) == ("Anna", True)
    assert typing["data"]["typing"] is True
    assert left["data"]["left"] is True
    await boss.close()


async def _live_socket(client: TestClient[web.Request, web.Application]) -> ClientWebSocketResponse:
    origin = str(client.make_url("/")).rstrip("/")
    socket = await client.ws_connect("/ws/inbox", headers={"Origin": origin})
    assert (await asyncio.wait_for(socket.receive_json(), 5))["kind"] == "subscribed"
    return socket


async def _next_presence(socket: ClientWebSocketResponse) -> dict[str, Any]:
    while True:
        event: dict[str, Any] = await asyncio.wait_for(socket.receive_json(), 5)
        if event["kind"] == EventKind.AGENT_PRESENCE:
            return event


@pytest.mark.redis
async def test_every_web_process_hears_the_events_of_every_core(
    engine: AsyncEngine, settings: Settings, redis_url: str, redis_prefix: str
) -> None:
    """Two `web` processes' apps on their own Redis connections; the event comes from a third."""
    buses = [RedisBus(redis_url, 4, prefix=redis_prefix) for _ in range(3)]
    clients = []
    agent = await add_agent(engine, "anna", PASSWORD)
    for bus in buses[:2]:
        app = web.Application()
        add_inbox(app, engine, bus, settings)
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
    sockets = []
    for client in clients:
        page = Web(
            client,
            engine,
            MemoryBus(1),
            Pipeline(engine, MemoryBus(1), settings, None),
            agent,
            agent,
        )
        await page.sign_in(agent)
        origin = str(client.make_url("/")).rstrip("/")
        socket = await client.ws_connect("/ws/inbox", headers={"Origin": origin})
        await asyncio.wait_for(socket.receive_json(), 5)  # subscribed on Redis
        sockets.append(socket)

    await buses[2].publish_events([Event(kind="conversation.state", conversation_id=42)])

    heard = [await asyncio.wait_for(socket.receive_json(), 5) for socket in sockets]
    assert [event["conversation_id"] for event in heard] == [42, 42]
    for socket, client in zip(sockets, clients, strict=True):
        await socket.close()
        await client.close()
    for bus in buses:
        await bus.close()


async def test_an_agent_links_the_same_person_on_another_network_and_undoes_it(site: Web) -> None:
    csrf = await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "Telegram: where is my order?")
    await site.customer_writes(2, 1, "VK: it is me again", network=Network.VK)

    found = await (await site.client.get(f"/c/{cid}?find=Customer 2")).text()
    other = re.search(r'name="customer_id" value="(\d+)"', found)
    assert other is not None
    linked = await (
        await site.client.post(f"/c/{cid}/link", data={"customer_id": other[1], "csrf": csrf})
    ).text()
    assert "VK: it is me again" in linked
    link_id = re.search(r'name="link_id" value="(\d+)"', linked)
    assert link_id is not None
    undone = await (
        await site.client.post(f"/c/{cid}/unlink", data={"link_id": link_id[1], "csrf": csrf})
    ).text()
    assert "VK: it is me again" not in undone


async def test_canned_responses_an_admin_adds_are_offered_in_the_reply_box(site: Web) -> None:
    admin_csrf = await site.sign_in(site.admin)
    await site.client.post(
        "/admin/canned",
        data={
            "title": "Greeting",
            "text": "Hello! How can I help?",
            "language": "",
            "csrf": admin_csrf,
        },
    )
    site.client.session.cookie_jar.clear()
    await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "hello")

    page = await (await site.client.get(f"/c/{cid}")).text()

    assert 'data-text="Hello! How can I help?">Greeting</option>' in page
    assert (await site.client.get("/admin/canned")).status == 403


async def test_the_page_of_a_conversation_merged_into_another_leads_to_it(site: Web) -> None:
    """A private conversation a Messenger private reply keyed under a PSID the person already
    had a conversation under went into that one (bridge.store.rekey)."""
    await site.sign_in(site.agent)
    into = await site.customer_writes(1, 1, "hello", network=Network.FACEBOOK)
    async with site.engine.begin() as conn:
        await conn.execute(
            sa.insert(conversation_merges).values(
                conversation_id=into + 1, into_id=into, merged_at=utcnow()
            )
        )

    response = await site.client.get(f"/c/{into + 1}", allow_redirects=False)

    assert (response.status, response.headers["Location"]) == (303, f"/c/{into}")
    assert (await site.client.get(f"/c/{into + 2}")).status == 404


async def test_the_knowledge_base_is_searched_from_the_reply_box(site: Web) -> None:
    await seed_articles(site.engine, SAMPLE_KB)
    await site.sign_in(site.agent)

    response = await site.client.get(
        "/api/kb/search", params={"q": "как поменять пароль от вайфая", "language": "ru"}
    )

    best = (await response.json())["articles"][0]
    assert best["article_id"] == "wifi-password"
    assert best["answer"].startswith("Пароль Wi-Fi меняется")


async def test_an_admin_turns_an_agents_reply_into_an_article(site: Web) -> None:
    agent_csrf = await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "Можно оплатить картой Мир?")
    await site.client.post(
        f"/c/{cid}/reply", data={"text": "Да, мы принимаем карты Мир.", "csrf": agent_csrf}
    )
    async with site.engine.connect() as conn:
        reply_id = (
            await conn.execute(sa.select(messages.c.id).where(messages.c.author_kind == "agent"))
        ).scalar_one()
    site.client.session.cookie_jar.clear()
    csrf = await site.sign_in(site.admin)

    draft = await (await site.client.get(f"/admin/kb/new?message_id={reply_id}")).text()
    assert "Можно оплатить картой Мир?</textarea>" in draft
    assert "Да, мы принимаем карты Мир.</textarea>" in draft
    created = await site.client.post(
        "/admin/kb",
        data={
            "id": "mir-cards",
            "title": "Карты Мир",
            "examples": "Можно оплатить картой Мир?",
            "answer_ru": "Да, мы принимаем карты Мир.",
            "enabled": "1",
            "csrf": csrf,
        },
    )

    assert created.status == 200
    stored = {a.id: a for a in await load_articles(site.engine)}
    assert stored["mir-cards"].answers == {"ru": "Да, мы принимаем карты Мир."}
    assert stored["mir-cards"].examples == ("Можно оплатить картой Мир?",)


async def test_in_shadow_mode_the_agent_uses_the_bots_suggestion(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings, site: Web
) -> None:
    await seed_articles(engine, SAMPLE_KB)
    site.pipeline = Pipeline(
        engine,
        memory_bus,
        settings.model_copy(update={"shadow_mode": True}),
        KnowledgeResponder(engine, refresh_seconds=0.01),
    )
    csrf = await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "Как поменять пароль от вайфая?")
    page = await (await site.client.get(f"/c/{cid}")).text()
    assert "The bot suggests" in page and "<code>wifi-password</code>" in page
    question = re.search(r'name="message_id" value="(\d+)"', page)
    assert question is not None

    used = await site.client.post(
        f"/c/{cid}/suggestion", data={"message_id": question[1], "accepted": "1", "csrf": csrf}
    )

    text = await used.text()
    assert re.search(r"<textarea[^>]*>Пароль Wi-Fi меняется", text)
    async with engine.connect() as conn:
        verdict = (await conn.execute(sa.select(decisions.c.verdict))).scalar_one()
    assert verdict == "accepted"


async def test_an_oversized_request_is_refused_before_it_is_read(site: Web) -> None:
    csrf = await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "hello")

    # a form that takes no files: the 1 MB of every request but the uploads' (test_agent_files_web)
    response = await site.client.post(
        f"/c/{cid}/transfer", data={"agent_id": "x" * 2_000_000, "csrf": csrf}
    )

    assert response.status == 413


async def test_a_labelled_file_adds_judged_evidence_to_the_threshold_page(site: Web) -> None:
    await seed_articles(site.engine, SAMPLE_KB)
    csrf = await site.sign_in(site.admin)
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field(
        "file",
        "text,label\nКак поменять пароль от вайфая?,wifi-password\nрецепт борща,oos\n".encode(),
        filename="labelled.csv",
        content_type="text/csv",
    )

    response = await site.client.post("/admin/thresholds/labelled?scope=global", data=form)

    page = await response.text()
    assert response.status == 200
    assert re.search(r"Judged</span><strong>2</strong>", page), page[-3000:]
    assert "labelled.csv" in page


async def test_the_inbox_page_links_to_the_next_page_of_a_long_list(site: Web) -> None:
    await site.sign_in(site.agent)
    await site.pipeline.handle(entries(*(inbound(chat, 1, f"q{chat}") for chat in range(1, 106))))

    first = await (await site.client.get("/")).text()
    more = re.search(r'<a class="more" href="([^"]+)"', first)
    assert more is not None
    second = await (await site.client.get("/" + html.unescape(more[1]))).text()

    rows = re.findall(r'data-conversation="(\d+)"', first) + re.findall(
        r'data-conversation="(\d+)"', second
    )
    assert len(rows) == len(set(rows)) == 105
    assert 'class="more"' not in second


async def test_the_list_marks_a_conversation_unread_until_the_agent_opens_it(site: Web) -> None:
    await site.sign_in(site.agent)
    cid = await site.customer_writes(1, 1, "Где мой заказ?")
    assert 'class="conversation-row unread"' in await (await site.client.get("/")).text()

    await site.client.get(f"/c/{cid}")

    assert "conversation-row unread" not in await (await site.client.get("/")).text()


async def test_the_threshold_page_shows_the_share_of_questions_no_article_answers(
    site: Web, memory_bus: MemoryBus, settings: Settings
) -> None:
    await site.sign_in(site.admin)
    page = await (await site.client.get("/admin/thresholds")).text()
    assert "Too few judged questions in the last 4 weeks to estimate it (0 of the 30" in page

    await judged_answers(site.engine, memory_bus, settings, right=30, wrong=10)

    page = await (await site.client.get("/admin/thresholds")).text()
    assert "At most 25% of questions" in page
    assert "from 40 judged questions" in page


async def test_a_bad_labelled_file_is_refused_with_the_reason(site: Web) -> None:
    csrf = await site.sign_in(site.admin)
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("file", b"question\nhello\n", filename="bad.csv", content_type="text/csv")

    response = await site.client.post("/admin/thresholds/labelled", data=form)

    assert "bad.csv:" in await response.text()


async def test_a_labelled_file_without_articles_to_match_says_so(site: Web) -> None:
    csrf = await site.sign_in(site.admin)
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("file", "text,label\nрецепт борща,oos\n".encode(), filename="l.csv")

    response = await site.client.post("/admin/thresholds/labelled", data=form)

    assert response.status == 200
    assert "cannot match questions now" in await response.text()


async def test_the_dashboard_shows_the_periods_figures(site: Web) -> None:
    await site.sign_in(site.admin)
    await site.customer_writes(1, 1, "hello")
    await site.customer_writes(2, 1, "привет", network=Network.VK)

    page = await (await site.client.get("/admin/dashboard")).text()

    assert re.search(r'id="fig-conversations">2<', page)
    assert "the bot was not sure" in page or "no bot configured" in page


async def test_every_dashboard_table_exports_as_csv(site: Web) -> None:
    await site.sign_in(site.admin)
    await site.customer_writes(1, 1, "hello")
    today = dt.datetime.now(dt.UTC).date().isoformat()

    summary = await site.client.get(f"/admin/dashboard.csv?table=summary&from={today}&to={today}")
    volume = await site.client.get(f"/admin/dashboard.csv?table=volume&from={today}&to={today}")

    assert summary.headers["Content-Type"].startswith("text/csv")
    assert (await summary.text()).splitlines()[:2] == ["figure,value", "conversations,1"]
    assert (await volume.text()).splitlines() == ["day,telegram", f"{today},1"]


async def test_a_dashboard_range_that_makes_no_sense_is_refused(site: Web) -> None:
    await site.sign_in(site.admin)

    response = await site.client.get("/admin/dashboard?from=2026-11-10&to=2026-11-01")

    assert response.status == 400


async def test_an_agent_cannot_see_the_dashboard(site: Web) -> None:
    await site.sign_in(site.agent)

    assert (await site.client.get("/admin/dashboard")).status == 403


async def test_a_knowledge_gap_is_one_click_from_a_draft_article(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings, site: Web
) -> None:
    site.pipeline = Pipeline(engine, memory_bus, settings, ScriptedResponder(0.3))
    asked = {"можно ли заморозить договор на лето", "заморозить договор на время отпуска"}
    for chat, text in enumerate(sorted(asked), 1):
        await site.customer_writes(chat, 1, text)
    await site.sign_in(site.admin)

    page = await (await site.client.get("/admin/gaps")).text()
    draft_link = re.search(r'href="(/admin/kb/new\?questions=[^"]+)"', page)
    assert draft_link is not None
    draft = await (await site.client.get(html.unescape(draft_link[1]))).text()

    examples = re.search(r'<textarea name="examples"[^>]*>([^<]*)</textarea>', draft)
    assert examples is not None and set(html.unescape(examples[1]).splitlines()) == asked


async def test_moving_a_customer_who_denied_messages_drafts_an_invitation_in_public(
    site: Web,
) -> None:
    csrf = await site.sign_in(site.agent)
    await site.pipeline.handle(
        entries(comment("wall-1_5", 501, 10, "Где мой заказ?"), permission(501, allows=False))
    )
    async with site.engine.connect() as conn:
        cid, first = (
            await conn.execute(sa.select(messages.c.conversation_id, messages.c.id))
        ).one()

    page = await site.client.post(
        f"/c/{cid}/private", data={"csrf": csrf, "text": "Напишите нам", "reply_to": str(first)}
    )

    text = html.unescape(await page.text())
    assert "does not let the community write to them privately" in text
    assert "Мы хотим помочь вам лично" in text  # the invitation, in the customer's language
    assert drain_outbound(site.bus, Network.VK) == []


async def test_a_customers_answer_marked_in_the_thread_is_one_click_from_a_draft_article(
    site: Web,
) -> None:
    await site.pipeline.handle(
        entries(
            comment("wall-1_5", 501, 10, "Как сбросить пароль роутера?"),
            comment("wall-1_5", 502, 11, "Зажмите reset на 10 секунд", reply_to=10),
        )
    )
    async with site.engine.connect() as conn:
        cid, answer = (
            await conn.execute(
                sa.select(messages.c.conversation_id, sa.func.max(messages.c.id)).group_by(
                    messages.c.conversation_id
                )
            )
        ).one()
    csrf = await site.sign_in(site.agent)
    thread = await (await site.client.get(f"/c/{cid}")).text()
    assert "Mark as the solution" in thread

    marked = await site.client.post(
        f"/c/{cid}/solution", data={"csrf": csrf, "message_id": str(answer)}
    )
    assert "the solution" in await marked.text()
    await site.sign_in(site.admin)
    gaps = await (await site.client.get("/admin/gaps")).text()
    draft_link = re.search(r'href="(/admin/kb/new\?solution=\d+)"', gaps)
    assert draft_link is not None
    draft = html.unescape(await (await site.client.get(draft_link[1])).text())

    assert re.search(
        r'<textarea name="examples"[^>]*>Как сбросить пароль роутера\?</textarea>', draft
    )
    assert re.search(
        r'<textarea name="answer_ru"[^>]*>Зажмите reset на 10 секунд</textarea>', draft
    )


async def test_a_public_thread_is_listed_by_the_post_it_is_under(site: Web) -> None:
    await site.pipeline.handle(entries(comment("wall-1_5", 501, 10, "Есть размер M?")))
    await site.sign_in(site.agent)

    page = html.unescape(await (await site.client.get("/?view=open")).text())

    assert "Comments under «the post wall-1_5»" in page
    assert "Commenter 501</strong>" not in page


async def test_moving_a_telegram_commenter_who_never_started_the_bot_drafts_a_start_link(
    site: Web, settings: Settings
) -> None:
    settings.telegram_bot_username = "brand_support_bot"
    csrf = await site.sign_in(site.agent)
    thread = "post:-1001234567890:10"
    said = InboundMessage(
        network=Network.TELEGRAM,
        network_message_id="-1001234567890:11",
        chat_id=thread,
        user_id="501",
        text="Где мой заказ?",
        language="ru",
        public=PublicPlace(post_text="Новая коллекция"),
    )
    await site.pipeline.handle(entries(said))
    async with site.engine.connect() as conn:
        cid, first = (
            await conn.execute(sa.select(messages.c.conversation_id, messages.c.id))
        ).one()

    page = await site.client.post(
        f"/c/{cid}/private", data={"csrf": csrf, "text": "Напишите нам", "reply_to": str(first)}
    )

    text = html.unescape(await page.text())
    assert "only to people who started it" in text
    assert f"https://t.me/brand_support_bot?start=c{cid}" in text
    assert drain_outbound(site.bus, Network.TELEGRAM) == []
