"""The web chat's socket end to end: visitors over `/ws/chat`, through the real pipeline (the
embedded mode: in-process bus, the store on both backends) and the sender, back to the socket;
returning visitors, resends, bad frames; and a reply crossing processes through Redis."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import ANY

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.webchat import WebChatChannel
from bots.webchat.channel import SOCKET_PATH, VISITOR_BURST, WIDGET_PATH
from bots.webchat.protocol import MAX_FRAME_BYTES, MAX_UPLOAD_BYTES
from bots.webchat.token import VisitorTokens
from bridge.backends.local import LocalBackend
from bridge.backends.redis import RedisBackend
from bridge.bus.memory import MemoryBus
from bridge.bus.redis import RedisBus
from bridge.channel import SeenMessage, StoreUnavailable
from bridge.delivery.ratelimit import MemoryRateLimiter
from bridge.delivery.sender import RetryPolicy, Sender
from bridge.domain import (
    MAX_TEXT_CHARS,
    AuthorKind,
    ConversationState,
    DeliveryStatus,
    Direction,
    Network,
    OutboundMessage,
)
from bridge.inbox.actions import add_note, reply_as_agent
from bridge.inbox.outgoing_files import AgentFile, reply_with_files
from bridge.pipeline.responder import Responder
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.customer_history import customer_history
from bridge.store.kept_files import StoredFiles
from bridge.store.models import (
    agents,
    conversations,
    dead_letters,
    decisions,
    kept_files,
    messages,
)
from supportbridge.networks import make_webchat
from tests.factories import ScriptedResponder

ACK_RU = "Спасибо! Скоро вам ответит оператор"
JSON = dict[str, Any]


@dataclass
class Visitor:
    """One browser tab of a visitor: its socket, the token it was given, the frames it got."""

    socket: aiohttp.ClientWebSocketResponse
    token: str
    history: list[JSON]
    frames: list[JSON] = field(default_factory=list)

    async def send(self, frame: JSON) -> None:
        await self.socket.send_json(frame)

    async def say(self, text: str, client_id: str | None = None) -> str:
        client_id = client_id or uuid.uuid4().hex
        await self.send({"type": "message", "id": client_id, "text": text})
        return client_id

    async def send_file(
        self, content: bytes, name: str, *, mime: str = "", text: str = "", client_id: str = ""
    ) -> str:
        client_id = client_id or uuid.uuid4().hex
        data = base64.b64encode(content).decode()
        await self.send(
            {
                "type": "file",
                "id": client_id,
                "name": name,
                "mime": mime,
                "data": data,
                "text": text,
            }
        )
        return client_id

    async def next(self, kind: str, *, within: float = 10.0, **match: object) -> JSON:
        """The next frame of `kind` (and fields equal to `match`); the others are kept."""
        async with asyncio.timeout(within):
            while True:
                frame = await self.socket.receive_json()
                self.frames.append(frame)
                if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                    return frame

    async def reply(self, **match: object) -> JSON:
        """The next message to the visitor from the bot or an agent."""
        while True:
            frame = await self.next("message", **match)
            if frame["author"] != "visitor":
                return frame


@dataclass
class Chat:
    server: TestServer
    session: aiohttp.ClientSession
    engine: AsyncEngine
    bus: MemoryBus
    channel: WebChatChannel
    agent_id: int

    async def connect(self, token: str | None = None, language: str = "ru-RU") -> Visitor:
        socket = await self.session.ws_connect(self.server.make_url(SOCKET_PATH))
        await socket.send_json({"type": "hello", "token": token, "language": language})
        welcome = await socket.receive_json(timeout=10)
        assert welcome["type"] == "welcome", welcome
        return Visitor(socket, welcome["token"], welcome["history"])

    async def rows(self, query: sa.Select[Any]) -> list[sa.Row[Any]]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def inbound(self) -> list[tuple[Any, ...]]:
        m = messages.c
        query = (
            sa.select(m.network, m.text, m.network_message_id)
            .where(m.direction == Direction.INBOUND)
            .order_by(m.id)
        )
        return [tuple(row) for row in await self.rows(query)]

    async def inbound_texts(self, count: int) -> list[str]:
        """The customers' texts, once `count` of them are stored (the pipeline runs beside)."""
        deadline = time.monotonic() + 10
        while True:
            stored = await self.inbound()
            if len(stored) >= count or time.monotonic() > deadline:
                return [text for _, text, _ in stored]
            await asyncio.sleep(0.05)

    async def conversation_of(self, visitor: Visitor) -> int:
        chat_id = visitor.token.split(".")[1]
        found = await self.rows(
            sa.select(conversations.c.id).where(
                conversations.c.network == Network.WEBCHAT, conversations.c.chat_id == chat_id
            )
        )
        return int(found[0][0])

    async def settled(self) -> list[tuple[Any, ...]]:
        query = (
            sa.select(messages.c.text, messages.c.delivery_status)
            .where(messages.c.direction == Direction.OUTBOUND)
            .order_by(messages.c.id)
        )
        for _ in range(200):
            statuses = [tuple(row) for row in await self.rows(query)]
            if all(status is not DeliveryStatus.QUEUED for _, status in statuses):
                return statuses
            await asyncio.sleep(0.05)
        raise AssertionError(f"replies still queued: {statuses}")


@pytest.fixture
async def chat(
    engine: AsyncEngine,
    settings: Settings,
    memory_bus: MemoryBus,
    local_backend: LocalBackend,
    responder: Responder | None,
) -> AsyncIterator[Chat]:
    """The embedded product's web chat: the channel as `run` makes it, the pipeline and the
    web chat's sender, on the in-process bus."""
    channel = await make_webchat(
        settings, local_backend, customer_history(engine), StoredFiles(engine)
    )
    app = web.Application()
    app.add_routes(channel.webhook_routes(memory_bus.publish_inbound))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    async with engine.begin() as conn:
        agent_id = (
            await conn.execute(
                sa.insert(agents).values(login="anna", display_name="Anna").returning(agents.c.id)
            )
        ).scalar_one()
    pipeline = Pipeline(engine, memory_bus, settings, responder)
    sender = Sender(engine, memory_bus, channel, MemoryRateLimiter(), RetryPolicy(0.05))
    stop = asyncio.Event()
    tasks = [
        asyncio.ensure_future(
            memory_bus.consume_inbound("core", pipeline.handle, batch_size=50, stop=stop)
        ),
        asyncio.ensure_future(
            memory_bus.consume_outbound(
                Network.WEBCHAT, "sender", sender.handle, batch_size=50, stop=stop
            )
        ),
    ]
    async with aiohttp.ClientSession() as session:
        yield Chat(server, session, engine, memory_bus, channel, agent_id)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await channel.close()
    await server.close()


async def test_a_visitor_message_goes_through_the_pipeline_and_the_handoff_ack_comes_back(
    chat: Chat,
) -> None:
    visitor = await chat.connect()
    sent = await visitor.say("Здравствуйте, у меня вопрос по договору")

    assert (await visitor.next("ack"))["id"] == sent
    reply = await visitor.reply()
    assert reply["author"] == "bot" and reply["text"].startswith(ACK_RU)
    visitor_id = visitor.token.split(".")[1]
    assert await chat.inbound() == [
        (Network.WEBCHAT, "Здравствуйте, у меня вопрос по договору", f"{visitor_id}:{sent}")
    ]
    state = await chat.rows(sa.select(conversations.c.state, conversations.c.language))
    assert state == [(ConversationState.WAITING, "ru")]
    assert await chat.settled() == [(reply["text"], DeliveryStatus.SENT)]


async def test_an_agents_reply_reaches_the_open_socket_and_an_offline_visitor_reads_it_on_return(
    chat: Chat,
) -> None:
    visitor = await chat.connect()
    await visitor.say("Когда придёт мастер?")
    await visitor.reply()
    cid = await chat.conversation_of(visitor)

    await reply_as_agent(chat.engine, chat.bus, cid, chat.agent_id, "Завтра с 10 до 12")
    live = await visitor.reply(author="agent")
    assert live["text"] == "Завтра с 10 до 12"

    await visitor.socket.close()
    await reply_as_agent(chat.engine, chat.bus, cid, chat.agent_id, "Мастер уже выехал")
    # nobody to push to: the reply is kept for the visitor's return, not failed
    assert (await chat.settled())[-1] == ("Мастер уже выехал", DeliveryStatus.SENT)
    back = await chat.connect(visitor.token)

    assert [(m["author"], m["text"]) for m in back.history] == [
        ("visitor", "Когда придёт мастер?"),
        ("bot", (await chat.settled())[0][0]),
        ("agent", "Завтра с 10 до 12"),
        ("agent", "Мастер уже выехал"),
    ]


async def test_a_returning_visitor_with_the_same_token_continues_the_same_conversation(
    chat: Chat,
) -> None:
    first = await chat.connect()
    await first.say("Первый вопрос")
    await first.reply()
    await first.socket.close()

    again = await chat.connect(first.token)
    await again.say("Второй вопрос")
    await again.next("ack")

    assert again.token == first.token
    assert again.history[0]["text"] == "Первый вопрос"
    rows = await chat.rows(sa.select(conversations.c.id))
    assert len(rows) == 1
    assert await chat.inbound_texts(2) == ["Первый вопрос", "Второй вопрос"]


@pytest.mark.parametrize(
    "tamper",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # signature
        lambda token: re.sub(r"\.[\w-]{22}\.", ".AAAAAAAAAAAAAAAAAAAAAA.", token),  # another id
        lambda token: "v9" + token[2:],  # version
        lambda token: "not-a-token",
        lambda token: token + "." + "x" * 200,
    ],
    ids=["signature", "visitor-id", "version", "garbage", "too-long"],
)
async def test_a_forged_or_tampered_token_gets_a_new_identity_not_someone_elses(
    chat: Chat, tamper: Any
) -> None:
    owner = await chat.connect()
    await owner.say("Мой личный вопрос")
    await owner.reply()

    stranger = await chat.connect(tamper(owner.token))

    assert stranger.token != owner.token
    assert stranger.token.split(".")[1] != owner.token.split(".")[1]
    assert stranger.history == []
    await stranger.say("Чужой вопрос")
    await stranger.next("ack")
    for _ in range(100):
        if len(await chat.rows(sa.select(conversations.c.id))) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(await chat.rows(sa.select(conversations.c.id))) == 2


DAY = 24 * 3600


@dataclass
class Clock:
    """The channel's clock for visitors' tokens, moved on by a test."""

    ahead_s: float = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead_s


async def clocked(chat: Chat, backend: LocalBackend) -> Clock:
    clock = Clock()
    secret = await backend.shared_secret("webchat")
    chat.channel.tokens = VisitorTokens(secret, max_age_days=180, clock=clock)
    return clock


async def test_a_visitor_who_keeps_returning_keeps_the_conversation_past_the_maximum_age(
    chat: Chat, local_backend: LocalBackend
) -> None:
    clock = await clocked(chat, local_backend)
    first = await chat.connect()
    await first.say("Первый вопрос")
    await first.reply()
    await first.socket.close()

    clock.ahead_s = 179 * DAY
    back = await chat.connect(first.token)
    await back.socket.close()
    clock.ahead_s = 2 * 179 * DAY
    again = await chat.connect(back.token)

    assert back.token != first.token  # renewed on the visit
    assert {v.token.split(".")[1] for v in (first, back, again)} == {first.token.split(".")[1]}
    assert again.history[0]["text"] == "Первый вопрос"
    assert len(await chat.rows(sa.select(conversations.c.id))) == 1


async def test_a_visitor_back_after_the_maximum_age_starts_anew(
    chat: Chat, local_backend: LocalBackend
) -> None:
    clock = await clocked(chat, local_backend)
    first = await chat.connect()
    await first.say("Первый вопрос")
    await first.reply()
    await first.socket.close()

    clock.ahead_s = 181 * DAY
    late = await chat.connect(first.token)

    assert late.token.split(".")[1] != first.token.split(".")[1]
    assert late.history == []


async def test_a_message_sent_again_after_a_reconnect_is_stored_once(chat: Chat) -> None:
    visitor = await chat.connect()
    client_id = await visitor.say("Не пришёл счёт")
    await visitor.next("ack", id=client_id)
    await visitor.reply()
    await visitor.socket.close()  # the ack was lost, say: the widget sends it again

    again = await chat.connect(visitor.token)
    await again.say("Не пришёл счёт", client_id)
    await again.next("ack", id=client_id)
    await asyncio.sleep(0.3)

    assert [text for _, text, _ in await chat.inbound()] == ["Не пришёл счёт"]
    assert len(await chat.settled()) == 1  # and acknowledged once
    assert [m["id"] for m in again.history if m["author"] == "visitor"] == [client_id]


PHOTO = b"\xff\xd8\xff\xe0 a router blinking red" + bytes(300)


async def attachments_stored(chat: Chat, count: int = 1) -> list[list[JSON]]:
    """The attachments of each customer message, once `count` of them are stored."""
    query = (
        sa.select(messages.c.attachments)
        .where(messages.c.direction == Direction.INBOUND)
        .order_by(messages.c.id)
    )
    for _ in range(200):
        rows = await chat.rows(query)
        if len(rows) >= count:
            return [list(row[0] or []) for row in rows]
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} customer messages stored")


async def test_a_visitor_sends_a_photo_that_the_agent_can_open_and_the_visitor_sees_again(
    chat: Chat,
) -> None:
    visitor = await chat.connect()
    client_id = await visitor.send_file(PHOTO, "router.jpg", mime="image/jpeg", text="Вот")
    await visitor.next("ack", id=client_id)
    await visitor.reply()

    [[photo]] = await attachments_stored(chat)
    opened = await chat.channel.fetch_file(photo["network_file_id"])
    back = await chat.connect(visitor.token)

    assert (photo["kind"], photo["name"], photo["mime_type"]) == (
        "photo",
        "router.jpg",
        "image/jpeg",
    )
    assert opened == PHOTO
    [shown] = [m for m in back.history if m["author"] == "visitor"]
    assert (shown["text"], shown["files"]) == ("Вот", ["router.jpg"])


async def test_a_document_is_kept_as_a_document_whatever_type_the_browser_claims(
    chat: Chat,
) -> None:
    visitor = await chat.connect()
    page = b"<html><script>alert(1)</script></html>"
    client_id = await visitor.send_file(page, "invoice.jpg", mime="image/jpeg")
    await visitor.next("ack", id=client_id)

    [[document]] = await attachments_stored(chat)

    assert document["kind"] == "document"
    assert await chat.channel.fetch_file(document["network_file_id"]) == page


async def test_a_file_sent_again_after_a_reconnect_is_kept_and_stored_once(chat: Chat) -> None:
    visitor = await chat.connect()
    client_id = await visitor.send_file(PHOTO, "router.jpg")
    await visitor.next("ack", id=client_id)
    await visitor.socket.close()

    again = await chat.connect(visitor.token)
    await again.send_file(PHOTO, "router.jpg", client_id=client_id)
    await again.next("ack", id=client_id)
    await asyncio.sleep(0.3)

    assert len(await attachments_stored(chat)) == 1
    files = await chat.rows(sa.select(sa.func.count()).select_from(kept_files))
    assert files[0][0] == 1


@pytest.mark.parametrize(
    ("content", "data", "code"),
    [
        (bytes(MAX_UPLOAD_BYTES + 1), None, "too_large"),
        (b"", "not base64 at all!", "invalid"),
        (b"", "", "invalid"),
    ],
    ids=["over-5-MB", "not-base64", "empty"],
)
async def test_a_file_that_cannot_be_taken_is_refused_with_a_reason_and_nothing_is_kept(
    chat: Chat, content: bytes, data: str | None, code: str
) -> None:
    visitor = await chat.connect()
    frame = {
        "type": "file",
        "id": "refused-file-1",
        "name": "big.bin",
        "data": base64.b64encode(content).decode() if data is None else data,
    }
    await visitor.send(frame)
    refused = await visitor.next("error")
    client_id = await visitor.say("А так можно?")
    await visitor.next("ack", id=client_id)

    assert (refused["code"], refused["id"]) == (code, "refused-file-1")
    assert await attachments_stored(chat) == [[]]
    assert (await chat.rows(sa.select(sa.func.count()).select_from(kept_files)))[0][0] == 0


async def test_broken_and_oversized_frames_get_an_error_and_the_socket_keeps_working(
    chat: Chat,
) -> None:
    socket = await chat.session.ws_connect(chat.server.make_url(SOCKET_PATH))
    early = {"type": "message", "id": "early-message", "text": "before hello"}
    await socket.send_json(early)
    assert (await socket.receive_json(timeout=5))["code"] == "hello_first"
    await socket.send_json({"type": "hello", "token": None, "language": "en-GB"})
    token = (await socket.receive_json(timeout=5))["token"]

    def message(client_id: str, text: str) -> str:
        return json.dumps({"type": "message", "id": client_id, "text": text})

    # (frame, error code, the id the error names: the widget marks that message not sent)
    bad_frames: list[tuple[str | bytes, str, str | None]] = [
        ("{not json", "bad_json", None),
        ("[1, 2]", "bad_json", None),
        (b"\x00\x01", "bad_json", None),
        (json.dumps({"type": "typing"}), "unknown_type", None),
        (message("short", "x"), "invalid", "short"),
        (message("only-blanks", "   "), "invalid", "only-blanks"),
        (
            json.dumps({"type": "button", "id": "empty-data", "data": "", "label": "Yes"}),
            "invalid",
            "empty-data",
        ),
        (message("long-message", "я" * (MAX_TEXT_CHARS + 1)), "too_long", "long-message"),
        (message("huge-frame", "x" * MAX_FRAME_BYTES), "too_large", None),
        (json.dumps({"type": "hello", "token": token}), "already_greeted", None),
    ]
    for frame, code, client_id in bad_frames:
        if isinstance(frame, bytes):
            await socket.send_bytes(frame)
        else:
            await socket.send_str(frame)
        error = await socket.receive_json(timeout=5)
        assert (error["type"], error["code"], error.get("id")) == ("error", code, client_id)
        assert error["message"]

    await socket.send_json({"type": "message", "id": "good-message", "text": "Hello, it works"})
    assert await socket.receive_json(timeout=5) == {"type": "ack", "id": "good-message"}
    assert await chat.inbound_texts(1) == ["Hello, it works"]
    assert await chat.rows(sa.select(dead_letters.c.id)) == []
    await socket.close()


async def test_a_visitor_flooding_the_socket_is_told_to_slow_down_and_nothing_extra_is_stored(
    chat: Chat,
) -> None:
    visitor = await chat.connect()
    ids = [await visitor.say(f"сообщение {n}") for n in range(VISITOR_BURST + 3)]

    acks, refused = set(), set()
    while len(acks) + len(refused) < len(ids):
        frame = await visitor.socket.receive_json(timeout=5)
        if frame["type"] == "ack":
            acks.add(frame["id"])
        elif frame["type"] == "error":
            assert frame["code"] == "too_fast"
            refused.add(frame["id"])

    assert len(acks) == VISITOR_BURST and refused == set(ids[VISITOR_BURST:])
    for _ in range(100):
        if len(await chat.inbound()) == VISITOR_BURST:
            break
        await asyncio.sleep(0.05)
    assert len(await chat.inbound()) == VISITOR_BURST


@pytest.mark.parametrize("responder", [ScriptedResponder(0.97)])
async def test_an_auto_answer_has_did_this_help_buttons_and_a_press_comes_back_as_feedback(
    chat: Chat,
) -> None:
    visitor = await chat.connect(language="en-US")
    await visitor.say("How do I pay the bill?")
    answer = await visitor.reply()
    assert answer["text"].startswith("answer to How do I pay the bill?")
    assert [b["label"] for b in answer["buttons"]] == ["Yes, thanks", "No, I need a person"]

    yes = answer["buttons"][0]
    press = {"type": "button", "id": uuid.uuid4().hex, "data": yes["data"], "label": yes["label"]}
    await visitor.send(press)
    glad = await visitor.reply()

    assert glad["text"] == "Glad to help! Write any time."
    assert await chat.rows(sa.select(decisions.c.feedback)) == [("helped",)]
    assert await chat.rows(sa.select(conversations.c.state)) == [(ConversationState.RESOLVED,)]
    kinds = await chat.rows(
        sa.select(messages.c.text)
        .where(messages.c.direction == Direction.INBOUND)
        .order_by(messages.c.id)
    )
    assert kinds == [
        ("How do I pay the bill?",),
        ("Yes, thanks",),
    ]  # the press as the visitor saw it


async def test_internal_notes_never_reach_the_visitor(chat: Chat) -> None:
    visitor = await chat.connect()
    await visitor.say("Где мой заказ?")
    await visitor.reply()
    cid = await chat.conversation_of(visitor)
    await add_note(chat.engine, chat.bus, cid, chat.agent_id, "VIP, не говорить про скидку")
    await reply_as_agent(chat.engine, chat.bus, cid, chat.agent_id, "Уже в пути")
    await visitor.reply(author="agent")

    back = await chat.connect(visitor.token)
    texts = [m["text"] for m in back.history] + [f["text"] for f in visitor.frames if "text" in f]

    assert "VIP, не говорить про скидку" not in texts
    assert "Уже в пути" in texts


async def test_a_visitors_other_tab_shows_the_message_too(chat: Chat) -> None:
    phone = await chat.connect()
    laptop = await chat.connect(phone.token)
    sent = await phone.say("С телефона")

    shown = await laptop.next("message", id=sent)
    assert (shown["author"], shown["text"]) == ("visitor", "С телефона")
    assert (await laptop.reply())["text"].startswith(ACK_RU)


async def test_the_widget_script_is_served_as_javascript_that_never_parses_text_as_html(
    chat: Chat,
) -> None:
    async with chat.session.get(chat.server.make_url(WIDGET_PATH)) as response:
        body = await response.text()
        assert response.status == 200
        assert response.content_type == "application/javascript"
    assert "/ws/chat" in body
    for unsafe in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert unsafe not in body


@pytest.fixture
async def shop_only(
    engine: AsyncEngine, settings: Settings, memory_bus: MemoryBus, local_backend: LocalBackend
) -> AsyncIterator[TestServer]:
    """A web chat open only to pages of https://shop.example.com."""
    listed = settings.model_copy(update={"webchat_origins": ["https://shop.example.com"]})
    channel = await make_webchat(
        listed, local_backend, customer_history(engine), StoredFiles(engine)
    )
    app = web.Application()
    app.add_routes(channel.webhook_routes(memory_bus.publish_inbound))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await channel.close()
    await server.close()


async def greeted(session: aiohttp.ClientSession, server: TestServer, origin: str) -> str:
    """The first frame a page of `origin` gets on the socket."""
    socket = await session.ws_connect(server.make_url(SOCKET_PATH), origin=origin)
    await socket.send_json({"type": "hello", "token": None})
    frame = await socket.receive_json(timeout=5)
    await socket.close()
    return str(frame["type"])


async def test_a_page_of_a_listed_site_opens_the_chat(shop_only: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        assert await greeted(session, shop_only, "https://shop.example.com") == "welcome"


@pytest.mark.parametrize("origin", ["https://evil.example", "http://shop.example.com", ""])
async def test_a_page_of_a_site_not_listed_is_refused_with_403(
    shop_only: TestServer, origin: str
) -> None:
    headers = {"Origin": origin} if origin else {}
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(shop_only.make_url(SOCKET_PATH), headers=headers)
    assert refused.value.status == 403


async def test_the_products_own_pages_always_open_the_chat(shop_only: TestServer) -> None:
    own = f"http://{shop_only.host}:{shop_only.port}"
    async with aiohttp.ClientSession() as session:
        assert await greeted(session, shop_only, own) == "welcome"


async def test_without_a_list_a_page_of_any_site_opens_the_chat(chat: Chat) -> None:
    assert await greeted(chat.session, chat.server, "https://any-brand.example") == "welcome"


async def test_while_the_store_cannot_be_read_hello_is_answered_unavailable_and_retrying_works(
    engine: AsyncEngine, settings: Settings, memory_bus: MemoryBus, local_backend: LocalBackend
) -> None:
    store_down = True

    async def history(network: Network, chat_id: str, limit: int) -> list[SeenMessage]:
        if store_down:
            raise StoreUnavailable("connection refused")
        return []

    channel = await make_webchat(settings, local_backend, history, StoredFiles(engine))
    app = web.Application()
    app.add_routes(channel.webhook_routes(memory_bus.publish_inbound))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            socket = await session.ws_connect(server.make_url(SOCKET_PATH))
            await socket.send_json({"type": "hello", "token": None})
            refused = await socket.receive_json(timeout=5)
            store_down = False
            await socket.send_json({"type": "hello", "token": None})
            welcome = await socket.receive_json(timeout=5)
            await socket.close()
    finally:
        await channel.close()
        await server.close()

    assert (refused["type"], refused["code"]) == ("error", "unavailable")
    assert welcome["type"] == "welcome"


@pytest.mark.redis
async def test_a_reply_sent_by_one_process_reaches_the_socket_another_process_holds(
    engine: AsyncEngine, settings: Settings, redis_url: str, redis_prefix: str
) -> None:
    """The distributed mode: the web process holding the visitor's socket is not the one whose
    sender took the reply off the stream; Redis pub/sub carries it across."""
    distributed = settings.model_copy(update={"redis_url": redis_url, "redis_prefix": redis_prefix})
    holder_bus = RedisBus(redis_url, 4, prefix=redis_prefix)
    sender_bus = RedisBus(redis_url, 4, prefix=redis_prefix)
    holder = await make_webchat(
        distributed, RedisBackend(holder_bus), customer_history(engine), StoredFiles(engine)
    )
    other = await make_webchat(
        distributed, RedisBackend(sender_bus), customer_history(engine), StoredFiles(engine)
    )
    app = web.Application()
    app.add_routes(holder.webhook_routes(holder_bus.publish_inbound))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    stop = asyncio.Event()
    relay = asyncio.ensure_future(holder.relay(stop))
    try:
        async with aiohttp.ClientSession() as session:
            socket = await session.ws_connect(server.make_url(SOCKET_PATH))
            await socket.send_json({"type": "hello", "token": None})
            token = (await socket.receive_json(timeout=5))["token"]
            visitor = token.split(".")[1]
            # both processes sign with the one secret they share through Redis
            assert other.tokens.verify(token) == visitor
            await asyncio.sleep(0.2)  # the relay has subscribed

            await other.send(
                OutboundMessage(
                    message_id=41,
                    conversation_id=1,
                    network=Network.WEBCHAT,
                    chat_id=visitor,
                    text="Ответ из другого процесса",
                    idempotency_key="agent:test",
                    author_kind=AuthorKind.AGENT,
                )
            )
            frame = await socket.receive_json(timeout=5)
            await socket.close()
    finally:
        stop.set()
        await asyncio.wait_for(relay, 5)
        await holder.close()
        await server.close()
        await holder_bus.close()
        await sender_bus.close()

    assert (frame["id"], frame["author"], frame["text"]) == (
        "out:41",
        "agent",
        "Ответ из другого процесса",
    )


def router_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 200), "#2b2b2b").save(buffer, format="PNG")
    return buffer.getvalue()


async def agent_sends_a_photo(chat: Chat, visitor: Visitor, photo: bytes) -> JSON:
    """The agent sends `photo` to the visitor; the frame the visitor receives."""
    await visitor.say("Пришлите схему")
    await visitor.reply()
    limits = {Network.WEBCHAT: chat.channel.file_limits}
    files = [AgentFile("router.png", photo, "image/png")]
    conversation = await chat.conversation_of(visitor)
    await reply_with_files(chat.engine, chat.bus, conversation, chat.agent_id, "Вот", files, limits)
    return await visitor.reply(author="agent")


async def test_an_agents_photo_reaches_the_visitor_as_a_link_that_opens_it(chat: Chat) -> None:
    photo = router_png()
    visitor = await chat.connect()

    frame = await agent_sends_a_photo(chat, visitor, photo)
    [link] = frame["links"]
    async with chat.session.get(chat.server.make_url(link["url"])) as response:
        opened, content_type = await response.read(), response.content_type
    back = await chat.connect(visitor.token)

    assert (frame["text"], link["name"], link["photo"]) == ("Вот", "router.png", True)
    assert (opened, content_type) == (photo, "image/png")
    assert back.history[-1]["links"] == [link]  # a returning visitor sees it again
    assert await chat.settled() == [(ANY, DeliveryStatus.SENT), ("Вот", DeliveryStatus.SENT)]


async def test_a_link_to_an_agents_file_opens_nothing_once_altered(chat: Chat) -> None:
    visitor = await chat.connect()
    [link] = (await agent_sends_a_photo(chat, visitor, router_png()))["links"]
    other = await chat.connect()
    other_visitor = other.token.split(".")[1]
    visitor_id = visitor.token.split(".")[1]

    for altered in (
        link["url"].replace(visitor_id, other_visitor),  # another visitor's
        link["url"].replace("outbox%3A", "webchat%3A"),  # another file
        link["url"].rsplit("&s=", 1)[0],  # unsigned
    ):
        async with chat.session.get(chat.server.make_url(altered)) as response:
            assert response.status == 404, altered
