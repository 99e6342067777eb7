"""VK end to end: vk_api against the emulator, through the real pipeline and senders."""

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

from bots.vk import VkChannel
from bots.vk.channel import WEBHOOK_PATH
from bridge.bus.memory import MemoryBus
from bridge.delivery.ratelimit import MemoryRateLimiter
from bridge.delivery.sender import RetryPolicy, Sender
from bridge.domain import ConversationState, DeliveryStatus, HandoffReason, Network
from bridge.inbox.actions import reply_as_agent
from bridge.pipeline.phrases import FEEDBACK_NO
from bridge.pipeline.responder import Responder
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import agents, conversations, decisions, identities, messages
from emulators.faults import Fault, FaultKind
from emulators.vk import VkEmulator
from tests.factories import ScriptedResponder

TOKEN = "vk-test-token"
GROUP = 77
SECRET = "callback-secret"
CONFIRMATION = "a1b2c3"


@dataclass
class Bridge:
    vk: VkEmulator
    channel: VkChannel
    engine: AsyncEngine
    bus: MemoryBus
    sender: Sender
    webhook_url: str
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

    async def conversation_id(self, peer: int) -> int:
        found = await self.rows(
            sa.select(conversations.c.id).where(conversations.c.chat_id == str(peer))
        )
        return int(found[0][0])

    async def settled_statuses(self) -> list[tuple[object, ...]]:
        query = (
            sa.select(messages.c.text, messages.c.delivery_status, messages.c.delivery_error)
            .where(messages.c.direction == "outbound")
            .order_by(messages.c.id)
        )
        for _ in range(200):
            statuses = [tuple(row) for row in await self.rows(query)]
            if all(status is not DeliveryStatus.QUEUED for _, status, _ in statuses):
                return statuses
            await asyncio.sleep(0.05)
        raise AssertionError(f"messages still queued: {statuses}")


@pytest.fixture
async def bridge(
    engine: AsyncEngine,
    settings: Settings,
    responder: Responder | None,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Bridge]:
    polling = "webhook" not in request.keywords
    vk = VkEmulator(group_id=GROUP, token=TOKEN, confirmation=CONFIRMATION)
    api = TestServer(vk.app, host="127.0.0.1")
    await api.start_server()
    vk.files.url = str(api.make_url(""))
    channel = VkChannel(
        TOKEN,
        GROUP,
        api_url=str(api.make_url("")),
        callback_secret=SECRET,
        confirmation=CONFIRMATION,
        poll_wait_s=1,
    )
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
            bus.consume_outbound(Network.VK, "sender", sender.handle, batch_size=50, stop=stop)
        ),
    ]
    if polling:
        tasks.append(asyncio.ensure_future(channel.poll(bus.publish_inbound, stop)))
        for _ in range(100):  # events before the first ts are not the poller's
            if channel.key is not None:
                break
            await asyncio.sleep(0.02)
    yield Bridge(vk, channel, engine, bus, sender, str(hook.make_url(WEBHOOK_PATH)), agent_id)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    await channel.close()
    await hook.close()
    await api.close()


def customer(bridge: Bridge, user_id: int) -> None:
    bridge.vk.customer(user_id, first_name="Иван", last_name="Петров", lang_id=0)


async def test_polled_message_is_stored_handed_off_and_the_agents_reply_reaches_the_customer(
    bridge: Bridge,
) -> None:
    customer(bridge, 501)
    bridge.vk.write(501, "Не работает интернет")
    await bridge.wait_stored(1)
    acknowledgement = await bridge.vk.wait_for_bot_messages(501, 1)
    assert acknowledgement[0].text.startswith("Спасибо!")

    conversation_id = await bridge.conversation_id(501)
    await reply_as_agent(
        bridge.engine, bridge.bus, conversation_id, bridge.agent_id, "Перезагрузите роутер"
    )
    received = await bridge.vk.wait_for_bot_messages(501, 2)

    assert received[1].text == "Перезагрузите роутер"
    state = await bridge.rows(sa.select(conversations.c.state, conversations.c.handoff_reason))
    assert state == [(ConversationState.ASSIGNED, "no_responder")]
    assert [status for _, status, _ in await bridge.settled_statuses()] == [DeliveryStatus.SENT] * 2
    found = await bridge.rows(
        sa.select(identities.c.external_user_id, identities.c.display_name, identities.c.language)
    )
    assert found == [("501", "Иван Петров", "ru")]


def event_json(user_id: int, text: str, secret: str | None) -> dict[str, object]:
    message = {
        "id": 1234,
        "date": 1_700_000_000,
        "peer_id": user_id,
        "from_id": user_id,
        "text": text,
        "conversation_message_id": 1,
        "out": 0,
        "version": 1,
    }
    event: dict[str, object] = {
        "type": "message_new",
        "object": {"message": message, "client_info": {"lang_id": 3}},
        "group_id": GROUP,
        "event_id": "e" * 40,
        "v": "5.199",
    }
    if secret is not None:
        event["secret"] = secret
    return event


@pytest.mark.webhook
async def test_callback_confirmation_then_events_pushed_by_vk_are_stored(bridge: Bridge) -> None:
    await bridge.vk.add_callback_server(bridge.webhook_url, secret=SECRET)
    customer(bridge, 502)
    bridge.vk.write(502, "через callback")
    await bridge.wait_stored(1)

    stored = await bridge.rows(sa.select(messages.c.text).where(messages.c.direction == "inbound"))
    assert stored == [("через callback",)]


@pytest.mark.webhook
async def test_callback_event_delivered_twice_is_stored_once(bridge: Bridge) -> None:
    async with aiohttp.ClientSession() as http:
        for retry in range(2):
            async with http.post(
                bridge.webhook_url,
                json=event_json(503, "twice", SECRET),
                headers={"X-Retry-Counter": str(retry)} if retry else {},
            ) as response:
                assert (response.status, await response.text()) == (200, "ok")
    await bridge.wait_stored(1)
    await asyncio.sleep(0.2)

    stored = await bridge.rows(sa.select(messages.c.text).where(messages.c.direction == "inbound"))
    assert stored == [("twice",)]


@pytest.mark.webhook
@pytest.mark.parametrize("secret", ["forged", None], ids=["forged", "missing"])
async def test_callback_with_a_wrong_secret_is_refused_and_stores_nothing(
    bridge: Bridge, secret: str | None
) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(bridge.webhook_url, json=event_json(504, "x", secret)) as response:
            assert response.status == 403
    await asyncio.sleep(0.2)

    assert await bridge.rows(sa.select(messages.c.id)) == []
    assert await bridge.bus.inbound_backlog() == 0


async def test_under_an_error_6_storm_every_reply_is_delivered_once_and_in_order(
    bridge: Bridge,
) -> None:
    peers = [601, 602, 603]
    for peer in peers:
        customer(bridge, peer)
        bridge.vk.write(peer, "привет")
    await bridge.wait_stored(len(peers))
    for peer in peers:
        await bridge.vk.wait_for_bot_messages(peer, 1)
    bridge.vk.faults.add(Fault(FaultKind.RATE_LIMIT), methods="messages.send", every=2)
    # a lost answer: VK sent it, the sender retries, random_id keeps it single
    bridge.vk.faults.add(
        Fault(FaultKind.DROP, after_processing=True), methods="messages.send", times=1
    )

    for n in range(3):
        for peer in peers:
            cid = await bridge.conversation_id(peer)
            await reply_as_agent(bridge.engine, bridge.bus, cid, bridge.agent_id, f"reply {n}")
    for peer in peers:
        await bridge.vk.wait_for_bot_messages(peer, 4, within=15)

    for peer in peers:
        texts = [m.text for m in bridge.vk.bot_messages(peer)]
        assert texts[1:] == ["reply 0", "reply 1", "reply 2"]
    assert bridge.sender.stats.retries > 0, "the storm really limited some sends"
    assert {status for _, status, _ in await bridge.settled_statuses()} == {DeliveryStatus.SENT}


async def test_a_customer_who_denied_messages_leaves_a_visible_failed_state(
    bridge: Bridge,
) -> None:
    customer(bridge, 701)
    bridge.vk.write(701, "hi")
    await bridge.wait_stored(1)
    await bridge.vk.wait_for_bot_messages(701, 1)
    bridge.vk.deny_messages(701)

    cid = await bridge.conversation_id(701)
    await reply_as_agent(bridge.engine, bridge.bus, cid, bridge.agent_id, "are you there?")
    statuses = await bridge.settled_statuses()

    assert statuses[-1] == (
        "are you there?",
        DeliveryStatus.FAILED,
        "VK error 901: Can't send messages for users without permission",
    )
    assert bridge.sender.stats.retries == 0, "a permanent error is not retried"


@pytest.mark.parametrize("responder", [ScriptedResponder(0.97)])
async def test_an_auto_answer_asks_with_a_callback_keyboard_and_no_hands_off(
    bridge: Bridge,
) -> None:
    customer(bridge, 961)
    bridge.vk.write(961, "сколько стоит тариф?")
    answer = (await bridge.vk.wait_for_bot_messages(961, 1))[0]
    assert answer.text.endswith("Этот ответ помог?")
    assert answer.keyboard is not None
    yes, no = (button["action"] for button in answer.keyboard["buttons"][0])
    assert (yes["type"], yes["label"], no["label"]) == (
        "callback",
        "Да, спасибо",
        "Нет, нужен человек",
    )

    bridge.vk.press_button(961, answer.id, no["payload"])
    acknowledgement = (await bridge.vk.wait_for_bot_messages(961, 2))[1]

    assert acknowledgement.text.startswith("Спасибо! Скоро вам ответит оператор")
    state = await bridge.rows(sa.select(conversations.c.state, conversations.c.handoff_reason))
    assert state == [(ConversationState.WAITING, HandoffReason.NOT_HELPFUL)]
    feedback = await bridge.rows(sa.select(decisions.c.feedback))
    assert feedback == [(FEEDBACK_NO,)]


async def stored_attachments(bridge: Bridge) -> list[dict[str, object]]:
    await bridge.wait_stored(1)
    rows = await bridge.rows(
        sa.select(messages.c.attachments).where(messages.c.direction == "inbound")
    )
    return list(rows[0][0])


async def test_a_photo_the_customer_sent_is_fetched_in_full_size_when_an_agent_opens_it(
    bridge: Bridge,
) -> None:
    customer(bridge, 1501)
    original = b"\xff\xd8\xff" + b"the router, 2560x1920"
    bridge.vk.write_photo(1501, original, text="вот фото")
    [photo] = await stored_attachments(bridge)

    fetched = await bridge.channel.fetch_file(str(photo["network_file_id"]))

    assert photo["kind"] == "photo"
    assert fetched == original


async def test_a_document_the_customer_sent_is_fetched_with_its_title(bridge: Bridge) -> None:
    customer(bridge, 1502)
    bridge.vk.write_document(1502, b"%PDF-1.4 receipt", "Квитанция.pdf")
    [document] = await stored_attachments(bridge)

    fetched = await bridge.channel.fetch_file(str(document["network_file_id"]))

    assert (document["kind"], document["name"]) == ("document", "Квитанция.pdf")
    assert fetched == b"%PDF-1.4 receipt"


async def test_a_file_vk_no_longer_has_is_a_lookup_error_that_says_so(bridge: Bridge) -> None:
    customer(bridge, 1503)
    sent = bridge.vk.write_document(1503, b"old", "old.txt")
    [document] = await stored_attachments(bridge)
    bridge.vk.files.forget(sent["attachments"][0]["doc"]["url"])

    with pytest.raises(LookupError, match="VK: the file server answered 404"):
        await bridge.channel.fetch_file(str(document["network_file_id"]))


async def test_an_attachment_id_stored_without_its_message_is_refused_clearly(
    bridge: Bridge,
) -> None:
    with pytest.raises(LookupError, match="stored without its message"):
        await bridge.channel.fetch_file("photo1501_457239017_abc")
