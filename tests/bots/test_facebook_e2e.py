"""Facebook Messenger end to end, what is Messenger's own: our channel against the emulator,
through the real pipeline and senders; Messenger's webhook handshake and events, the Send API's
errors and limits, its messaging windows. What every network does is in test_network_contract.py.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import AsyncIterator

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.facebook import FacebookChannel
from bots.facebook.channel import quick_replies
from bots.facebook.events import WebhookPayload, to_inbound
from bridge.channel import DeliveryError
from bridge.domain import (
    AuthorKind,
    Button,
    DeliveryStatus,
    Direction,
    Network,
    OutboundMessage,
)
from bridge.pipeline.responder import Responder
from bridge.settings import Settings
from bridge.store.models import conversations, messages, utcnow
from emulators.facebook import FacebookEmulator
from tests.factories import ScriptedResponder
from tests.network_harness import Bridge, EmulatedFacebook, open_bridge

TOKEN = EmulatedFacebook.TOKEN
APP_SECRET = EmulatedFacebook.APP_SECRET
VERIFY = EmulatedFacebook.VERIFY
DAY = 24 * 3600
OUTSIDE_24H = "outside Messenger's 24-hour window"

FacebookBridge = Bridge[EmulatedFacebook]


@pytest.fixture
async def bridge(
    engine: AsyncEngine, settings: Settings, responder: Responder | None
) -> AsyncIterator[FacebookBridge]:
    async with open_bridge(EmulatedFacebook(), engine, settings, responder, "webhook") as bridge:
        yield bridge


@pytest.fixture
def facebook(bridge: FacebookBridge) -> FacebookEmulator:
    return bridge.net.emulator


async def age(bridge: FacebookBridge, psid: str, seconds: float) -> None:
    """Move the customer's last message into the past: on Messenger, in the store and in the
    channel."""
    bridge.net.emulator.age_last_message(psid, seconds)
    bridge.net.channel.last_seen[psid] -= seconds
    c = conversations.c
    async with bridge.engine.begin() as conn:
        last = (
            await conn.execute(sa.select(c.last_message_at).where(c.chat_id == psid))
        ).scalar_one()
        await conn.execute(
            sa.update(conversations)
            .where(c.chat_id == psid)
            .values(last_message_at=last - dt.timedelta(seconds=seconds))
        )


async def queue_automatic(bridge: FacebookBridge, psid: str, text: str) -> None:
    """A bot message queued the way the pipeline stores its answers."""
    cid = await bridge.conversation_id(int(psid))
    key = f"bot:{uuid.uuid4().hex}"
    async with bridge.engine.begin() as conn:
        message_id = (
            await conn.execute(
                sa.insert(messages)
                .values(
                    conversation_id=cid,
                    network=Network.FACEBOOK,
                    direction=Direction.OUTBOUND,
                    author_kind=AuthorKind.BOT,
                    text=text,
                    idempotency_key=key,
                    delivery_status=DeliveryStatus.QUEUED,
                    created_at=utcnow(),
                )
                .returning(messages.c.id)
            )
        ).scalar_one()
    await bridge.bus.publish_outbound(
        [
            OutboundMessage(
                message_id=message_id,
                conversation_id=cid,
                network=Network.FACEBOOK,
                chat_id=psid,
                text=text,
                idempotency_key=key,
                author_kind=AuthorKind.BOT,
            )
        ]
    )


async def test_replies_inside_24_hours_go_as_responses(
    bridge: FacebookBridge, facebook: FacebookEmulator
) -> None:
    await bridge.customer_writes(501, "Не работает интернет")

    await bridge.agent_replies(501, "Перезагрузите роутер")
    acknowledgement, reply = await facebook.wait_for_page_messages("501", 2)

    assert (acknowledgement.messaging_type, acknowledgement.tag) == ("RESPONSE", None)
    assert (reply.messaging_type, reply.tag) == ("RESPONSE", None)


@pytest.mark.parametrize("responder", [ScriptedResponder(0.97)], ids=["confident"])
async def test_an_auto_answer_inside_24_hours_goes_as_a_response(
    bridge: FacebookBridge, facebook: FacebookEmulator
) -> None:
    await bridge.customer_writes(961, "how much is the tariff?")
    [answer] = facebook.page_messages("961")

    assert answer.quick_replies, "with its did-this-help quick replies"
    assert (answer.messaging_type, answer.tag) == ("RESPONSE", None)


async def test_quick_reply_and_postback_are_stored_as_the_customer_saw_them(
    bridge: FacebookBridge, facebook: FacebookEmulator
) -> None:
    await bridge.customer_writes(502, "hello")
    facebook.postback("502", "TALK_TO_HUMAN", title="Talk to a person")
    await bridge.wait_stored(2)

    assert await bridge.inbound_texts() == ["hello", "Talk to a person"]


async def test_verification_answers_the_challenge_only_with_the_right_token(
    bridge: FacebookBridge,
) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    async with aiohttp.ClientSession() as http:
        async with http.get(bridge.webhook_url, params={**query, "hub.verify_token": VERIFY}) as r:
            assert (r.status, await r.text()) == (200, "1158201444")
        async with http.get(bridge.webhook_url, params={**query, "hub.verify_token": "no"}) as r:
            assert r.status == 403


async def test_a_bot_message_after_24_hours_is_refused_before_any_call(
    bridge: FacebookBridge, facebook: FacebookEmulator
) -> None:
    await bridge.customer_writes(801, "hi")
    await age(bridge, "801", 2 * DAY)

    await queue_automatic(bridge, "801", "Did this help?")
    statuses = await bridge.settled_statuses()

    text, status, error = statuses[-1]
    assert (text, status) == ("Did this help?", DeliveryStatus.FAILED)
    # the channel's own reason, not the platform's 10/2018278: no call was made
    assert isinstance(error, str) and error.startswith(OUTSIDE_24H)
    assert len(facebook.page_messages("801")) == 1


async def test_an_agent_reply_between_24_hours_and_7_days_is_tagged_human_agent(
    bridge: FacebookBridge, facebook: FacebookEmulator
) -> None:
    await bridge.customer_writes(802, "hi")
    await age(bridge, "802", 3 * DAY)

    await bridge.agent_replies(802, "sorry for the wait")
    received = await facebook.wait_for_page_messages("802", 2)

    assert (received[1].messaging_type, received[1].tag) == ("MESSAGE_TAG", "HUMAN_AGENT")
    assert [status for _, status, _ in await bridge.settled_statuses()] == [DeliveryStatus.SENT] * 2


async def test_an_agent_reply_after_7_days_is_refused_with_the_reason(
    bridge: FacebookBridge, facebook: FacebookEmulator
) -> None:
    await bridge.customer_writes(803, "hi")
    await age(bridge, "803", 8 * DAY)

    await bridge.agent_replies(803, "still there?")
    statuses = await bridge.settled_statuses()

    text, status, error = statuses[-1]
    assert (text, status) == ("still there?", DeliveryStatus.FAILED)
    assert isinstance(error, str) and error.startswith(OUTSIDE_24H) and "7 days" in error
    assert len(facebook.page_messages("803")) == 1


async def test_the_window_is_known_from_the_store_after_a_restart(
    bridge: FacebookBridge, facebook: FacebookEmulator
) -> None:
    await bridge.customer_writes(804, "hi")
    await age(bridge, "804", 3 * DAY)
    bridge.net.channel.last_seen.clear()  # a new sender process has seen no webhook

    await bridge.agent_replies(804, "back to you")
    received = await facebook.wait_for_page_messages("804", 2)

    assert (received[1].messaging_type, received[1].tag) == ("MESSAGE_TAG", "HUMAN_AGENT")


def payload(*events: dict[str, object]) -> WebhookPayload:
    entry = {"id": "1", "time": 1, "messaging": list(events)}
    return WebhookPayload.model_validate({"object": "page", "entry": [entry]})


JPEG = b"\xff\xd8\xff\xe0 the bill, photographed" + bytes(500)


async def test_a_photo_is_kept_as_it_comes_and_opens_after_its_address_expired(
    bridge: FacebookBridge, facebook: FacebookEmulator
) -> None:
    facebook.send_file("7701", JPEG)
    [photo] = await bridge.stored_attachments()
    facebook.files.forget()

    opened = await bridge.net.channel.fetch_file(photo["network_file_id"])

    assert photo["kind"] == "photo"
    assert opened == JPEG


async def test_a_file_messenger_no_longer_serves_leaves_the_message_and_says_it_is_not_kept(
    bridge: FacebookBridge, facebook: FacebookEmulator
) -> None:
    facebook.send_file(
        "7702", b"%PDF-1.4", kind="file", content_type="application/pdf", expired=True
    )
    [document] = await bridge.stored_attachments()

    with pytest.raises(LookupError, match="the file is not kept"):
        await bridge.net.channel.fetch_file(document["network_file_id"])
    assert document["kind"] == "document"


def test_quick_replies_and_postbacks_are_button_presses_and_receipts_are_not_messages() -> None:
    person, page = {"id": "42"}, {"id": "1"}
    quick = {"mid": "m_1", "text": "Yes", "quick_reply": {"payload": "helped:yes"}}
    found = to_inbound(
        payload(
            {"sender": person, "recipient": page, "timestamp": 1000, "message": quick},
            {
                "sender": person,
                "recipient": page,
                "timestamp": 2000,
                "postback": {"title": "Menu", "payload": "MENU"},
            },
            {
                "sender": page,
                "recipient": person,
                "timestamp": 3000,
                "message": {"mid": "m_2", "text": "ours", "is_echo": True},
            },
            {"sender": person, "recipient": page, "timestamp": 4000, "read": {"watermark": 1}},
            {
                "sender": person,
                "recipient": page,
                "timestamp": 5000,
                "message": {"mid": "m_3", "attachments": [{"type": "image"}]},
            },
        )
    )

    assert [(i.message.kind, i.message.text, i.message.button_data) for i in found] == [
        ("button", "Yes", "helped:yes"),
        ("button", "Menu", "MENU"),
        ("message", "[image]", None),
    ]
    assert [i.sent_at for i in found] == [1.0, 2.0, 5.0]
    assert found[1].message.network_message_id == "postback:42:2000"


@pytest.fixture
async def direct() -> AsyncIterator[tuple[FacebookEmulator, FacebookChannel]]:
    """The channel against the emulator alone: what one send does, without the product."""
    facebook = FacebookEmulator(TOKEN, app_secret=APP_SECRET)
    api = TestServer(facebook.app, host="127.0.0.1")
    await api.start_server()
    channel = FacebookChannel(
        TOKEN, app_secret=APP_SECRET, verify_token=VERIFY, api_url=str(api.make_url(""))
    )
    facebook.write_text("900", "hi")  # no subscription: only opens the window
    channel.last_seen["900"] = time.time()
    yield facebook, channel
    await channel.close()
    await api.close()


def outbound(text: str, author_kind: AuthorKind = AuthorKind.AGENT) -> OutboundMessage:
    return OutboundMessage(
        message_id=1,
        conversation_id=1,
        network=Network.FACEBOOK,
        chat_id="900",
        text=text,
        idempotency_key="k",
        author_kind=author_kind,
    )


@pytest.mark.parametrize(
    ("code", "subcode", "permanent", "reason"),
    [
        (613, None, False, "Messenger error 613: (#613) Calls to this api have exceeded"),
        (4, None, False, "Messenger error 4: (#4) Application request limit reached"),
        (32, None, False, "Messenger error 32: (#32) Page request limit reached"),
        (2, None, False, "Messenger error 2: An unexpected error has occurred"),
        (10, 2018278, True, "outside Messenger's allowed window (Messenger error 10/2018278"),
        (190, None, True, "Messenger error 190: Invalid OAuth access token"),
        (100, None, True, "Messenger error 100: (#100) Invalid parameter"),
    ],
)
async def test_graph_errors_map_to_retry_or_permanent_failure(
    direct: tuple[FacebookEmulator, FacebookChannel],
    code: int,
    subcode: int | None,
    permanent: bool,
    reason: str,
) -> None:
    facebook, channel = direct
    facebook.fail_next(code, subcode=subcode)

    with pytest.raises(DeliveryError) as failed:
        await channel.send(outbound("hello"))

    assert failed.value.permanent is permanent
    assert failed.value.reason.startswith(reason)
    assert (await channel.send(outbound("again"))).network_message_id.startswith("m_")


async def test_a_retry_after_header_is_honoured() -> None:
    async def limited(_request: web.Request) -> web.Response:
        error = {"message": "(#613) Calls to this api have exceeded the rate limit.", "code": 613}
        return web.json_response({"error": error}, status=400, headers={"Retry-After": "7"})

    app = web.Application()
    app.add_routes([web.post("/v19.0/me/messages", limited)])
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    channel = FacebookChannel(
        TOKEN, app_secret=APP_SECRET, verify_token=VERIFY, api_url=str(server.make_url(""))
    )
    try:
        with pytest.raises(DeliveryError) as failed:
            await channel.send(outbound("hello"))
    finally:
        await channel.close()
        await server.close()

    assert (failed.value.permanent, failed.value.retry_after) == (False, 7.0)


async def test_a_long_reply_goes_in_several_messages_under_2000_characters(
    direct: tuple[FacebookEmulator, FacebookChannel],
) -> None:
    facebook, channel = direct
    delivered = await channel.send(outbound("x" * 4500))

    assert [len(m.text) for m in facebook.page_messages("900")] == [2000, 2000, 500]
    assert delivered.network_message_id == facebook.page_messages("900")[0].message_id


async def test_a_system_message_never_uses_the_human_agent_tag(
    direct: tuple[FacebookEmulator, FacebookChannel],
) -> None:
    facebook, channel = direct
    facebook.age_last_message("900", 2 * DAY)
    channel.last_seen["900"] -= 2 * DAY

    with pytest.raises(DeliveryError) as failed:
        await channel.send(outbound("auto", AuthorKind.SYSTEM))
    await channel.send(outbound("human"))

    assert failed.value.permanent and failed.value.reason.startswith(OUTSIDE_24H)
    assert [(m.text, m.tag) for m in facebook.page_messages("900")] == [("human", "HUMAN_AGENT")]


@pytest.mark.parametrize("missing", ["page_token", "app_secret", "verify_token"])
def test_an_empty_secret_is_refused_at_start(missing: str) -> None:
    secrets = {"page_token": TOKEN, "app_secret": APP_SECRET, "verify_token": VERIFY}
    secrets[missing] = ""
    with pytest.raises(ValueError):
        FacebookChannel(
            secrets["page_token"],
            app_secret=secrets["app_secret"],
            verify_token=secrets["verify_token"],
        )


def test_a_button_label_longer_than_a_quick_reply_title_is_shortened_visibly() -> None:
    (reply,) = quick_replies([Button(label="Нет, мне нужен живой человек", data="fb:x:1")])

    assert reply == {"content_type": "text", "title": "Нет, мне нужен живо…", "payload": "fb:x:1"}
    assert len(reply["title"]) == 20
