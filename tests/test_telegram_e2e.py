"""Telegram end to end: aiogram against the emulator, through the real pipeline and senders."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.telegram import TelegramChannel
from bots.telegram.channel import WEBHOOK_PATH
from bridge.bus.memory import MemoryBus
from bridge.delivery.ratelimit import MemoryRateLimiter
from bridge.delivery.sender import RetryPolicy, Sender
from bridge.domain import (
    AuthorKind,
    Button,
    ConversationState,
    DeliveryStatus,
    HandoffReason,
    Network,
    OutboundMessage,
)
from bridge.inbox.actions import reply_as_agent
from bridge.pipeline.phrases import FEEDBACK_NO
from bridge.pipeline.responder import Responder
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import agents, conversations, decisions, identities, messages
from emulators.faults import Fault, FaultKind
from emulators.telegram import SECRET_HEADER, TelegramEmulator
from supportbridge.runtime import run_channel
from tests.factories import ScriptedResponder

TOKEN = "123456:ABC-emulator"
SECRET = "s3cret-token_1"


@dataclass
class Bridge:
    """The embedded product around one Telegram channel, and the emulated Telegram."""

    telegram: TelegramEmulator
    channel: TelegramChannel
    engine: AsyncEngine
    bus: MemoryBus
    sender: Sender
    webhook_url: str
    api_url: str
    agent_id: int

    async def rows(self, query: sa.Select[tuple[object, ...]]) -> list[sa.Row[tuple[object, ...]]]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def wait_stored(self, count: int) -> None:
        query = sa.select(sa.func.count()).where(messages.c.direction == "inbound")
        for _ in range(200):
            if (await self.rows(query))[0][0] >= count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"fewer than {count} customer messages stored")

    async def conversation_id(self, chat: int) -> int:
        found = await self.rows(
            sa.select(conversations.c.id).where(conversations.c.chat_id == str(chat))
        )
        return int(found[0][0])

    async def settled_statuses(self) -> list[tuple[object, ...]]:
        """Outbound statuses once no message is still queued."""
        for _ in range(200):
            statuses = await self.statuses()
            if all(status is not DeliveryStatus.QUEUED for _, status, _ in statuses):
                return statuses
            await asyncio.sleep(0.05)
        raise AssertionError(f"messages still queued: {statuses}")

    async def statuses(self) -> list[tuple[object, ...]]:
        query = (
            sa.select(messages.c.text, messages.c.delivery_status, messages.c.delivery_error)
            .where(messages.c.direction == "outbound")
            .order_by(messages.c.id)
        )
        return [tuple(row) for row in await self.rows(query)]


@pytest.fixture
async def bridge(
    engine: AsyncEngine,
    settings: Settings,
    responder: Responder | None,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Bridge]:
    polling = "webhook" not in request.keywords
    telegram = TelegramEmulator([TOKEN], webhook_retry_delay=0.05)
    api = TestServer(telegram.app, host="127.0.0.1")
    await api.start_server()
    api_url = str(api.make_url("")).rstrip("/")
    channel = TelegramChannel(TOKEN, api_url=api_url, webhook_secret=SECRET, poll_timeout_s=1)
    bus = MemoryBus(settings.inbound_shards)
    routes = web.Application()
    routes.add_routes(channel.webhook_routes(bus.publish_inbound))
    hook = TestServer(routes, host="127.0.0.1")
    await hook.start_server()
    sender = Sender(engine, bus, channel, MemoryRateLimiter(), RetryPolicy(base_delay_s=0.05))
    async with engine.begin() as conn:
        agent_id = (
            await conn.execute(
                sa.insert(agents).values(login="anna", display_name="Anna").returning(agents.c.id)
            )
        ).scalar_one()
    pipeline = Pipeline(engine, bus, settings, responder)
    stop = asyncio.Event()
    tasks = [
        asyncio.ensure_future(
            bus.consume_inbound("core", pipeline.handle, batch_size=50, stop=stop)
        ),
        asyncio.ensure_future(
            bus.consume_outbound(
                Network.TELEGRAM, "sender", sender.handle, batch_size=50, stop=stop
            )
        ),
    ]
    if polling:
        tasks.append(asyncio.ensure_future(channel.poll(bus.publish_inbound, stop)))
    webhook_url = str(hook.make_url(WEBHOOK_PATH))
    yield Bridge(telegram, channel, engine, bus, sender, webhook_url, api_url, agent_id)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    await channel.bot.session.close()
    await hook.close()
    await api.close()


def customer(bridge: Bridge, user_id: int, language: str = "ru") -> None:
    bridge.telegram.customer(user_id, first_name="Ivan", last_name="Petrov", language_code=language)


async def test_polled_message_is_stored_handed_off_and_the_agents_reply_reaches_the_customer(
    bridge: Bridge,
) -> None:
    customer(bridge, 501)
    bridge.telegram.write_text(501, "Не работает интернет")
    await bridge.wait_stored(1)
    acknowledgement = await bridge.telegram.wait_for_bot_messages(501, 1)
    assert acknowledgement[0].current_text.startswith("Спасибо!")

    conversation_id = await bridge.conversation_id(501)
    await reply_as_agent(
        bridge.engine, bridge.bus, conversation_id, bridge.agent_id, "Перезагрузите роутер"
    )
    received = await bridge.telegram.wait_for_bot_messages(501, 2)

    assert received[1].current_text == "Перезагрузите роутер"
    state = await bridge.rows(sa.select(conversations.c.state, conversations.c.handoff_reason))
    assert state == [(ConversationState.ASSIGNED, "no_responder")]
    assert [status for _, status, _ in await bridge.settled_statuses()] == [DeliveryStatus.SENT] * 2


async def test_customer_identity_name_and_language_come_from_telegram(bridge: Bridge) -> None:
    customer(bridge, 502, language="en")
    bridge.telegram.write_text(502, "hello")
    await bridge.wait_stored(1)

    found = await bridge.rows(
        sa.select(identities.c.external_user_id, identities.c.display_name, identities.c.language)
    )
    assert found == [("502", "Ivan Petrov", "en")]


@pytest.mark.webhook
async def test_a_customer_writing_through_the_webhook_is_stored_and_the_agents_reply_reaches_them(
    bridge: Bridge,
) -> None:
    await bridge.channel.bot.set_webhook(bridge.webhook_url, secret_token=SECRET)
    customer(bridge, 503)
    bridge.telegram.write_text(503, "через вебхук")
    await bridge.wait_stored(1)
    acknowledgement = await bridge.telegram.wait_for_bot_messages(503, 1)

    conversation_id = await bridge.conversation_id(503)
    await reply_as_agent(bridge.engine, bridge.bus, conversation_id, bridge.agent_id, "Принято")
    received = await bridge.telegram.wait_for_bot_messages(503, 2)

    stored = await bridge.rows(sa.select(messages.c.text).where(messages.c.direction == "inbound"))
    assert stored == [("через вебхук",)]
    assert acknowledgement[0].current_text.startswith("Спасибо!")
    assert received[1].current_text == "Принято"
    assert [status for _, status, _ in await bridge.settled_statuses()] == [DeliveryStatus.SENT] * 2


@pytest.mark.webhook
async def test_with_a_public_url_the_worker_registers_its_webhook_itself(
    bridge: Bridge, settings: Settings
) -> None:
    public_url = bridge.webhook_url.removesuffix(WEBHOOK_PATH)
    stop = asyncio.Event()
    worker = asyncio.ensure_future(
        run_channel(
            settings.model_copy(update={"public_url": public_url}),
            bridge.engine,
            bridge.bus,
            TelegramChannel(TOKEN, api_url=bridge.api_url, webhook_secret=SECRET),
            MemoryRateLimiter(),
            stop,
        )
    )
    try:
        for _ in range(100):
            if (await bridge.channel.bot.get_webhook_info()).url:
                break
            await asyncio.sleep(0.05)
        customer(bridge, 506)
        bridge.telegram.write_text(506, "вебхук сам")
        await bridge.wait_stored(1)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)

    info = await bridge.channel.bot.get_webhook_info()
    assert info.url == bridge.webhook_url


def update_json(update_id: int, user_id: int, text: str) -> dict[str, object]:
    user = {"id": user_id, "is_bot": False, "first_name": "Ivan"}
    return {
        "update_id": update_id,
        "message": {
            "message_id": 7,
            "date": 1_700_000_000,
            "chat": {"id": user_id, "type": "private", "first_name": "Ivan"},
            "from": user,
            "text": text,
        },
    }


@pytest.mark.webhook
async def test_webhook_update_delivered_twice_is_stored_once(bridge: Bridge) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.post(
                bridge.webhook_url,
                json=update_json(1, 504, "twice"),
                headers={SECRET_HEADER: SECRET},
            ) as response:
                assert response.status == 200
    await bridge.wait_stored(1)
    await asyncio.sleep(0.2)

    stored = await bridge.rows(sa.select(messages.c.text).where(messages.c.direction == "inbound"))
    assert stored == [("twice",)]


@pytest.mark.webhook
@pytest.mark.parametrize("headers", [{SECRET_HEADER: "forged"}, {}], ids=["forged", "missing"])
async def test_webhook_with_a_wrong_secret_is_refused_and_stores_nothing(
    bridge: Bridge, headers: dict[str, str]
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(
            bridge.webhook_url, json=update_json(1, 505, "x"), headers=headers
        ) as response:
            assert response.status == 401
    await asyncio.sleep(0.2)

    assert await bridge.rows(sa.select(messages.c.id)) == []
    assert await bridge.bus.inbound_backlog() == 0


async def test_under_a_429_storm_every_reply_is_delivered_once_and_in_order(bridge: Bridge) -> None:
    chats = [601, 602, 603]
    for chat in chats:
        customer(bridge, chat)
        bridge.telegram.write_text(chat, "привет")
    await bridge.wait_stored(len(chats))
    for chat in chats:
        await bridge.telegram.wait_for_bot_messages(chat, 1)
    bridge.telegram.faults.add(
        Fault(FaultKind.RATE_LIMIT, retry_after=1), methods="sendMessage", every=2
    )

    for n in range(3):
        for chat in chats:
            cid = await bridge.conversation_id(chat)
            await reply_as_agent(bridge.engine, bridge.bus, cid, bridge.agent_id, f"reply {n}")
    for chat in chats:
        await bridge.telegram.wait_for_bot_messages(chat, 4, within=30)

    for chat in chats:
        texts = [m.current_text for m in bridge.telegram.bot_messages(chat)]
        assert texts[1:] == ["reply 0", "reply 1", "reply 2"]
    assert bridge.sender.stats.retries > 0, "the storm really limited some sends"
    assert {status for _, status, _ in await bridge.settled_statuses()} == {DeliveryStatus.SENT}


async def test_a_blocked_customer_leaves_a_visible_failed_state(bridge: Bridge) -> None:
    customer(bridge, 701)
    bridge.telegram.write_text(701, "hi")
    await bridge.wait_stored(1)
    await bridge.telegram.wait_for_bot_messages(701, 1)
    bridge.telegram.block_bot(701)

    cid = await bridge.conversation_id(701)
    await reply_as_agent(bridge.engine, bridge.bus, cid, bridge.agent_id, "are you there?")
    statuses = await bridge.settled_statuses()

    assert statuses[-1] == (
        "are you there?",
        DeliveryStatus.FAILED,
        "Forbidden: bot was blocked by the user",
    )
    assert bridge.sender.stats.retries == 0, "a permanent error is not retried"


async def test_an_unreachable_api_is_retried_without_stopping_the_bridge(bridge: Bridge) -> None:
    customer(bridge, 801)
    bridge.telegram.faults.add(
        Fault(FaultKind.SERVER_ERROR, status=502), methods="sendMessage", times=3
    )
    bridge.telegram.write_text(801, "привет")

    received = await bridge.telegram.wait_for_bot_messages(801, 1, within=20)

    assert received[0].current_text.startswith("Спасибо!")
    assert bridge.sender.stats.retries == 3


async def test_a_document_is_stored_as_metadata_and_fetched_on_demand(bridge: Bridge) -> None:
    customer(bridge, 901)
    bridge.telegram.write_document(
        901,
        b"%PDF-1.4 contract",
        file_name="contract.pdf",
        mime_type="application/pdf",
        caption="мой договор",
    )
    await bridge.wait_stored(1)

    stored = await bridge.rows(
        sa.select(messages.c.text, messages.c.attachments).where(messages.c.direction == "inbound")
    )
    text, attachments = stored[0]
    assert text == "мой договор"
    assert [(a["kind"], a["name"], a["mime_type"], a["size"]) for a in attachments] == [
        ("document", "contract.pdf", "application/pdf", 17)
    ]
    assert (
        await bridge.channel.fetch_file(attachments[0]["network_file_id"]) == b"%PDF-1.4 contract"
    )


async def test_buttons_go_as_an_inline_keyboard_and_a_press_comes_back_answered(
    bridge: Bridge,
) -> None:
    customer(bridge, 951)
    bridge.telegram.write_text(951, "тариф?")
    await bridge.telegram.wait_for_bot_messages(951, 1)
    question = OutboundMessage(
        message_id=0,
        conversation_id=await bridge.conversation_id(951),
        network=Network.TELEGRAM,
        chat_id="951",
        text="Это помогло?",
        idempotency_key="feedback-1",
        author_kind=AuthorKind.BOT,
        buttons=[Button(label="Да", data="helped:yes"), Button(label="Нет", data="helped:no")],
    )
    await bridge.channel.send(question)
    sent = (await bridge.telegram.wait_for_bot_messages(951, 2))[-1]
    assert sent.current_reply_markup == {
        "inline_keyboard": [
            [
                {"text": "Да", "callback_data": "helped:yes"},
                {"text": "Нет", "callback_data": "helped:no"},
            ]
        ]
    }

    query_id = bridge.telegram.press_button(951, sent.message_id, "helped:no")
    await bridge.wait_stored(2)

    pressed = await bridge.rows(
        sa.select(messages.c.text, messages.c.network_message_id)
        .where(messages.c.direction == "inbound")
        .order_by(messages.c.id)
    )
    assert pressed[-1] == ("helped:no", f"cb:{query_id}")
    for _ in range(50):
        if bridge.telegram.callback_query(query_id).answer is not None:
            break
        await asyncio.sleep(0.05)
    assert bridge.telegram.callback_query(query_id).answer is not None, "the spinner stopped"


@pytest.mark.parametrize("responder", [ScriptedResponder(0.97)])
async def test_an_auto_answer_asks_with_inline_buttons_and_no_hands_off(bridge: Bridge) -> None:
    customer(bridge, 961)
    bridge.telegram.write_text(961, "сколько стоит тариф?")
    answer = (await bridge.telegram.wait_for_bot_messages(961, 1))[0]
    assert answer.current_text.endswith("Этот ответ помог?")
    assert answer.current_reply_markup is not None
    yes, no = answer.current_reply_markup["inline_keyboard"][0]
    assert (yes["text"], no["text"]) == ("Да, спасибо", "Нет, нужен человек")

    bridge.telegram.press_button(961, answer.message_id, no["callback_data"])
    acknowledgement = (await bridge.telegram.wait_for_bot_messages(961, 2))[1]

    assert acknowledgement.current_text.startswith("Спасибо! Скоро вам ответит оператор")
    state = await bridge.rows(sa.select(conversations.c.state, conversations.c.handoff_reason))
    assert state == [(ConversationState.WAITING, HandoffReason.NOT_HELPFUL)]
    feedback = await bridge.rows(sa.select(decisions.c.article_id, decisions.c.feedback))
    assert feedback == [("article-1", FEEDBACK_NO)]
