"""Facebook Messenger end to end: our channel against the emulator, through the real pipeline and
senders; signed webhooks in, the Send API out, Messenger's messaging windows."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.facebook import FacebookChannel
from bots.facebook.channel import WEBHOOK_PATH, quick_replies
from bots.facebook.events import WebhookPayload, to_inbound
from bridge.bus.memory import MemoryBus
from bridge.channel import DeliveryError
from bridge.delivery.ratelimit import MemoryRateLimiter
from bridge.delivery.sender import RetryPolicy, Sender
from bridge.domain import (
    AuthorKind,
    Button,
    ConversationState,
    DeliveryStatus,
    Direction,
    Network,
    OutboundMessage,
)
from bridge.inbox.actions import reply_as_agent
from bridge.pipeline.phrases import FEEDBACK_YES
from bridge.pipeline.responder import Responder
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.kept_files import StoredFiles
from bridge.store.models import agents, conversations, decisions, messages, utcnow
from emulators.facebook import SIGNATURE_HEADER, FacebookEmulator, sign
from emulators.faults import Fault, FaultKind
from tests.factories import ScriptedResponder

TOKEN = "EAAB-e2e-page-token"
APP_SECRET = "e2e-app-secret"
VERIFY = "e2e-verify-token"
DAY = 24 * 3600
OUTSIDE_24H = "outside Messenger's 24-hour window"


@dataclass
class Bridge:
    """The embedded product around one Messenger channel, and the emulated Messenger."""

    facebook: FacebookEmulator
    channel: FacebookChannel
    engine: AsyncEngine
    bus: MemoryBus
    sender: Sender
    webhook_url: str
    agent_id: int

    async def rows(self, query: sa.Select[Any]) -> list[sa.Row[Any]]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(query)).all())

    async def wait_stored(self, count: int) -> None:
        query = sa.select(sa.func.count()).where(messages.c.direction == "inbound")
        for _ in range(200):
            if (await self.rows(query))[0][0] >= count:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"fewer than {count} customer messages stored")

    async def inbound_texts(self) -> list[object]:
        query = (
            sa.select(messages.c.text)
            .where(messages.c.direction == "inbound")
            .order_by(messages.c.id)
        )
        return [row[0] for row in await self.rows(query)]

    async def conversation_id(self, psid: str) -> int:
        found = await self.rows(
            sa.select(conversations.c.id).where(conversations.c.chat_id == psid)
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

    async def customer_writes(self, psid: str, text: str, stored: int) -> None:
        """The customer writes; waits until it is stored and the hand-off note reached them."""
        before = len(self.facebook.page_messages(psid))
        self.facebook.write_text(psid, text)
        await self.wait_stored(stored)
        await self.facebook.wait_for_page_messages(psid, before + 1)

    async def age(self, psid: str, seconds: float) -> None:
        """Move the customer's last message into the past: on Messenger, in the store and in
        the channel."""
        self.facebook.age_last_message(psid, seconds)
        self.channel.last_seen[psid] -= seconds
        c = conversations.c
        async with self.engine.begin() as conn:
            last = (
                await conn.execute(sa.select(c.last_message_at).where(c.chat_id == psid))
            ).scalar_one()
            await conn.execute(
                sa.update(conversations)
                .where(c.chat_id == psid)
                .values(last_message_at=last - dt.timedelta(seconds=seconds))
            )

    async def queue_automatic(self, psid: str, text: str) -> None:
        """A bot message queued the way the pipeline stores its answers."""
        cid = await self.conversation_id(psid)
        key = f"bot:{uuid.uuid4().hex}"
        async with self.engine.begin() as conn:
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
        await self.bus.publish_outbound(
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


@pytest.fixture
async def bridge(
    engine: AsyncEngine, settings: Settings, responder: Responder | None
) -> AsyncIterator[Bridge]:
    facebook = FacebookEmulator(TOKEN, app_secret=APP_SECRET, webhook_retry_delay=0.05)
    api = TestServer(facebook.app, host="127.0.0.1")
    await api.start_server()
    facebook.files.url = str(api.make_url(""))
    channel = FacebookChannel(
        TOKEN,
        app_secret=APP_SECRET,
        verify_token=VERIFY,
        api_url=str(api.make_url("")).rstrip("/"),
        files=StoredFiles(engine),
    )
    bus = MemoryBus(settings.inbound_shards)
    routes = web.Application()
    routes.add_routes(channel.webhook_routes(bus.publish_inbound))
    hook = TestServer(routes, host="127.0.0.1")
    await hook.start_server()
    webhook_url = str(hook.make_url(WEBHOOK_PATH))
    await facebook.subscribe(webhook_url, VERIFY)
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
                Network.FACEBOOK, "sender", sender.handle, batch_size=50, stop=stop
            )
        ),
        asyncio.ensure_future(channel.poll(bus.publish_inbound, stop)),
    ]
    yield Bridge(facebook, channel, engine, bus, sender, webhook_url, agent_id)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    await channel.close()
    await hook.close()
    await api.close()


async def test_signed_webhook_message_is_stored_handed_off_and_the_agents_reply_arrives(
    bridge: Bridge,
) -> None:
    await bridge.customer_writes("501", "Не работает интернет", stored=1)
    acknowledgement = bridge.facebook.page_messages("501")[0]
    assert acknowledgement.text.startswith("Спасибо!")
    assert acknowledgement.messaging_type == "RESPONSE"

    cid = await bridge.conversation_id("501")
    await reply_as_agent(bridge.engine, bridge.bus, cid, bridge.agent_id, "Перезагрузите роутер")
    received = await bridge.facebook.wait_for_page_messages("501", 2)

    assert (received[1].text, received[1].messaging_type) == ("Перезагрузите роутер", "RESPONSE")
    state = await bridge.rows(sa.select(conversations.c.state, conversations.c.handoff_reason))
    assert state == [(ConversationState.ASSIGNED, "no_responder")]
    assert [status for _, status, _ in await bridge.settled_statuses()] == [DeliveryStatus.SENT] * 2
    # the page's echoes and delivery receipts came back too, and made no customer message
    await asyncio.sleep(0.2)
    assert await bridge.inbound_texts() == ["Не работает интернет"]


async def test_quick_reply_and_postback_are_stored_as_the_customer_saw_them(
    bridge: Bridge,
) -> None:
    await bridge.customer_writes("502", "hello", stored=1)
    bridge.facebook.postback("502", "TALK_TO_HUMAN", title="Talk to a person")
    await bridge.wait_stored(2)

    assert await bridge.inbound_texts() == ["hello", "Talk to a person"]


def signed_post(
    bridge: Bridge, body: bytes, signature: str | None
) -> tuple[str, bytes, dict[str, str]]:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers[SIGNATURE_HEADER] = signature
    return bridge.webhook_url, body, headers


def webhook_body(psid: str, mid: str, text: str) -> bytes:
    event = {
        "sender": {"id": psid},
        "recipient": {"id": "1000000000001"},
        "timestamp": 1_700_000_000_000,
        "message": {"mid": mid, "text": text},
    }
    entry = {"id": "1000000000001", "time": 1_700_000_000_000, "messaging": [event]}
    return json.dumps({"object": "page", "entry": [entry]}).encode()


async def test_webhook_delivered_twice_is_stored_once(bridge: Bridge) -> None:
    body = webhook_body("503", "m_twice", "twice")
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            url, data, headers = signed_post(bridge, body, sign(body, APP_SECRET))
            async with http.post(url, data=data, headers=headers) as response:
                assert response.status == 200
    await bridge.wait_stored(1)
    await asyncio.sleep(0.2)

    assert await bridge.inbound_texts() == ["twice"]


FORGERIES: dict[str, Callable[[bytes], str | None]] = {
    "other-body": lambda _body: sign(b"another body", APP_SECRET),
    "wrong-secret": lambda body: sign(body, "wrong secret"),
    "sha1-only": lambda _body: "sha1=0000",
    "empty": lambda _body: "sha256=",
    "missing": lambda _body: None,
}


@pytest.mark.parametrize("forgery", FORGERIES)
async def test_webhook_with_a_bad_signature_is_refused_and_stores_nothing(
    bridge: Bridge, forgery: str
) -> None:
    body = webhook_body("504", "m_forged", "forged")
    signature = FORGERIES[forgery](body)
    async with aiohttp.ClientSession() as http:
        url, data, headers = signed_post(bridge, body, signature)
        async with http.post(url, data=data, headers=headers) as response:
            assert response.status == 403
    await asyncio.sleep(0.2)

    assert await bridge.rows(sa.select(messages.c.id)) == []
    assert await bridge.bus.inbound_backlog() == 0


async def test_verification_answers_the_challenge_only_with_the_right_token(
    bridge: Bridge,
) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444"}
    async with aiohttp.ClientSession() as http:
        async with http.get(bridge.webhook_url, params={**query, "hub.verify_token": VERIFY}) as r:
            assert (r.status, await r.text()) == (200, "1158201444")
        async with http.get(bridge.webhook_url, params={**query, "hub.verify_token": "no"}) as r:
            assert r.status == 403


async def test_under_a_613_storm_every_reply_is_delivered_once_and_in_order(
    bridge: Bridge,
) -> None:
    psids = ["601", "602", "603"]
    for n, psid in enumerate(psids, start=1):
        await bridge.customer_writes(psid, "привет", stored=n)
    bridge.facebook.faults.add(Fault(FaultKind.RATE_LIMIT), methods="messages", every=2)

    for n in range(3):
        for psid in psids:
            cid = await bridge.conversation_id(psid)
            await reply_as_agent(bridge.engine, bridge.bus, cid, bridge.agent_id, f"reply {n}")
    for psid in psids:
        await bridge.facebook.wait_for_page_messages(psid, 4, within=15)
    await asyncio.sleep(0.2)

    for psid in psids:
        texts = [m.text for m in bridge.facebook.page_messages(psid)]
        assert texts[1:] == ["reply 0", "reply 1", "reply 2"]
    assert bridge.sender.stats.retries > 0, "the storm really limited some sends"
    assert {status for _, status, _ in await bridge.settled_statuses()} == {DeliveryStatus.SENT}


async def test_a_person_not_available_leaves_a_visible_failed_state(bridge: Bridge) -> None:
    await bridge.customer_writes("701", "hi", stored=1)
    bridge.facebook.set_unavailable("701")

    cid = await bridge.conversation_id("701")
    await reply_as_agent(bridge.engine, bridge.bus, cid, bridge.agent_id, "are you there?")
    statuses = await bridge.settled_statuses()

    assert statuses[-1] == (
        "are you there?",
        DeliveryStatus.FAILED,
        "Messenger error 551/1545041: (#551) This person isn't available right now.",
    )
    assert bridge.sender.stats.retries == 0, "a permanent error is not retried"


async def test_a_bot_message_after_24_hours_is_refused_before_any_call(bridge: Bridge) -> None:
    await bridge.customer_writes("801", "hi", stored=1)
    await bridge.age("801", 2 * DAY)

    await bridge.queue_automatic("801", "Did this help?")
    statuses = await bridge.settled_statuses()

    text, status, error = statuses[-1]
    assert (text, status) == ("Did this help?", DeliveryStatus.FAILED)
    # the channel's own reason, not the platform's 10/2018278: no call was made
    assert isinstance(error, str) and error.startswith(OUTSIDE_24H)
    assert len(bridge.facebook.page_messages("801")) == 1


async def test_an_agent_reply_between_24_hours_and_7_days_is_tagged_human_agent(
    bridge: Bridge,
) -> None:
    await bridge.customer_writes("802", "hi", stored=1)
    await bridge.age("802", 3 * DAY)

    cid = await bridge.conversation_id("802")
    await reply_as_agent(bridge.engine, bridge.bus, cid, bridge.agent_id, "sorry for the wait")
    received = await bridge.facebook.wait_for_page_messages("802", 2)

    assert (received[1].messaging_type, received[1].tag) == ("MESSAGE_TAG", "HUMAN_AGENT")
    assert [status for _, status, _ in await bridge.settled_statuses()] == [DeliveryStatus.SENT] * 2


async def test_an_agent_reply_after_7_days_is_refused_with_the_reason(bridge: Bridge) -> None:
    await bridge.customer_writes("803", "hi", stored=1)
    await bridge.age("803", 8 * DAY)

    cid = await bridge.conversation_id("803")
    await reply_as_agent(bridge.engine, bridge.bus, cid, bridge.agent_id, "still there?")
    statuses = await bridge.settled_statuses()

    text, status, error = statuses[-1]
    assert (text, status) == ("still there?", DeliveryStatus.FAILED)
    assert isinstance(error, str) and error.startswith(OUTSIDE_24H) and "7 days" in error
    assert len(bridge.facebook.page_messages("803")) == 1


def payload(*events: dict[str, object]) -> WebhookPayload:
    entry = {"id": "1", "time": 1, "messaging": list(events)}
    return WebhookPayload.model_validate({"object": "page", "entry": [entry]})


JPEG = b"\xff\xd8\xff\xe0 the bill, photographed" + bytes(500)


async def stored_attachments(bridge: Bridge) -> list[dict[str, Any]]:
    await bridge.wait_stored(1)
    rows = await bridge.rows(
        sa.select(messages.c.attachments).where(messages.c.direction == "inbound")
    )
    return list(rows[0][0] or [])


async def test_a_photo_is_kept_as_it_comes_and_opens_after_its_address_expired(
    bridge: Bridge,
) -> None:
    bridge.facebook.send_file("7701", JPEG)
    [photo] = await stored_attachments(bridge)
    bridge.facebook.files.forget()

    opened = await bridge.channel.fetch_file(photo["network_file_id"])

    assert photo["kind"] == "photo"
    assert opened == JPEG


async def test_a_file_messenger_no_longer_serves_leaves_the_message_and_says_it_is_not_kept(
    bridge: Bridge,
) -> None:
    bridge.facebook.send_file(
        "7702", b"%PDF-1.4", kind="file", content_type="application/pdf", expired=True
    )
    [document] = await stored_attachments(bridge)

    with pytest.raises(LookupError, match="the file is not kept"):
        await bridge.channel.fetch_file(document["network_file_id"])
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


async def test_the_window_is_known_from_the_store_after_a_restart(bridge: Bridge) -> None:
    await bridge.customer_writes("804", "hi", stored=1)
    await bridge.age("804", 3 * DAY)
    bridge.channel.last_seen.clear()  # a new sender process has seen no webhook

    cid = await bridge.conversation_id("804")
    await reply_as_agent(bridge.engine, bridge.bus, cid, bridge.agent_id, "back to you")
    received = await bridge.facebook.wait_for_page_messages("804", 2)

    assert (received[1].messaging_type, received[1].tag) == ("MESSAGE_TAG", "HUMAN_AGENT")


@pytest.mark.parametrize("responder", [ScriptedResponder(0.97)])
async def test_an_auto_answer_asks_with_quick_replies_and_yes_closes_the_conversation(
    bridge: Bridge,
) -> None:
    await bridge.customer_writes("961", "how much is the tariff?", stored=1)
    answer = bridge.facebook.page_messages("961")[0]
    assert answer.text.endswith("Did this answer help?")
    assert answer.quick_replies is not None
    yes, no = answer.quick_replies
    assert (yes["title"], no["title"]) == ("Yes, thanks", "No, I need a person")
    assert answer.messaging_type == "RESPONSE" and answer.tag is None

    bridge.facebook.press_quick_reply("961", yes["payload"])
    thanks = (await bridge.facebook.wait_for_page_messages("961", 2))[1]

    assert thanks.text == "Glad to help! Write any time."
    state = await bridge.rows(sa.select(conversations.c.state, conversations.c.handoff_reason))
    assert state == [(ConversationState.RESOLVED, None)]
    feedback = await bridge.rows(sa.select(decisions.c.feedback))
    assert feedback == [(FEEDBACK_YES,)]


def test_a_button_label_longer_than_a_quick_reply_title_is_shortened_visibly() -> None:
    (reply,) = quick_replies([Button(label="Нет, мне нужен живой человек", data="fb:x:1")])

    assert reply == {"content_type": "text", "title": "Нет, мне нужен живо…", "payload": "fb:x:1"}
    assert len(reply["title"]) == 20
