"""Telegram Business end to end: a brand connects the bot to its business account; that
account's private chats come to the inbox as conversations of their own, and the replies go out
through the connection (aiogram against the emulator, through the real pipeline and sender).
A connection that is off, may not reply, or a chat quiet for more than 24 hours fails the reply
with the reason, and the sender goes on."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Update
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.telegram.events import business_chat, parse_chat, to_inbound
from bridge.domain import DeliveryStatus, InboundMessage, Network
from bridge.inbox.actions import reply_as_agent
from bridge.inbox.outgoing_files import AgentFile, reply_with_files
from bridge.pipeline.responder import Responder
from bridge.settings import Settings
from bridge.store.models import conversations, messages
from emulators.telegram import TelegramEmulator
from tests.factories import ScriptedResponder
from tests.network_harness import Bridge, EmulatedTelegram, open_bridge

TelegramBridge = Bridge[EmulatedTelegram]
OWNER = 9001  # the brand's own Telegram account, made a business account
DAY = 24 * 3600
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big") * 2 + bytes(200)


@pytest.fixture
async def bridge(
    engine: AsyncEngine, settings: Settings, responder: Responder | None
) -> AsyncIterator[TelegramBridge]:
    async with open_bridge(EmulatedTelegram(), engine, settings, responder, "polling") as bridge:
        yield bridge


@pytest.fixture
def telegram(bridge: TelegramBridge) -> TelegramEmulator:
    return bridge.net.emulator


async def business_conversation(bridge: TelegramBridge, connection: str, customer: int) -> int:
    chat = business_chat(connection, customer)
    found = await bridge.rows(sa.select(conversations.c.id).where(conversations.c.chat_id == chat))
    return int(found[0][0])


async def agent_replies(bridge: TelegramBridge, connection: str, customer: int, text: str) -> None:
    cid = await business_conversation(bridge, connection, customer)
    await reply_as_agent(bridge.engine, bridge.bus, cid, bridge.agent_id, text)


async def last_status(bridge: TelegramBridge, text: str) -> tuple[object, object]:
    """The delivery status and error of the reply `text`, once it is no longer queued."""
    for _ in range(100):
        found = await bridge.rows(
            sa.select(messages.c.delivery_status, messages.c.delivery_error).where(
                messages.c.text == text
            )
        )
        if found and found[0][0] is not DeliveryStatus.QUEUED:
            return found[0][0], found[0][1]
        await asyncio.sleep(0.05)
    raise AssertionError(f"{text!r} is still queued")


def update(**fields: object) -> Update:
    return Update.model_validate({"update_id": 1, **fields})


CUSTOMER = {"id": 501, "is_bot": False, "first_name": "Ivan"}
CHAT = {"id": 501, "type": "private", "first_name": "Ivan"}
BRAND = {"id": OWNER, "is_bot": False, "first_name": "Brand"}


def test_a_business_message_is_a_customer_message_in_a_conversation_apart_from_the_bots_chat() -> (
    None
):
    message = {"message_id": 7, "date": 1, "chat": CHAT, "from": CUSTOMER, "text": "hi"}

    [own] = to_inbound(update(message=message))
    [business] = to_inbound(update(business_message={**message, "business_connection_id": "c1"}))

    assert isinstance(own, InboundMessage) and isinstance(business, InboundMessage)
    assert (own.chat_id, business.chat_id) == ("501", "biz:c1:501")
    assert business.network_message_id == "biz:c1:501:7" != own.network_message_id
    assert (business.user_id, business.text, business.kind) == ("501", "hi", "message")


def test_an_edited_business_message_is_an_edit_of_the_same_message() -> None:
    edited = {
        "message_id": 7,
        "date": 1,
        "edit_date": 2,
        "chat": CHAT,
        "from": CUSTOMER,
        "text": "hi again",
        "business_connection_id": "c1",
    }

    [edit] = to_inbound(update(edited_business_message=edited))

    assert isinstance(edit, InboundMessage)
    assert (edit.kind, edit.network_message_id, edit.text) == ("edit", "biz:c1:501:7", "hi again")


def test_deleted_business_messages_become_deletes_of_the_stored_ones() -> None:
    deleted = {"business_connection_id": "c1", "chat": CHAT, "message_ids": [7, 8]}

    found = to_inbound(update(deleted_business_messages=deleted))

    assert [(m.kind, m.network_message_id) for m in found] == [  # type: ignore[union-attr]
        ("delete", "biz:c1:501:7"),
        ("delete", "biz:c1:501:8"),
    ]


def test_the_business_accounts_own_messages_and_connection_updates_are_not_customer_messages() -> (
    None
):
    by_owner = {
        "message_id": 9,
        "date": 1,
        "chat": CHAT,
        "from": BRAND,
        "text": "our answer",
        "business_connection_id": "c1",
    }
    connection = {
        "id": "c1",
        "user": BRAND,
        "user_chat_id": OWNER,
        "date": 1,
        "is_enabled": True,
        "rights": {"can_reply": True},
    }

    assert to_inbound(update(business_message=by_owner)) == []
    assert to_inbound(update(business_connection=connection)) == []


def test_a_conversations_chat_names_its_business_connection_or_none() -> None:
    assert parse_chat("biz:AbC-d_1:501") == ("AbC-d_1", 501)
    assert parse_chat("501") == (None, 501)
    with pytest.raises(ValueError):
        parse_chat("biz::501")


async def test_a_business_chat_is_stored_and_the_agents_reply_goes_through_the_connection(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    connection = telegram.connect_business(OWNER)
    telegram.write_business(connection, 501, "Где мой заказ?")
    await bridge.wait_stored(1)
    acknowledgement = (await telegram.wait_for_business_messages(connection, 501, 1))[0]

    await agent_replies(bridge, connection, 501, "Заказ в пути")
    reply = (await telegram.wait_for_business_messages(connection, 501, 2))[-1]

    chats = await bridge.rows(sa.select(conversations.c.chat_id))
    assert chats == [(f"biz:{connection}:501",)]
    assert acknowledgement.text.startswith("Спасибо!")
    assert reply.text == "Заказ в пути"
    assert telegram.bot_messages(501) == [], "nothing went to the bot's own chat"
    assert await last_status(bridge, "Заказ в пути") == (DeliveryStatus.SENT, None)
    assert connection in bridge.net.channel.connections, "the connection's update was tracked"


async def test_an_agents_photo_and_document_go_through_the_connection(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    connection = telegram.connect_business(OWNER)
    telegram.write_business(connection, 509, "пришлите схему")
    await telegram.wait_for_business_messages(connection, 509, 1)
    cid = await business_conversation(bridge, connection, 509)
    photo, pdf = PNG, b"%PDF-1.4 the scheme"
    files = [AgentFile("router.png", photo, "image/png"), AgentFile("scheme.pdf", pdf)]
    limits = {Network.TELEGRAM: bridge.net.channel.file_limits}

    await reply_with_files(bridge.engine, bridge.bus, cid, bridge.agent_id, "вот", files, limits)
    sent = await telegram.wait_for_business_messages(connection, 509, 3)

    kinds = [message.media[0] for message in sent[1:] if message.media is not None]
    assert kinds == ["photo", "document"]
    assert [telegram.sent_file(m.file_id) for m in sent[1:] if m.file_id] == [photo, pdf]
    assert sent[1].text == "вот", "the text is the first file's caption"


@pytest.mark.parametrize("responder", [ScriptedResponder(0.97)], ids=["confident"])
async def test_a_press_of_the_bots_button_in_a_business_chat_is_that_chats_answer(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    connection = telegram.connect_business(OWNER)
    telegram.write_business(connection, 508, "how much is the tariff?")
    [answer] = await telegram.wait_for_business_messages(connection, 508, 1)
    keyboard = answer.current_reply_markup or {}
    helped = keyboard["inline_keyboard"][0][0]["callback_data"]

    telegram.press_button(508, answer.message_id, helped, business=connection)
    await bridge.wait_stored(2)

    found = await bridge.rows(
        sa.select(conversations.c.chat_id, messages.c.network_message_id)
        .join(conversations, conversations.c.id == messages.c.conversation_id)
        .where(messages.c.direction == "inbound")
        .order_by(messages.c.id)
    )
    assert [chat for chat, _ in found] == [f"biz:{connection}:508"] * 2
    assert found[1][1].startswith("cb:")


async def test_a_customers_edit_and_deletion_in_a_business_chat_reach_the_stored_message(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    connection = telegram.connect_business(OWNER)
    first = telegram.write_business(connection, 502, "первое")
    second = telegram.write_business(connection, 502, "второе")
    await bridge.wait_stored(2)

    telegram.edit_business(connection, 502, first["message_id"], "первое, исправлено")
    telegram.delete_business(connection, 502, [second["message_id"]])
    query = (
        sa.select(messages.c.text, messages.c.deleted_at.is_not(None))
        .where(messages.c.direction == "inbound")
        .order_by(messages.c.id)
    )
    expected = [("первое, исправлено", False), ("второе", True)]
    for _ in range(100):
        if (found := await bridge.rows(query)) == expected:
            break
        await asyncio.sleep(0.05)

    assert found == expected, "the deleted message is kept, marked"


async def test_a_reply_through_a_disabled_connection_fails_with_the_reason(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    connection = telegram.connect_business(OWNER)
    telegram.write_business(connection, 503, "hi")
    await telegram.wait_for_business_messages(connection, 503, 1)
    telegram.change_business_connection(connection, enabled=False)
    telegram.write_text(503, "in the bot's own chat")  # after the disconnection, in order
    await bridge.net.wait_sent(503, 1)

    await agent_replies(bridge, connection, 503, "are you there?")
    status, error = await last_status(bridge, "are you there?")

    assert status is DeliveryStatus.FAILED
    assert isinstance(error, str) and "disconnected the bot" in error
    assert len(telegram.business_messages(connection, 503)) == 1


async def test_a_reply_when_the_bot_may_not_reply_fails_with_the_reason_and_the_next_goes_out(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    allowed = telegram.connect_business(OWNER)
    refused = telegram.connect_business(OWNER + 1, can_reply=False)
    telegram.write_business(refused, 504, "hi")
    telegram.write_business(allowed, 504, "hi")
    await bridge.wait_stored(2)

    await agent_replies(bridge, refused, 504, "hello from the brand")
    status, error = await last_status(bridge, "hello from the brand")
    await agent_replies(bridge, allowed, 504, "hello from the other brand")

    assert status is DeliveryStatus.FAILED
    assert isinstance(error, str) and "does not let the bot reply" in error
    assert telegram.business_messages(refused, 504) == []
    sent = await telegram.wait_for_business_messages(allowed, 504, 2)
    assert sent[-1].text == "hello from the other brand", "the sender went on"


async def test_a_reply_after_24_hours_without_the_customer_fails_with_the_reason(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    connection = telegram.connect_business(OWNER)
    telegram.write_business(connection, 505, "hi")
    await telegram.wait_for_business_messages(connection, 505, 1)
    telegram.age_business_chat(connection, 505, 2 * DAY)
    c = conversations.c
    async with bridge.engine.begin() as conn:
        last = (await conn.execute(sa.select(c.last_message_at))).scalar_one()
        await conn.execute(
            sa.update(conversations).values(last_message_at=last - dt.timedelta(days=2))
        )

    await agent_replies(bridge, connection, 505, "sorry for the wait")
    status, error = await last_status(bridge, "sorry for the wait")

    assert status is DeliveryStatus.FAILED
    assert isinstance(error, str) and "last 24 hours" in error


async def test_a_sender_that_never_heard_of_the_connection_asks_telegram_for_it(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    connection = telegram.connect_business(OWNER)
    telegram.write_business(connection, 506, "hi")
    await telegram.wait_for_business_messages(connection, 506, 1)
    telegram.change_business_connection(connection, enabled=False)
    telegram.write_text(506, "in the bot's own chat")
    await bridge.net.wait_sent(506, 1)
    bridge.net.channel.connections.clear()  # another process, which received no update

    await agent_replies(bridge, connection, 506, "still there?")
    status, error = await last_status(bridge, "still there?")

    assert status is DeliveryStatus.FAILED
    assert isinstance(error, str) and "disconnected the bot" in error


async def test_telegram_refuses_sends_through_a_connection_that_is_off_unknown_or_not_allowed(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    bot = bridge.net.channel.bot
    off = telegram.connect_business(OWNER)
    mute = telegram.connect_business(OWNER + 1, can_reply=False)
    telegram.write_business(off, 507, "hi")
    telegram.write_business(mute, 507, "hi")
    telegram.change_business_connection(off, enabled=False)

    refusals = []
    for connection in (off, "unknown", mute):
        with pytest.raises(TelegramBadRequest) as refused:
            await bot.send_message(507, "hello", business_connection_id=connection)
        refusals.append(refused.value.message)

    assert refusals == [
        "Bad Request: business connection not found",
        "Bad Request: business connection not found",
        "Bad Request: BUSINESS_PEER_INVALID",
    ]
    with pytest.raises(TelegramBadRequest, match="business connection not found"):
        await bot.get_business_connection("unknown")
    assert (await bot.get_business_connection(off)).is_enabled is False
