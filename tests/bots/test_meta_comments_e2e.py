"""Comments on a Facebook Page's posts and on Instagram media end to end: our channel against
the emulators (plain aiohttp, signed webhooks), through the real pipeline, the agent's actions
and the sender."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import DeliveryStatus
from bridge.inbox.actions import reply_as_agent
from bridge.inbox.public import MovedToPrivate, PrivateReplyRefused, move_to_private
from bridge.inbox.views import conversation_view
from bridge.settings import Settings
from bridge.store.models import conversations, dead_letters, identities, messages
from emulators.facebook import SIGNATURE_HEADER, FacebookEmulator, sign
from emulators.faults import Fault, FaultKind
from tests.network_harness import Bridge, EmulatedFacebook, EmulatedInstagram, open_bridge

WEEK = 7 * 24 * 3600
MetaBridge = Bridge[EmulatedFacebook]


@pytest.fixture(params=["facebook", "instagram"])
async def bridge(
    request: pytest.FixtureRequest, engine: AsyncEngine, settings: Settings
) -> AsyncIterator[MetaBridge]:
    """A Page's post comments and an Instagram media's come, and are answered, the same way."""
    net = EmulatedFacebook() if request.param == "facebook" else EmulatedInstagram()
    async with open_bridge(net, engine, settings, None, "webhook") as bridge:
        yield bridge


@pytest.fixture
def meta(bridge: MetaBridge) -> FacebookEmulator:
    return bridge.net.emulator


async def thread_of(bridge: MetaBridge, post_id: str) -> Any:
    for _ in range(200):
        found = await bridge.rows(
            sa.select(
                conversations.c.id,
                conversations.c.public,
                conversations.c.post_text,
                conversations.c.post_url,
            ).where(conversations.c.chat_id.endswith(":" + post_id))
        )
        if found:
            return found[0]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no thread of post {post_id}")


async def comment_in_thread(bridge: MetaBridge, meta: FacebookEmulator) -> tuple[int, int, str]:
    """Customer 501 (their PSID or IGSID) comments under a new post: the thread's id, the
    comment's and its id on the network."""
    stored = await bridge.stored_count()
    post = meta.comments.add_post("New collection in the shops")
    comment = meta.comments.comment("501", post.id, "My order did not come, number 123")
    await bridge.wait_stored(stored + 1)
    thread_id = (await thread_of(bridge, post.id))[0]
    query = sa.select(messages.c.id).where(messages.c.conversation_id == thread_id)
    (comment_id,) = (await bridge.rows(query))[0]
    return thread_id, comment_id, comment.id


async def private_chats(bridge: MetaBridge) -> list[tuple[object, ...]]:
    """The private conversations: id and chat id."""
    c = conversations.c
    query = sa.select(c.id, c.chat_id).where(sa.not_(c.public)).order_by(c.id)
    return await bridge.rows(query)


async def customers(bridge: MetaBridge) -> set[object]:
    """The customers the people's identities belong to."""
    return {row[0] for row in await bridge.rows(sa.select(identities.c.customer_id))}


async def history(bridge: MetaBridge, conversation_id: int) -> list[str]:
    view = await conversation_view(bridge.engine, conversation_id)
    assert view is not None
    return [m.text for m in view.history]


async def commenter_moved_to_private(bridge: MetaBridge, meta: FacebookEmulator) -> MovedToPrivate:
    """Customer 501 commented under a post, and an agent asked them privately for their phone."""
    thread_id, comment_id, _ = await comment_in_thread(bridge, meta)
    return await move_to_private(
        bridge.engine, bridge.bus, thread_id, comment_id, bridge.agent_id, "Your phone number?"
    )


async def test_a_comment_reaches_the_inbox_as_a_public_thread_under_its_post(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    post = meta.comments.add_post("New collection in the shops")
    meta.comments.comment("501", post.id, "Do you deliver to Kazan?", name="anna")
    await bridge.wait_stored(1)

    thread = await thread_of(bridge, post.id)
    assert thread[1:] == (True, "New collection in the shops", post.permalink)
    assert await bridge.inbound_texts() == ["Do you deliver to Kazan?"]


async def test_the_agents_reply_is_the_accounts_reply_under_that_comment(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    post = meta.comments.add_post("Sale of the week")
    first = meta.comments.comment("501", post.id, "Shoes too?")
    meta.comments.comment("502", post.id, "When does it end?")
    await bridge.wait_stored(2)
    thread_id = (await thread_of(bridge, post.id))[0]
    first_id = (await bridge.rows(sa.select(messages.c.id).where(messages.c.text == "Shoes too?")))[
        0
    ][0]

    await reply_as_agent(
        bridge.engine, bridge.bus, thread_id, bridge.agent_id, "Yes, shoes too", reply_to=first_id
    )

    assert {status for _, status, _ in await bridge.settled_statuses()} == {DeliveryStatus.SENT}
    (reply,) = meta.comments.account_comments()
    assert (reply.text, reply.post_id, reply.parent_id) == ("Yes, shoes too", post.id, first.id)


async def test_the_accounts_own_reply_does_not_come_back_as_a_customers_comment(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    thread_id, _, _ = await comment_in_thread(bridge, meta)
    await reply_as_agent(bridge.engine, bridge.bus, thread_id, bridge.agent_id, "We are on it")
    await bridge.settled_statuses()
    post = meta.comments.posts()[0]
    meta.comments.comment("502", post.id, "Me too")
    await bridge.wait_stored(2)

    assert await bridge.inbound_texts() == ["My order did not come, number 123", "Me too"]


async def test_a_private_reply_reaches_the_commenters_private_conversation(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    thread_id, comment_id, _ = await comment_in_thread(bridge, meta)

    moved = await move_to_private(
        bridge.engine, bridge.bus, thread_id, comment_id, bridge.agent_id, "Your phone number?"
    )

    (sent,) = await meta.wait_for_page_messages("501", 1)
    assert sent.text == "Your phone number?"
    await bridge.settled_statuses()
    assert await private_chats(bridge) == [(moved.conversation_id, "501")], "under their PSID"
    assert meta.comments.account_comments() == [], "nothing was said in public"


async def test_the_customer_writing_back_lands_in_that_private_conversation_as_one_customer(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    """On Facebook the comment named them by another id than their PSID, which their Messenger
    messages come from: the private reply's answer tells it."""
    moved = await commenter_moved_to_private(bridge, meta)
    await bridge.settled_statuses()

    meta.write_text("501", "+7 900 000-00-00")
    await bridge.wait_stored(2)

    assert await private_chats(bridge) == [(moved.conversation_id, "501")]
    said = await history(bridge, moved.conversation_id)  # the customer's comment is shown too
    assert said[-2:] == ["Your phone number?", "+7 900 000-00-00"]
    assert len(await customers(bridge)) == 1


async def test_after_the_customer_writes_back_the_agents_reply_reaches_them(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    """Their message opens the 24-hour window of the conversation the private reply keyed."""
    moved = await commenter_moved_to_private(bridge, meta)
    await bridge.settled_statuses()
    meta.write_text("501", "+7 900 000-00-00")
    await bridge.wait_stored(2)

    await reply_as_agent(
        bridge.engine, bridge.bus, moved.conversation_id, bridge.agent_id, "Thanks"
    )

    assert (await bridge.settled_statuses())[-1][:2] == ("Thanks", DeliveryStatus.SENT)
    assert [m.text for m in meta.page_messages("501")][-1] == "Thanks"


async def test_a_customer_who_wrote_in_messenger_before_keeps_one_private_conversation(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    meta.write_text("501", "Hello, shop")
    await bridge.wait_stored(1)
    earlier = await bridge.conversation_id(501)
    await commenter_moved_to_private(bridge, meta)
    await bridge.settled_statuses()

    meta.write_text("501", "+7 900 000-00-00")
    await bridge.wait_stored(3)

    assert await private_chats(bridge) == [(earlier, "501")]
    said = await history(bridge, earlier)
    assert said[0] == "Hello, shop" and said[-2:] == ["Your phone number?", "+7 900 000-00-00"]
    assert len(await customers(bridge)) == 1


async def test_a_reply_queued_before_the_private_reply_went_follows_it_to_the_psid(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    """Queued for the conversation still under the comment's author id, it goes to the chat
    the private reply reached: where the platform keeps to its window until they write back."""
    moved = await commenter_moved_to_private(bridge, meta)
    await reply_as_agent(bridge.engine, bridge.bus, moved.conversation_id, bridge.agent_id, "Hi?")

    statuses = await bridge.settled_statuses()

    assert statuses[0][:2] == ("Your phone number?", DeliveryStatus.SENT)
    assert statuses[1][:2] == ("Hi?", DeliveryStatus.FAILED)
    assert "allowed window" in statuses[1][2], "refused for the window, not for a wrong person"


async def test_after_the_private_reply_the_conversation_waits_for_the_customer(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    """The 24-hour window opens only when they write back: until then the platform refuses."""
    moved = await commenter_moved_to_private(bridge, meta)
    await meta.wait_for_page_messages("501", 1)

    await reply_as_agent(bridge.engine, bridge.bus, moved.conversation_id, bridge.agent_id, "Hi?")

    statuses = await bridge.settled_statuses()
    assert statuses[-1][:2] == ("Hi?", DeliveryStatus.FAILED)
    assert "allowed window" in statuses[-1][2]


async def test_a_second_private_reply_to_the_same_comment_is_refused_beforehand(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    thread_id, comment_id, _ = await comment_in_thread(bridge, meta)
    await move_to_private(
        bridge.engine, bridge.bus, thread_id, comment_id, bridge.agent_id, "Your phone number?"
    )
    await meta.wait_for_page_messages("501", 1)

    with pytest.raises(PrivateReplyRefused, match="already has its private reply"):
        await move_to_private(
            bridge.engine, bridge.bus, thread_id, comment_id, bridge.agent_id, "Hello again"
        )

    assert [m.text for m in meta.page_messages("501")] == ["Your phone number?"]


async def test_the_thread_shows_which_comment_was_answered_privately(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    thread_id, comment_id, _ = await comment_in_thread(bridge, meta)
    await move_to_private(
        bridge.engine, bridge.bus, thread_id, comment_id, bridge.agent_id, "Your phone number?"
    )
    await meta.wait_for_page_messages("501", 1)

    view = await conversation_view(bridge.engine, thread_id)

    assert view is not None
    assert [(m.id, m.privately_answered) for m in view.history] == [(comment_id, True)]


async def test_a_private_reply_to_a_comment_older_than_7_days_is_refused_beforehand(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    thread_id, comment_id, _ = await comment_in_thread(bridge, meta)
    async with bridge.engine.begin() as conn:
        m = messages.c
        stored = (
            await conn.execute(sa.select(m.created_at).where(m.id == comment_id))
        ).scalar_one()
        await conn.execute(
            sa.update(messages)
            .where(m.id == comment_id)
            .values(created_at=stored - dt.timedelta(seconds=WEEK + 60))
        )

    with pytest.raises(PrivateReplyRefused, match="within 7 days"):
        await move_to_private(
            bridge.engine, bridge.bus, thread_id, comment_id, bridge.agent_id, "Hello"
        )
    assert meta.page_messages("501") == []
    view = await conversation_view(bridge.engine, thread_id)
    assert view is not None and view.history[0].private_reply_expired, "shown beforehand too"


async def test_when_the_platform_refuses_a_private_reply_the_reason_is_kept_and_sending_goes_on(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    """Our side did not know (the comment's age on the network): the platform's refusal marks
    the message failed with its reason, and the next reply still goes out."""
    thread_id, comment_id, network_comment = await comment_in_thread(bridge, meta)
    meta.comments.age_comment(network_comment, WEEK + 60)

    await move_to_private(
        bridge.engine, bridge.bus, thread_id, comment_id, bridge.agent_id, "Hello"
    )
    await reply_as_agent(bridge.engine, bridge.bus, thread_id, bridge.agent_id, "Answered here")

    statuses = await bridge.settled_statuses()
    assert statuses[0][:2] == ("Hello", DeliveryStatus.FAILED)
    assert "allowed window" in statuses[0][2]
    assert statuses[1][:2] == ("Answered here", DeliveryStatus.SENT)
    assert [c.text for c in meta.comments.account_comments()] == ["Answered here"]


async def test_a_second_private_reply_the_platform_refuses_is_kept_with_its_reason(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    """The comment was answered privately elsewhere (another tool): the platform says so."""
    thread_id, comment_id, network_comment = await comment_in_thread(bridge, meta)
    meta.comments.take_private_reply(network_comment)

    await move_to_private(
        bridge.engine, bridge.bus, thread_id, comment_id, bridge.agent_id, "Hello"
    )

    ((text, status, reason),) = await bridge.settled_statuses()
    assert (text, status) == ("Hello", DeliveryStatus.FAILED)
    assert "10900" in reason and "already replied" in reason


async def test_a_comment_change_delivered_twice_is_stored_once(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    net = bridge.net
    post = meta.comments.add_post("Sale of the week")
    if net.webhook_object == "page":
        field, value = (
            "feed",
            {
                "from": {"id": "501", "name": "Anna"},
                "item": "comment",
                "verb": "add",
                "post_id": post.id,
                "comment_id": f"{post.id}_900",
                "parent_id": post.id,
                "created_time": 1,
                "message": "twice",
            },
        )
    else:
        field, value = (
            "comments",
            {
                "id": "17800000000000900",
                "from": {"id": "501", "username": "anna"},
                "text": "twice",
                "media": {"id": post.id, "media_product_type": "FEED"},
            },
        )
    entry = {"id": meta.account_id, "time": 1, "changes": [{"field": field, "value": value}]}
    body = json.dumps({"object": net.webhook_object, "entry": [entry]}).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, net.APP_SECRET)}

    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.post(bridge.webhook_url, data=body, headers=headers) as answer:
                assert answer.status == 200
    await bridge.wait_stored(1)
    await asyncio.sleep(0.2)

    assert await bridge.inbound_texts() == ["twice"]


async def test_a_malformed_comment_change_is_a_dead_letter_and_blocks_nothing(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    net = bridge.net
    value = (
        {"item": "comment", "verb": "add"}
        if net.webhook_object == "page"
        else {"id": "1", "from": {"id": "7"}}
    )
    field = "feed" if net.webhook_object == "page" else "comments"
    entry = {"id": meta.account_id, "time": 1, "changes": [{"field": field, "value": value}]}
    body = json.dumps({"object": net.webhook_object, "entry": [entry]}).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(body, net.APP_SECRET)}

    async with aiohttp.ClientSession() as http:
        async with http.post(bridge.webhook_url, data=body, headers=headers) as answer:
            assert answer.status == 200
    post = meta.comments.add_post("Sale of the week")
    meta.comments.comment("502", post.id, "Size M?")
    await bridge.wait_stored(1)

    for _ in range(200):
        reasons = [row[0] for row in await bridge.rows(sa.select(dead_letters.c.reason))]
        if reasons:
            break
        await asyncio.sleep(0.02)
    assert len(reasons) == 1 and ("comment_id" in reasons[0] or "media" in reasons[0])
    assert await bridge.inbound_texts() == ["Size M?"]


async def test_a_public_reply_whose_answer_was_lost_is_posted_once(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    thread_id, _, _ = await comment_in_thread(bridge, meta)
    meta.faults.add(Fault(FaultKind.DROP, after_processing=True), methods="comments", times=1)

    await reply_as_agent(bridge.engine, bridge.bus, thread_id, bridge.agent_id, "We are on it")
    await bridge.settled_statuses()

    (reply,) = meta.comments.account_comments()
    assert bridge.sender.stats.retries > 0, "the answer really was lost"
    network_id = await bridge.rows(
        sa.select(messages.c.network_message_id).where(messages.c.direction == "outbound")
    )
    assert network_id == [(f"comment:{reply.id}",)], "the retry keeps the comment posted"


async def test_under_a_rate_limit_storm_public_replies_are_posted_once_and_in_order(
    bridge: MetaBridge, meta: FacebookEmulator
) -> None:
    thread_id, _, _ = await comment_in_thread(bridge, meta)
    meta.faults.add(Fault(FaultKind.RATE_LIMIT), methods="comments", every=2)

    for n in range(3):
        await reply_as_agent(bridge.engine, bridge.bus, thread_id, bridge.agent_id, f"reply {n}")
    await bridge.settled_statuses()

    assert [c.text for c in meta.comments.account_comments()] == ["reply 0", "reply 1", "reply 2"]
    assert bridge.sender.stats.retries > 0, "the storm really limited some comments"
