"""Instagram direct messages end to end, what is Instagram's own: its webhook object, the Send
API of the linked Page with Messenger's windows, a text of at most 1000 UTF-8 bytes, files by
type. What every network does (Instagram included) is in test_network_contract.py.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.facebook.events import Inbound, WebhookPayload, to_inbound
from bots.instagram import InstagramChannel
from bots.instagram.channel import FILE_LIMITS, split_utf8
from bridge.channel import MB, DeliveryError
from bridge.domain import AuthorKind, DeliveryStatus, Network, OutboundMessage
from bridge.inbox.outgoing_files import AgentFile, FileRefused
from bridge.pipeline.responder import Responder
from bridge.settings import Settings
from bridge.store.models import conversations, messages
from emulators.facebook import GraphError
from emulators.instagram import InstagramEmulator
from tests.network_harness import Bridge, EmulatedInstagram, open_bridge

TOKEN = EmulatedInstagram.TOKEN
APP_SECRET = EmulatedInstagram.APP_SECRET
VERIFY = EmulatedInstagram.VERIFY
DAY = 24 * 3600
OUTSIDE_24H = "outside Instagram's 24-hour window"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big") * 2 + bytes(200)
PDF = b"%PDF-1.4 the invoice" + bytes(100)

InstagramBridge = Bridge[EmulatedInstagram]


@pytest.fixture
async def bridge(
    engine: AsyncEngine, settings: Settings, responder: Responder | None
) -> AsyncIterator[InstagramBridge]:
    async with open_bridge(EmulatedInstagram(), engine, settings, responder, "webhook") as bridge:
        yield bridge


@pytest.fixture
def instagram(bridge: InstagramBridge) -> InstagramEmulator:
    emulator = bridge.net.emulator
    assert isinstance(emulator, InstagramEmulator)
    return emulator


async def age(bridge: InstagramBridge, igsid: str, seconds: float) -> None:
    """Move the customer's last message into the past: on Instagram, in the store and in the
    channel."""
    bridge.net.emulator.age_last_message(igsid, seconds)
    bridge.net.channel.last_seen[igsid] -= seconds
    c = conversations.c
    async with bridge.engine.begin() as conn:
        last = (
            await conn.execute(sa.select(c.last_message_at).where(c.chat_id == igsid))
        ).scalar_one()
        await conn.execute(
            sa.update(conversations)
            .where(c.chat_id == igsid)
            .values(last_message_at=last - dt.timedelta(seconds=seconds))
        )


def instagram_payload(*events: dict[str, object], obj: str = "instagram") -> WebhookPayload:
    entry = {"id": "17841400000000001", "time": 1, "messaging": list(events)}
    return WebhookPayload.model_validate({"object": obj, "entry": [entry]})


PERSON, ACCOUNT = {"id": "4242"}, {"id": "17841400000000001"}


def test_an_instagram_webhook_message_becomes_an_instagram_message_of_the_igsid() -> None:
    event = {
        "sender": PERSON,
        "recipient": ACCOUNT,
        "timestamp": 1000,
        "message": {"mid": "aWdfZAG1", "text": "где мой заказ?"},
    }

    [found] = to_inbound(instagram_payload(event), Network.INSTAGRAM)

    assert isinstance(found, Inbound)
    message = found.message
    assert (message.network, message.chat_id, message.user_id) == (
        Network.INSTAGRAM,
        "4242",
        "4242",
    )
    assert (message.network_message_id, message.text) == ("aWdfZAG1", "где мой заказ?")


def test_a_page_webhook_is_not_instagrams_and_an_instagram_one_is_not_messengers() -> None:
    event = {"sender": PERSON, "recipient": ACCOUNT, "timestamp": 1, "message": {"mid": "m"}}

    assert to_inbound(instagram_payload(event, obj="page"), Network.INSTAGRAM) == []
    assert to_inbound(instagram_payload(event), Network.FACEBOOK) == []


def test_an_unsent_message_and_the_accounts_own_echo_are_not_customer_messages() -> None:
    unsent = {"mid": "aWdfZAG2", "is_deleted": True}
    echo = {"mid": "aWdfZAG3", "text": "ours", "is_echo": True}
    found = to_inbound(
        instagram_payload(
            {"sender": PERSON, "recipient": ACCOUNT, "timestamp": 1, "message": unsent},
            {"sender": ACCOUNT, "recipient": PERSON, "timestamp": 2, "message": echo},
        ),
        Network.INSTAGRAM,
    )

    assert found == []


def test_a_customers_file_is_kept_under_an_instagram_key() -> None:
    image = {"type": "image", "payload": {"url": "https://lookaside.fbsbx.com/ig/1"}}
    event = {
        "sender": PERSON,
        "recipient": ACCOUNT,
        "timestamp": 1,
        "message": {"mid": "aWdfZAG4", "attachments": [image]},
    }

    [found] = to_inbound(instagram_payload(event), Network.INSTAGRAM)

    assert isinstance(found, Inbound)
    [attachment] = found.message.attachments
    assert attachment.kind == "photo" and attachment.network_file_id.startswith("ig:")


def test_a_text_is_cut_into_pieces_of_at_most_1000_utf8_bytes_between_characters() -> None:
    pieces = split_utf8("я" * 1200, 1000)  # two bytes each

    assert [len(p) for p in pieces] == [500, 500, 200]
    assert split_utf8("😀" * 300, 1000) == ["😀" * 250, "😀" * 50]  # four bytes each


async def test_the_customers_message_is_stored_and_the_agents_reply_goes_by_the_send_api(
    bridge: InstagramBridge, instagram: InstagramEmulator
) -> None:
    await bridge.customer_writes(501, "Не работает доставка")

    await bridge.agent_replies(501, "Уже проверяем")
    _acknowledgement, reply = await instagram.wait_for_page_messages("501", 2)

    networks = await bridge.rows(sa.select(conversations.c.network, conversations.c.chat_id))
    assert networks == [(Network.INSTAGRAM, "501")]
    assert (reply.text, reply.messaging_type, reply.tag) == ("Уже проверяем", "RESPONSE", None)
    assert [status for _, status, _ in await bridge.settled_statuses()] == [DeliveryStatus.SENT] * 2


async def test_an_agent_reply_between_24_hours_and_7_days_is_tagged_human_agent(
    bridge: InstagramBridge, instagram: InstagramEmulator
) -> None:
    await bridge.customer_writes(802, "hi")
    await age(bridge, "802", 3 * DAY)

    await bridge.agent_replies(802, "sorry for the wait")
    received = await instagram.wait_for_page_messages("802", 2)

    assert (received[1].messaging_type, received[1].tag) == ("MESSAGE_TAG", "HUMAN_AGENT")


async def test_an_agent_reply_after_7_days_fails_with_the_reason_and_the_next_goes_out(
    bridge: InstagramBridge, instagram: InstagramEmulator
) -> None:
    await bridge.customer_writes(803, "hi")
    await age(bridge, "803", 8 * DAY)

    await bridge.agent_replies(803, "still there?")
    text, status, error = (await bridge.settled_statuses())[-1]
    bridge.net.write(803, "yes, here")  # the window opens again
    await bridge.wait_stored(2)
    await bridge.agent_replies(803, "great")
    received = await instagram.wait_for_page_messages("803", 2)

    assert (text, status) == ("still there?", DeliveryStatus.FAILED)
    assert isinstance(error, str) and error.startswith(OUTSIDE_24H) and "7 days" in error
    assert received[-1].text == "great", "the sender went on after the failure"


async def test_a_long_reply_arrives_in_messages_of_at_most_1000_bytes(
    bridge: InstagramBridge, instagram: InstagramEmulator
) -> None:
    await bridge.customer_writes(804, "подробнее, пожалуйста")

    await bridge.agent_replies(804, "ж" * 1300)
    received = await instagram.wait_for_page_messages("804", 4)

    assert [len(m.text.encode()) for m in received[1:]] == [1000, 1000, 600]


async def test_a_pdf_goes_as_a_file_and_a_picture_as_an_image(
    bridge: InstagramBridge, instagram: InstagramEmulator
) -> None:
    await bridge.customer_writes(805, "пришлите счёт")

    await bridge.agent_sends(
        805,
        "",
        AgentFile("invoice.pdf", PDF, "application/pdf"),
        AgentFile("box.png", PNG, "image/png"),
    )
    received = await instagram.wait_for_page_messages("805", 3)

    attachments = [m.attachment for m in received[1:]]
    assert [(a["type"], a["name"]) for a in attachments if a] == [
        ("file", "invoice.pdf"),
        ("image", "box.png"),
    ]


@pytest.mark.parametrize(
    ("name", "size", "why"),
    [
        ("report.docx", 1000, "Instagram takes only these files"),
        ("scan.png", 9 * MB, "8 MB max for .png"),
        ("film.mp4", 26 * MB, "file too large for Instagram: 25 MB max"),
    ],
)
def test_a_file_instagram_does_not_take_is_refused_before_it_is_kept(
    name: str, size: int, why: str
) -> None:
    refusal = FILE_LIMITS.refusal(name, size)

    assert refusal is not None and why in refusal


async def test_the_inbox_refuses_an_agents_file_instagram_would_not_take(
    bridge: InstagramBridge,
) -> None:
    await bridge.customer_writes(806, "hi")

    with pytest.raises(FileRefused, match="takes only these files"):
        await bridge.agent_sends(806, "", AgentFile("notes.txt", b"plain text", "text/plain"))
    assert await bridge.rows(sa.select(messages.c.id).where(messages.c.text == "")) == []


@pytest.fixture
async def direct() -> AsyncIterator[tuple[InstagramEmulator, InstagramChannel]]:
    """The channel against the emulator alone: what one send does, without the product."""
    instagram = InstagramEmulator(TOKEN, app_secret=APP_SECRET)
    api = TestServer(instagram.app, host="127.0.0.1")
    await api.start_server()
    channel = InstagramChannel(
        TOKEN, app_secret=APP_SECRET, verify_token=VERIFY, api_url=str(api.make_url(""))
    )
    instagram.write_text("900", "hi")  # no subscription: only opens the window
    channel.last_seen["900"] = time.time()
    yield instagram, channel
    await channel.close()
    await api.close()


def outbound(text: str, author_kind: AuthorKind = AuthorKind.AGENT) -> OutboundMessage:
    return OutboundMessage(
        message_id=1,
        conversation_id=1,
        network=Network.INSTAGRAM,
        chat_id="900",
        text=text,
        idempotency_key="k",
        author_kind=author_kind,
    )


async def test_a_bot_message_after_24_hours_is_refused_before_any_call(
    direct: tuple[InstagramEmulator, InstagramChannel],
) -> None:
    instagram, channel = direct
    instagram.age_last_message("900", 2 * DAY)
    channel.last_seen["900"] -= 2 * DAY

    with pytest.raises(DeliveryError) as failed:
        await channel.send(outbound("Did this help?", AuthorKind.BOT))

    assert failed.value.permanent and failed.value.reason.startswith(OUTSIDE_24H)
    assert instagram.page_messages("900") == []


async def test_the_platforms_window_refusal_is_permanent_and_names_instagram(
    direct: tuple[InstagramEmulator, InstagramChannel],
) -> None:
    instagram, channel = direct
    channel.last_seen.clear()  # nothing known here: the platform's own check answers
    instagram.age_last_message("900", 9 * DAY)

    with pytest.raises(DeliveryError) as failed:
        await channel.send(outbound("hello"))

    assert failed.value.permanent
    assert failed.value.reason.startswith("outside Instagram's allowed window (Instagram error 10")


def test_the_emulator_refuses_a_text_over_1000_bytes_and_a_file_that_is_no_pdf() -> None:
    instagram = InstagramEmulator()
    instagram.write_text("7", "hi")

    with pytest.raises(GraphError, match="1000 UTF-8 bytes"):
        instagram._check_text("я" * 501)
    with pytest.raises(GraphError, match="must be a PDF"):
        instagram._check_file("file", b"PK\x03\x04 a docx")
    with pytest.raises(GraphError, match="8 MB"):
        instagram._check_file("image", PNG + bytes(8 * MB))
