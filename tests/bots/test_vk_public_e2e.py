"""VK public threads end to end: vk_api against the emulator's community wall, through the real
pipeline, the agent's actions and the sender."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import DeliveryStatus
from bridge.inbox.actions import reply_as_agent
from bridge.inbox.public import PrivateNotAllowed, move_to_private
from bridge.settings import Settings
from bridge.store.models import conversations, dead_letters, identities, messages
from emulators.faults import Fault, FaultKind
from emulators.vk import VkEmulator
from tests.network_harness import Bridge, EmulatedVk, Receiving, open_bridge

VkBridge = Bridge[EmulatedVk]
GROUP = EmulatedVk.GROUP


@pytest.fixture(params=["polling", pytest.param("webhook", marks=pytest.mark.webhook)])
def receiving(request: pytest.FixtureRequest) -> Receiving:
    """Comments come the same through the Bots Long Poll and the Callback API."""
    return "webhook" if request.param == "webhook" else "polling"


@pytest.fixture
async def bridge(
    engine: AsyncEngine, settings: Settings, receiving: Receiving
) -> AsyncIterator[VkBridge]:
    async with open_bridge(EmulatedVk(), engine, settings, None, receiving) as bridge:
        yield bridge


@pytest.fixture
def vk(bridge: VkBridge) -> VkEmulator:
    vk = bridge.net.emulator
    vk.customer(501, first_name="Анна", last_name="Петрова")
    vk.customer(502, first_name="Олег", last_name="Смирнов")
    return vk


async def thread_of(bridge: VkBridge, post: int) -> Any:
    for _ in range(200):
        found = await bridge.rows(
            sa.select(
                conversations.c.id,
                conversations.c.public,
                conversations.c.post_text,
                conversations.c.post_url,
            ).where(conversations.c.chat_id == f"wall-{GROUP}_{post}")
        )
        if found:
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no thread of post {post}")


async def test_a_comment_reaches_the_inbox_as_a_public_thread_under_its_post(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    post = vk.post("Новая коллекция уже в магазинах")
    vk.comment(501, post.id, "А доставка в Казань есть?")
    await bridge.wait_stored(1)

    thread = await thread_of(bridge, post.id)
    assert thread[1:] == (
        True,
        "Новая коллекция уже в магазинах",
        f"https://vk.com/wall-{GROUP}_{post.id}",
    )
    authors = await bridge.rows(
        sa.select(identities.c.display_name).join(
            messages, messages.c.author_identity_id == identities.c.id
        )
    )
    assert authors == [("Анна Петрова",)]


async def test_the_agents_reply_is_the_communitys_comment_under_the_right_comment(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    post = vk.post("Скидки недели")
    first = vk.comment(501, post.id, "Скидка на обувь тоже?")
    vk.comment(502, post.id, "Когда заканчивается акция?")
    await bridge.wait_stored(2)
    thread_id = (await thread_of(bridge, post.id))[0]
    first_id = (await bridge.rows(sa.select(messages.c.id).where(messages.c.text.like("Скидка%"))))[
        0
    ][0]

    await reply_as_agent(
        bridge.engine, bridge.bus, thread_id, bridge.agent_id, "Да, и на обувь", reply_to=first_id
    )

    (reply,) = await vk.wait_for_community_comments(1)
    assert (reply.text, reply.item_id, reply.reply_to_comment) == (
        "Да, и на обувь",
        post.id,
        first.id,
    )
    assert reply.from_id == -GROUP
    assert {status for _, status, _ in await bridge.settled_statuses()} == {DeliveryStatus.SENT}


async def test_a_public_reply_whose_answer_was_lost_is_posted_once(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    post = vk.post("Скидки недели")
    vk.comment(501, post.id, "Есть размер M?")
    await bridge.wait_stored(1)
    thread_id = (await thread_of(bridge, post.id))[0]
    vk.faults.add(
        Fault(FaultKind.DROP, after_processing=True), methods="wall.createComment", times=1
    )

    await reply_as_agent(bridge.engine, bridge.bus, thread_id, bridge.agent_id, "Есть")
    await bridge.settled_statuses()
    await asyncio.sleep(0.2)

    assert [c.text for c in vk.community_comments()] == ["Есть"]
    assert bridge.sender.stats.retries > 0, "the answer really was lost"


async def test_the_communitys_own_comment_does_not_come_back_as_a_customers(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    post = vk.post("Скидки недели")
    vk.comment(501, post.id, "Есть размер M?")
    await bridge.wait_stored(1)
    thread_id = (await thread_of(bridge, post.id))[0]
    await reply_as_agent(bridge.engine, bridge.bus, thread_id, bridge.agent_id, "Есть")
    await vk.wait_for_community_comments(1)
    vk.comment(502, post.id, "А L?")
    await bridge.wait_stored(2)

    assert await bridge.inbound_texts() == ["Есть размер M?", "А L?"]


async def test_an_edited_and_a_deleted_comment_change_the_thread_and_lose_nothing(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    post = vk.post("Скидки недели")
    first = vk.comment(501, post.id, "Есть размер M?")
    second = vk.comment(502, post.id, "Где чек?")
    await bridge.wait_stored(2)

    vk.wall.edit_comment(501, "wall", first.id, "Есть размер M и L?")
    vk.wall.delete_comment(502, "wall", second.id)
    for _ in range(200):
        found = await bridge.rows(
            sa.select(messages.c.text, messages.c.deleted_at.is_not(None)).order_by(messages.c.id)
        )
        if found == [("Есть размер M и L?", False), ("Где чек?", True)]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the thread is {found}")


async def allowed(bridge: VkBridge, user: int, value: bool | None) -> None:
    for _ in range(200):
        found = await bridge.rows(
            sa.select(identities.c.allows_private).where(identities.c.external_user_id == str(user))
        )
        if found == [(value,)]:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"user {user}: allows_private is {found}")


async def comment_in_thread(bridge: VkBridge, vk: VkEmulator, user: int) -> tuple[int, int]:
    post = vk.post("Скидки недели")
    vk.comment(user, post.id, "Мой заказ не пришёл, номер 123")
    await bridge.wait_stored(1)
    thread_id = (await thread_of(bridge, post.id))[0]
    (comment_id,) = (await bridge.rows(sa.select(messages.c.id)))[0]
    return thread_id, comment_id


async def test_moving_to_private_sends_the_agents_message_privately_to_the_commenter(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    vk.allow_messages(501)
    thread_id, comment_id = await comment_in_thread(bridge, vk, 501)
    await allowed(bridge, 501, True)

    moved = await move_to_private(
        bridge.engine, bridge.bus, thread_id, comment_id, bridge.agent_id, "Напишите номер телефона"
    )

    (sent,) = await vk.wait_for_bot_messages(501, 1)
    assert sent.text == "Напишите номер телефона"
    private = await bridge.rows(
        sa.select(conversations.c.chat_id, conversations.c.public).where(
            conversations.c.id == moved.conversation_id
        )
    )
    assert private == [("501", False)]
    assert vk.community_comments() == [], "nothing was said in public"


async def test_a_commenter_who_denied_messages_is_refused_beforehand_with_the_reason(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    vk.allow_messages(501)
    vk.deny_messages(501)
    thread_id, comment_id = await comment_in_thread(bridge, vk, 501)
    await allowed(bridge, 501, False)

    with pytest.raises(PrivateNotAllowed, match="invite them"):
        await move_to_private(
            bridge.engine, bridge.bus, thread_id, comment_id, bridge.agent_id, "Напишите нам"
        )

    assert vk.bot_messages(501) == []
    assert await bridge.inbound_texts() == ["Мой заказ не пришёл, номер 123"]


async def test_when_vk_refuses_with_901_the_agent_sees_why_and_the_message_is_kept(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    """Nobody told whether the commenter allows messages: it is tried, and VK's 901 is shown."""
    thread_id, comment_id = await comment_in_thread(bridge, vk, 502)

    await move_to_private(
        bridge.engine, bridge.bus, thread_id, comment_id, bridge.agent_id, "Напишите нам"
    )

    statuses = await bridge.settled_statuses()
    assert statuses == [
        (
            "Напишите нам",
            DeliveryStatus.FAILED,
            "VK error 901: Can't send messages for users without permission",
        )
    ]


async def test_a_comment_event_vk_sent_in_a_wrong_shape_is_a_dead_letter_and_blocks_nothing(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    broken = {
        "type": "wall_reply_new",
        "object": {"id": 31, "from_id": 501, "date": 1, "text": "без записи"},
        "group_id": GROUP,
        "event_id": "broken-1",
        "v": "5.199",
        "secret": EmulatedVk.SECRET,
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(bridge.webhook_url, json=broken) as answer:
            assert (answer.status, await answer.text()) == (200, "ok")
    post = vk.post("Скидки недели")
    vk.comment(502, post.id, "Есть размер M?")
    await bridge.wait_stored(1)

    for _ in range(200):
        reasons = [row[0] for row in await bridge.rows(sa.select(dead_letters.c.reason))]
        if reasons:
            break
        await asyncio.sleep(0.02)
    assert len(reasons) == 1 and "post_id" in reasons[0]
    assert await bridge.inbound_texts() == ["Есть размер M?"]


async def test_under_a_rate_limit_storm_public_replies_are_posted_once_and_in_order(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    post = vk.post("Скидки недели")
    vk.comment(501, post.id, "Есть размер M?")
    await bridge.wait_stored(1)
    thread_id = (await thread_of(bridge, post.id))[0]
    vk.faults.add(Fault(FaultKind.RATE_LIMIT), methods="wall.createComment", every=2)

    for n in range(3):
        await reply_as_agent(bridge.engine, bridge.bus, thread_id, bridge.agent_id, f"reply {n}")
    await vk.wait_for_community_comments(3, within=15)
    await asyncio.sleep(0.2)

    assert [c.text for c in vk.community_comments()] == ["reply 0", "reply 1", "reply 2"]
    assert bridge.sender.stats.retries > 0, "the storm really limited some comments"
    assert {status for _, status, _ in await bridge.settled_statuses()} == {DeliveryStatus.SENT}


async def test_a_comment_event_delivered_twice_is_stored_once(
    bridge: VkBridge, vk: VkEmulator
) -> None:
    post = vk.post("Скидки недели")
    event = {
        "type": "wall_reply_new",
        "object": {
            "id": 900,
            "from_id": 501,
            "date": 1,
            "text": "дважды",
            "post_id": post.id,
            "post_owner_id": -GROUP,
        },
        "group_id": GROUP,
        "event_id": "twice-1",
        "v": "5.199",
        "secret": EmulatedVk.SECRET,
    }
    async with aiohttp.ClientSession() as http:
        for attempt in range(2):
            headers = {"X-Retry-Counter": str(attempt)} if attempt else {}
            async with http.post(bridge.webhook_url, json=event, headers=headers) as answer:
                assert answer.status == 200
    await bridge.wait_stored(1)
    await asyncio.sleep(0.2)

    assert await bridge.inbound_texts() == ["дважды"]
