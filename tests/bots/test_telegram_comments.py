"""Telegram channel comments: the comments on the brand's channel posts, as they arrive in the
channel's discussion group, are one public thread per post; an agent's public reply goes to the
group under the right comment (aiogram against the emulator, through the real pipeline and
sender); a bot may write privately only to whoever started it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiogram.types import Update
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.telegram.events import parse_post_thread, post_thread, to_inbound
from bridge.domain import DeliveryStatus, InboundMessage, Unreadable
from bridge.inbox.actions import reply_as_agent
from bridge.inbox.public import PrivateNotAllowed, move_to_private
from bridge.settings import Settings
from bridge.store.models import conversations, dead_letters, identities, messages
from emulators.telegram import TelegramEmulator
from tests.network_harness import Bridge, EmulatedTelegram, open_bridge

TelegramBridge = Bridge[EmulatedTelegram]
GROUP = {"id": -1001234567890, "type": "supergroup", "title": "Brand chat"}
CHANNEL = {"id": -1009876543210, "type": "channel", "title": "Brand", "username": "brand"}
FORWARD = {
    "message_id": 10,
    "date": 1,
    "chat": GROUP,
    "from": {"id": 777000, "is_bot": False, "first_name": "Telegram"},
    "sender_chat": CHANNEL,
    "is_automatic_forward": True,
    "forward_origin": {"type": "channel", "chat": CHANNEL, "message_id": 5, "date": 1},
    "text": "New collection",
}
ANNA = {"id": 501, "is_bot": False, "first_name": "Anna", "language_code": "ru"}


def update(**fields: object) -> Update:
    return Update.model_validate({"update_id": 1, **fields})


def comment(message_id: int, reply_to: dict[str, Any], **extra: object) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "date": 2,
        "chat": GROUP,
        "from": ANNA,
        "message_thread_id": 10,
        "reply_to_message": reply_to,
        "text": "Delivery to Kazan?",
        **extra,
    }


def parsed(**fields: object) -> InboundMessage:
    [message] = to_inbound(update(**fields))
    assert isinstance(message, InboundMessage)
    return message


# -- parsing ------------------------------------------------------------------------------------


def test_a_comment_on_a_channel_post_is_a_public_message_in_the_posts_thread() -> None:
    message = parsed(message=comment(11, FORWARD))

    assert (message.chat_id, message.user_id, message.text) == (
        post_thread(-1001234567890, 10),
        "501",
        "Delivery to Kazan?",
    )
    assert message.public is not None
    assert (message.public.post_text, message.public.post_url, message.public.reply_to) == (
        "New collection",
        "https://t.me/brand/5",
        None,
    )


def test_a_reply_to_another_comment_answers_that_comment_in_the_same_thread() -> None:
    first = comment(11, FORWARD)
    message = parsed(message=comment(12, first, text="Me too"))

    assert message.chat_id == post_thread(-1001234567890, 10)
    assert message.public is not None and message.public.reply_to == "-1001234567890:11"


def test_an_edited_comment_is_an_edit_of_the_same_message() -> None:
    message = parsed(edited_message=comment(11, FORWARD, edit_date=3, text="Delivery to Ufa?"))

    assert (message.kind, message.network_message_id, message.text) == (
        "edit",
        "-1001234567890:11",
        "Delivery to Ufa?",
    )


def test_the_posts_automatic_forward_is_not_a_customers_comment() -> None:
    assert to_inbound(update(message=FORWARD)) == []


def test_a_bots_message_in_the_discussion_group_is_not_a_customers_comment() -> None:
    bot = {"id": 123456, "is_bot": True, "first_name": "Support"}
    assert to_inbound(update(message=comment(11, FORWARD, **{"from": bot}))) == []


def test_a_forum_topics_message_is_not_a_comment() -> None:
    topic = comment(11, FORWARD, is_topic_message=True)
    assert to_inbound(update(message=topic)) == []


def test_group_talk_outside_any_posts_thread_is_ignored() -> None:
    talk = {"message_id": 11, "date": 2, "chat": GROUP, "from": ANNA, "text": "hi all"}
    assert to_inbound(update(message=talk)) == []


def test_a_comment_under_a_post_longer_than_telegram_allows_is_unreadable() -> None:
    [found] = to_inbound(update(message=comment(11, {**FORWARD, "text": "x" * 9000})))
    assert isinstance(found, Unreadable) and "post_text" in found.reason


def test_a_public_threads_chat_names_the_group_and_the_post() -> None:
    assert parse_post_thread(post_thread(-1001234567890, 10)) == (-1001234567890, 10)
    assert parse_post_thread("501") is None


# -- end to end ---------------------------------------------------------------------------------


@pytest.fixture
async def bridge(engine: AsyncEngine, settings: Settings) -> AsyncIterator[TelegramBridge]:
    async with open_bridge(EmulatedTelegram(), engine, settings, None, "polling") as bridge:
        yield bridge


@pytest.fixture
def telegram(bridge: TelegramBridge) -> TelegramEmulator:
    telegram = bridge.net.emulator
    telegram.customer(501, first_name="Анна", last_name="Петрова", language_code="ru")
    telegram.customer(502, first_name="Олег", last_name="Смирнов", language_code="ru")
    return telegram


async def thread_of(bridge: TelegramBridge, group: int, post: int) -> Any:
    for _ in range(200):
        found = await bridge.rows(
            sa.select(conversations.c.id, conversations.c.public, conversations.c.post_text).where(
                conversations.c.chat_id == post_thread(group, post)
            )
        )
        if found:
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no thread of post {post}")


async def message_id(bridge: TelegramBridge, text: str) -> int:
    found = await bridge.rows(sa.select(messages.c.id).where(messages.c.text == text))
    return int(found[0][0])


async def test_the_comments_on_a_post_are_one_public_thread_with_their_authors(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    group = telegram.discussion_group()
    post = telegram.post_to_channel("Новая коллекция уже в магазинах")["message_id"]
    first = telegram.comment(501, post, "А доставка в Казань есть?")
    telegram.comment(502, post, "Тоже интересно", reply_to=first["message_id"])
    await bridge.wait_stored(2)

    thread = await thread_of(bridge, group.id, post)
    assert thread[1:] == (True, "Новая коллекция уже в магазинах")
    authors = await bridge.rows(
        sa.select(identities.c.display_name)
        .join(messages, messages.c.author_identity_id == identities.c.id)
        .where(messages.c.conversation_id == thread[0])
        .order_by(messages.c.id)
    )
    assert authors == [("Анна Петрова",), ("Олег Смирнов",)]


async def test_an_edited_comment_updates_its_message(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    post = telegram.post_to_channel("Скидки недели")["message_id"]
    sent = telegram.comment(501, post, "Скидка на обувь?")
    await bridge.wait_stored(1)

    telegram.edit_comment(sent["message_id"], "Скидка на сумки?")

    for _ in range(200):
        if await bridge.inbound_texts() == ["Скидка на сумки?"]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(await bridge.inbound_texts())


async def test_the_agents_public_reply_lands_in_the_group_under_the_right_comment(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    group = telegram.discussion_group()
    post = telegram.post_to_channel("Скидки недели")["message_id"]
    first = telegram.comment(501, post, "Скидка на обувь тоже?")
    telegram.comment(502, post, "Когда заканчивается акция?")
    await bridge.wait_stored(2)
    thread_id = (await thread_of(bridge, group.id, post))[0]

    await reply_as_agent(
        bridge.engine,
        bridge.bus,
        thread_id,
        bridge.agent_id,
        "Да, и на обувь",
        reply_to=await message_id(bridge, "Скидка на обувь тоже?"),
    )

    assert await bridge.settled_statuses() == [("Да, и на обувь", DeliveryStatus.SENT, None)]
    reply = telegram.group_messages()[-1]
    assert reply["from"]["is_bot"] and reply["text"] == "Да, и на обувь"
    assert reply["message_thread_id"] == post
    assert reply["reply_to_message"]["message_id"] == first["message_id"]


async def test_the_bots_own_reply_does_not_come_back_as_a_comment(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    group = telegram.discussion_group()
    post = telegram.post_to_channel("Скидки недели")["message_id"]
    telegram.comment(501, post, "Есть размер M?")
    await bridge.wait_stored(1)
    thread_id = (await thread_of(bridge, group.id, post))[0]
    await reply_as_agent(bridge.engine, bridge.bus, thread_id, bridge.agent_id, "Есть")
    await bridge.settled_statuses()
    telegram.comment(502, post, "А L?")
    await bridge.wait_stored(2)

    assert await bridge.inbound_texts() == ["Есть размер M?", "А L?"]


async def test_a_reply_to_a_comment_no_longer_in_the_group_fails_with_telegrams_reason(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    group = telegram.discussion_group()
    post = telegram.post_to_channel("Скидки недели")["message_id"]
    sent = telegram.comment(501, post, "Есть размер M?")
    await bridge.wait_stored(1)
    thread_id = (await thread_of(bridge, group.id, post))[0]
    del group.messages[sent["message_id"]]  # deleted by the group's admins

    await reply_as_agent(bridge.engine, bridge.bus, thread_id, bridge.agent_id, "Есть")

    [(_, status, reason)] = await bridge.settled_statuses()
    assert status is DeliveryStatus.FAILED
    assert "message to be replied not found" in str(reason)


async def test_a_comment_telegram_could_not_have_sent_is_a_dead_letter_and_blocks_nothing(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    group = telegram.discussion_group()
    post = telegram.post_to_channel("Скидки недели")["message_id"]
    group.messages[post]["text"] = "x" * 9000  # past the 4096 characters of a post
    telegram.comment(501, post, "Что это?")
    group.messages[post]["text"] = "Скидки недели"
    telegram.comment(502, post, "Есть размер M?")
    await bridge.wait_stored(1)

    for _ in range(200):
        reasons = [row[0] for row in await bridge.rows(sa.select(dead_letters.c.reason))]
        if reasons:
            break
        await asyncio.sleep(0.02)
    assert len(reasons) == 1 and "post_text" in reasons[0]
    assert await bridge.inbound_texts() == ["Есть размер M?"]


async def test_moving_to_private_someone_who_never_started_the_bot_is_refused_with_the_reason(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    group = telegram.discussion_group()
    post = telegram.post_to_channel("Скидки недели")["message_id"]
    telegram.comment(501, post, "Мой заказ не пришёл")
    await bridge.wait_stored(1)
    thread_id = (await thread_of(bridge, group.id, post))[0]

    with pytest.raises(PrivateNotAllowed, match="only to people who started it"):
        await move_to_private(
            bridge.engine,
            bridge.bus,
            thread_id,
            await message_id(bridge, "Мой заказ не пришёл"),
            bridge.agent_id,
            "Напишите нам",
        )
    assert telegram.bot_messages(501) == []


async def test_a_commenter_who_started_the_bot_is_written_to_privately(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    telegram.write_text(501, "/start")
    group = telegram.discussion_group()
    post = telegram.post_to_channel("Скидки недели")["message_id"]
    telegram.comment(501, post, "Мой заказ не пришёл")
    await bridge.wait_stored(2)
    thread_id = (await thread_of(bridge, group.id, post))[0]

    await move_to_private(
        bridge.engine,
        bridge.bus,
        thread_id,
        await message_id(bridge, "Мой заказ не пришёл"),
        bridge.agent_id,
        "Напишите номер заказа",
    )

    for _ in range(200):
        if "Напишите номер заказа" in [m.text for m in telegram.bot_messages(501)]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError([m.text for m in telegram.bot_messages(501)])
