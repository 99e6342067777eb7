"""Every network's inbound parser under hypothesis, and the webhooks around them.

The contract (DESIGN.md, "Bad input gets a clear error and loses nothing"): whatever a network or
an impostor sends, a parser either refuses it with its own documented error (which the webhook
answers with 400), ignores it, or yields domain messages that the core worker stores as they are,
never dead-letters for breaking a size limit. Nothing else may escape: an unexpected exception is
a 500, which makes the network deliver the same poison again, or kills a polling loop.

The web chat's frames (`/ws/chat`) are held to the same contract, their own error being
`FrameError`, which the socket answers with an error frame and stays open.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
import hypothesis
import orjson
import pytest
import sqlalchemy as sa
from aiogram.types import Update
from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, example, given
from hypothesis import strategies as st
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.facebook import FacebookChannel
from bots.facebook import channel as facebook_channel
from bots.facebook.events import WebhookPayload
from bots.facebook.events import to_inbound as facebook_to_inbound
from bots.telegram import TelegramChannel
from bots.telegram import channel as telegram_channel
from bots.telegram.events import to_inbound as telegram_to_inbound
from bots.vk import VkChannel
from bots.vk import channel as vk_channel
from bots.vk.events import VkUpdate, author_id, button_data
from bots.vk.events import to_inbound as vk_to_inbound
from bots.webchat import channel as webchat_channel
from bots.webchat import protocol as webchat_protocol
from bots.webchat.protocol import FrameError, Hello, Say
from bots.webchat.token import VisitorTokens
from bridge.backends.local import LocalBackend
from bridge.bus import BusEntry
from bridge.bus.base import UNREADABLE, encode
from bridge.bus.memory import MemoryBus
from bridge.domain import MAX_ID_CHARS, MAX_TEXT_CHARS, InboundMessage, Network, Unreadable
from bridge.pipeline.worker import Pipeline, decode
from bridge.settings import Settings
from bridge.store.customer_history import customer_history
from bridge.store.kept_files import StoredFiles
from bridge.store.models import dead_letters, messages
from bridge.web.server import MAX_REQUEST_BYTES, make_app
from emulators.facebook import sign
from supportbridge.networks import NetworkChannel, make_webchat

FUZZ = hypothesis.settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- hostile values ---------------------------------------------------------------------------

SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=16,
)
# Just past each limit the product knows of: ids, names, button data, Telegram's message, ours.
HUGE_STRINGS = st.builds(
    lambda char, length: char * length,
    st.characters(),
    st.sampled_from([129, 256, 257, 4097, MAX_TEXT_CHARS + 1, 100_000]),
)
EXTREME_INTS = st.sampled_from([0, -1, 2**31, 2**53, 2**63, -(2**63), 10**200])


def nested(value: object, depth: int) -> object:
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return value


# Deep, yet within what json.loads accepts, so the value could have come in a request body.
DEEP_VALUES = st.builds(nested, JSON_VALUES, st.integers(min_value=20, max_value=200))
HOSTILE = JSON_VALUES | HUGE_STRINGS | EXTREME_INTS | DEEP_VALUES | st.just("")

Path = tuple[str | int, ...]
DELETE = object()


def locations(value: object, here: Path = ()) -> list[Path]:
    found = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            found += locations(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += locations(item, (*here, index))
    return found


def changed(value: object, where: Path, new: object) -> object:
    """`value` with the item at `where` replaced by `new`, or removed when `new` is DELETE."""
    if not where:
        return new
    head, *rest = where
    if isinstance(value, dict):
        copy = dict(value)
        if not rest and new is DELETE:
            del copy[head]
        else:
            copy[head] = changed(copy[head], tuple(rest), new)
        return copy
    assert isinstance(value, list) and isinstance(head, int)
    items = list(value)
    if not rest and new is DELETE:
        del items[head]
    else:
        items[head] = changed(items[head], tuple(rest), new)
    return items


def at(value: object, where: Path) -> object:
    for step in where:
        value = value[step]  # type: ignore[index]
    return value


# A value of the field's own type passes the schema, so it reaches the limits past it.
SAME_TYPE: dict[type, st.SearchStrategy[Any]] = {
    str: st.text() | HUGE_STRINGS | st.just(""),
    int: st.integers() | EXTREME_INTS,
}


@st.composite
def mutated(draw: st.DrawFn, valid: Sequence[dict[str, Any]]) -> object:
    """A valid event of the network with one to three fields replaced, retyped or deleted."""
    event: object = draw(st.sampled_from(valid))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = draw(st.sampled_from(locations(event)))
        kind = type(at(event, where))
        if where and draw(st.integers(0, 4)) == 0:
            new = DELETE
        elif kind in SAME_TYPE and draw(st.booleans()):
            new = draw(SAME_TYPE[kind])
        else:
            new = draw(HOSTILE)
        event = changed(event, where, new)
    return event


# -- valid events of each network, the seeds of the mutations ----------------------------------

TG_USER = {"id": 501, "is_bot": False, "first_name": "Ivan", "last_name": "Petrov",
           "username": "ivan", "language_code": "ru"}  # fmt: skip
TG_CHAT = {"id": 501, "type": "private", "first_name": "Ivan"}


def tg_message(**fields: object) -> dict[str, Any]:
    return {"message_id": 7, "date": 1_700_000_000, "chat": TG_CHAT, "from": TG_USER, **fields}


TG_PHOTO = [
    {"file_id": "small", "file_unique_id": "s", "width": 90, "height": 90, "file_size": 900},
    {"file_id": "large", "file_unique_id": "l", "width": 800, "height": 600, "file_size": 9000},
]
TG_DOCUMENT = {"file_id": "doc", "file_unique_id": "d", "file_name": "contract.pdf",
               "mime_type": "application/pdf", "file_size": 12_345}  # fmt: skip
TELEGRAM_EVENTS: list[dict[str, Any]] = [
    {"update_id": 1, "message": tg_message(text="Не работает интернет")},
    {"update_id": 2, "message": tg_message(caption="чек об оплате", photo=TG_PHOTO)},
    {"update_id": 3, "message": tg_message(document=TG_DOCUMENT)},
    {"update_id": 4, "edited_message": tg_message(text="исправил", edit_date=1_700_000_100)},
    {"update_id": 5, "callback_query": {"id": "cb1", "from": TG_USER, "chat_instance": "ci",
                                        "data": "helped:yes",
                                        "message": tg_message(text="Помогло?")}},
]  # fmt: skip

VK_GROUP = 77


def vk_message(**fields: object) -> dict[str, Any]:
    return {"id": 101, "date": 1_700_000_000, "peer_id": 501, "from_id": 501,
            "text": "Не работает интернет", "out": 0, "attachments": [], **fields}  # fmt: skip


VK_ATTACHMENTS = [
    {"type": "photo", "photo": {"id": 1, "owner_id": 501, "access_key": "k"}},
    {"type": "doc", "doc": {"id": 2, "owner_id": 501, "title": "act.pdf", "size": 100}},
    {"type": "sticker", "sticker": {"sticker_id": 9}},
]
VK_EVENTS: list[dict[str, Any]] = [
    {"type": "message_new", "group_id": VK_GROUP, "event_id": "e1",
     "object": {"message": vk_message(), "client_info": {"lang_id": 3}}},
    {"type": "message_new", "group_id": VK_GROUP, "event_id": "e2",
     "object": {"message": vk_message(id=102, text="", attachments=VK_ATTACHMENTS)}},
    {"type": "message_edit", "group_id": VK_GROUP, "object": vk_message(text="исправил")},
    {"type": "message_event", "group_id": VK_GROUP,
     "object": {"user_id": 501, "peer_id": 501, "event_id": "ev1",
                "payload": {"button": "helped:yes"}}},
    {"type": "message_event", "group_id": VK_GROUP,
     "object": {"user_id": 501, "peer_id": 501, "event_id": "ev2",
                "payload": '{"button": "helped:no"}'}},
]  # fmt: skip
VK_NAMES = {501: "Ivan Petrov"}


def fb_event(**fields: object) -> dict[str, Any]:
    return {"sender": {"id": "PSID1"}, "recipient": {"id": "PAGE"},
            "timestamp": 1_700_000_000_000, **fields}  # fmt: skip


def fb_payload(*events: dict[str, Any]) -> dict[str, Any]:
    return {"object": "page", "entry": [{"id": "PAGE", "time": 1_700_000_000_000,
                                         "messaging": list(events)}]}  # fmt: skip


FACEBOOK_EVENTS: list[dict[str, Any]] = [
    fb_payload(fb_event(message={"mid": "m1", "text": "Не работает интернет"})),
    fb_payload(fb_event(message={"mid": "m2", "text": "Да",
                                 "quick_reply": {"payload": "helped:yes"}})),
    fb_payload(fb_event(postback={"mid": "m3", "title": "Тарифы", "payload": "tariffs"})),
    fb_payload(fb_event(message={"mid": "m4", "attachments": [{"type": "image"}]})),
    fb_payload(fb_event(message={"mid": "m5", "text": "эхо", "is_echo": True}),
               fb_event(delivery={"mids": ["m1"]}), fb_event(postback={"payload": "old"})),
]  # fmt: skip


WEBCHAT_FRAMES: list[dict[str, Any]] = [
    {"type": "hello", "token": None, "language": "ru-RU"},
    {"type": "hello", "token": "v1.not-one-of-ours.sig", "language": "en"},
    {"type": "message", "id": "msg-0001", "text": "Не работает интернет"},
    {"type": "button", "id": "btn_0001", "data": "helped:yes", "label": "Да"},
]
TOKENS = VisitorTokens(b"0123456789abcdef")
VISITOR, _ = TOKENS.issue()


# -- the parsers as each webhook runs them ------------------------------------------------------


def assert_fits_the_bridge(message: InboundMessage | Unreadable, network: Network) -> None:
    """A parsed message is within every size limit: the core worker takes it as it is; an
    event that cannot be one reaches dead_letters with its reason."""
    assert message.network is network
    if isinstance(message, Unreadable):
        envelope = orjson.dumps({UNREADABLE: message.model_dump(mode="json")})
        accepted, rejected = decode([BusEntry("1-0", envelope)])
        assert accepted == [] and len(rejected) == 1
        assert rejected[0].reason.startswith(f"unreadable {network.value} event: ")
        return
    assert isinstance(message, InboundMessage)
    assert len(message.text) <= MAX_TEXT_CHARS
    accepted, rejected = decode([BusEntry("1-0", encode(message))])
    assert rejected == []
    assert accepted == [message]


def parse_telegram(raw: object) -> list[InboundMessage | Unreadable]:
    try:
        update = Update.model_validate(raw)
    except ValidationError:
        return []  # the webhook answers 400
    return telegram_to_inbound(update)


def parse_vk(raw: object) -> list[InboundMessage | Unreadable]:
    try:
        update = VkUpdate.model_validate(raw)
    except ValidationError:
        return []  # the webhook answers 400
    try:
        author_id(update)
        message = vk_to_inbound(update, VK_NAMES)
    except ValidationError:
        return []  # documented: a malformed object of a known type, logged and skipped
    return [] if message is None else [message]


def parse_facebook(body: bytes) -> list[InboundMessage | Unreadable]:
    try:
        payload = WebhookPayload.model_validate_json(body)
    except ValidationError:
        return []  # the webhook answers 400
    found = facebook_to_inbound(payload)
    assert all(math.isfinite(item.sent_at) for item in found if not isinstance(item, Unreadable))
    return [item if isinstance(item, Unreadable) else item.message for item in found]


def parse_webchat(raw: str) -> list[InboundMessage]:
    """A frame as the socket takes it, and the message WebChatChannel makes of it."""
    try:
        frame = webchat_protocol.parse(raw)
    except FrameError as exc:
        assert exc.frame()["type"] == "error"
        return []  # answered with an error frame; the socket stays open
    if isinstance(frame, Hello):
        assert frame.language_code is None or re.fullmatch("[a-z]{2}", frame.language_code)
        # whatever it holds, a token we did not sign names no visitor (a new one is issued)
        assert frame.token is None or TOKENS.verify(frame.token) is None
        return []
    text, data = (frame.text, None) if isinstance(frame, Say) else (frame.label, frame.data)
    assert len(f"{VISITOR}:{frame.id}") <= MAX_ID_CHARS
    message = InboundMessage(
        network=Network.WEBCHAT,
        network_message_id=f"{VISITOR}:{frame.id}",
        kind="message" if data is None else "button",
        chat_id=VISITOR,
        user_id=VISITOR,
        text=text,
        button_data=data,
    )
    return [message]


def as_body(raw: object) -> bytes:
    return json.dumps(raw).encode()


def as_frame(raw: object) -> str:
    """What a browser's JSON.stringify sends (no ASCII escapes)."""
    return json.dumps(raw, ensure_ascii=False)


@pytest.mark.parametrize(
    ("parse", "events", "network"),
    [
        (parse_telegram, TELEGRAM_EVENTS, Network.TELEGRAM),
        (parse_vk, VK_EVENTS, Network.VK),
        (lambda raw: parse_facebook(as_body(raw)), FACEBOOK_EVENTS, Network.FACEBOOK),
        (lambda raw: parse_webchat(as_frame(raw)), WEBCHAT_FRAMES[2:], Network.WEBCHAT),
    ],
    ids=["telegram", "vk", "facebook", "webchat"],
)
def test_every_seed_event_is_a_customer_message(
    parse: Callable[[object], list[InboundMessage]],
    events: list[dict[str, Any]],
    network: Network,
) -> None:
    for event in events:
        found = parse(event)
        assert found, event
        for message in found:
            assert_fits_the_bridge(message, network)


@FUZZ
@given(JSON_VALUES)
def test_telegram_refuses_or_ignores_arbitrary_json(raw: object) -> None:
    for message in parse_telegram(raw):
        assert_fits_the_bridge(message, Network.TELEGRAM)


@FUZZ
@given(mutated(TELEGRAM_EVENTS))
@example({"update_id": 9, "message_reaction_v2": {"chat": TG_CHAT}})
@example({"update_id": 9, "message": tg_message(text="x", chat={**TG_CHAT, "id": 10**200})})
@example({"update_id": 9, "message": tg_message(photo=[{**TG_PHOTO[0], "file_id": "f" * 129}])})
@example({"update_id": 9, "message": tg_message(document={**TG_DOCUMENT, "file_size": -1})})
@example({"update_id": 9, "callback_query": {**TELEGRAM_EVENTS[4]["callback_query"],
                                             "data": "d" * 100_000}})  # fmt: skip
def test_a_mutated_telegram_update_is_refused_ignored_or_a_message_within_limits(
    raw: object,
) -> None:
    for message in parse_telegram(raw):
        assert_fits_the_bridge(message, Network.TELEGRAM)


@FUZZ
@given(JSON_VALUES)
def test_vk_refuses_or_ignores_arbitrary_json(raw: object) -> None:
    for message in parse_vk(raw):
        assert_fits_the_bridge(message, Network.VK)


@FUZZ
@given(mutated(VK_EVENTS))
@example({**VK_EVENTS[4], "object": {**VK_EVENTS[4]["object"], "payload": "[" * 100_000}})
@example({**VK_EVENTS[0], "object": {"message": vk_message(text="x" * 100_000)}})
def test_a_mutated_vk_event_is_refused_ignored_or_a_message_within_limits(raw: object) -> None:
    for message in parse_vk(raw):
        assert_fits_the_bridge(message, Network.VK)


@FUZZ
@given(
    st.text(max_size=200)
    | st.builds(lambda depth: '{"button": ' * depth + '"x"' + "}" * depth, st.integers(0, 5_000))
)
@example("[" * 100_000)
def test_vk_button_data_of_any_payload_string_is_ours_or_none(payload: str) -> None:
    data = button_data(payload)
    assert data is None or len(data) <= 256


@FUZZ
@given(JSON_VALUES.map(as_body) | st.binary(max_size=200))
@example(b"[" * 100_000)
@example(b'{"object": "page", "entry": [')
def test_facebook_refuses_or_ignores_arbitrary_bodies(body: bytes) -> None:
    for message in parse_facebook(body):
        assert_fits_the_bridge(message, Network.FACEBOOK)


@FUZZ
@given(mutated(FACEBOOK_EVENTS))
@example(fb_payload(fb_event(sender={"id": ""}, message={"mid": "m", "text": "x"})))
@example(fb_payload(fb_event(sender={"id": "p" * 129}, message={"mid": "m", "text": "x"})))
@example(fb_payload(fb_event(message={"mid": "", "text": "x"})))
# an id of a control character alone: its message is dead-lettered, not raised
@example(fb_payload(fb_event(sender={"id": "\x00"}, postback={"payload": "x", "title": "t"})))
@example(fb_payload(fb_event(timestamp=10**400, message={"mid": "m", "text": "x"})))
def test_a_mutated_facebook_webhook_is_refused_ignored_or_messages_within_limits(
    raw: object,
) -> None:
    for message in parse_facebook(as_body(raw)):
        assert_fits_the_bridge(message, Network.FACEBOOK)


@FUZZ
@given(JSON_VALUES.map(as_frame) | st.text(max_size=200))
@example("[" * 60_000)
@example(as_frame({"type": "message", "id": "msg-0001", "text": "я" * 40_000}))
def test_webchat_refuses_arbitrary_frames_with_a_frame_error(raw: str) -> None:
    for message in parse_webchat(raw):
        assert_fits_the_bridge(message, Network.WEBCHAT)


@FUZZ
@given(mutated(WEBCHAT_FRAMES))
@example({"type": "message", "id": "msg-0001", "text": " " * 100})
@example({"type": "message", "id": "m" * 64, "text": "x" * MAX_TEXT_CHARS})
def test_a_mutated_webchat_frame_is_refused_or_a_message_within_limits(raw: object) -> None:
    for message in parse_webchat(as_frame(raw)):
        assert_fits_the_bridge(message, Network.WEBCHAT)


# -- the webhooks, end to end to the store -----------------------------------------------------

TG_TOKEN = "123456:ABC-fuzz"
SECRET = "fuzz-secret"
FB_APP_SECRET = "fuzz-app-secret"
# Nothing listens there: a call the channel makes (VK's users.get) fails fast and is survived.
NO_API = "http://127.0.0.1:9"
PATHS = {
    Network.TELEGRAM: telegram_channel.WEBHOOK_PATH,
    Network.VK: vk_channel.WEBHOOK_PATH,
    Network.FACEBOOK: facebook_channel.WEBHOOK_PATH,
}
NETWORKS = list(PATHS)


def customer_event(network: Network, seq: int, text: str) -> dict[str, Any]:
    """Customer `seq`'s first message, as the network pushes it."""
    if network is Network.TELEGRAM:
        chat = {**TG_CHAT, "id": 700 + seq}
        return {"update_id": seq, "message": tg_message(message_id=seq, chat=chat, text=text)}
    if network is Network.VK:
        message = vk_message(id=seq, peer_id=700 + seq, from_id=700 + seq, text=text)
        return {"type": "message_new", "group_id": VK_GROUP, "object": {"message": message}}
    return fb_payload(
        fb_event(sender={"id": f"PSID{seq}"}, message={"mid": f"m{seq}", "text": text})
    )


@dataclass
class Webhooks:
    """The three networks' webhook routes and the web chat's socket on the product's own
    application, the in-process bus and a core worker storing what comes."""

    url: str
    engine: AsyncEngine
    bus: MemoryBus

    async def post(self, network: Network, body: bytes | dict[str, Any]) -> tuple[int, str]:
        """POST as the network would, with its secret or signature."""
        if isinstance(body, dict):
            # json, not orjson: the malformed events carry ids past 64 bits
            body = as_body((body | {"secret": SECRET}) if network is Network.VK else body)
        headers = {"Content-Type": "application/json"}
        if network is Network.TELEGRAM:
            headers[telegram_channel.SECRET_HEADER] = SECRET
        if network is Network.FACEBOOK:
            headers[facebook_channel.SIGNATURE_HEADER] = sign(body, FB_APP_SECRET)
        async with (
            aiohttp.ClientSession() as http,
            http.post(self.url + PATHS[network], data=body, headers=headers) as response,
        ):
            return response.status, await response.text()

    async def stored_texts(self, count: int) -> list[str]:
        query = sa.select(messages.c.text).where(messages.c.direction == "inbound")
        for _ in range(200):
            async with self.engine.connect() as conn:
                texts = [row.text for row in await conn.execute(query.order_by(messages.c.id))]
            if len(texts) >= count:
                return texts
            await asyncio.sleep(0.02)
        raise AssertionError(f"fewer than {count} customer messages stored: {texts}")

    async def dead_letters(self) -> int:
        async with self.engine.connect() as conn:
            count = sa.select(sa.func.count(dead_letters.c.id))
            return int((await conn.execute(count)).scalar_one())


@pytest.fixture
async def webhooks(
    engine: AsyncEngine, settings: Settings, memory_bus: MemoryBus, local_backend: LocalBackend
) -> AsyncIterator[Webhooks]:
    channels: list[NetworkChannel] = [
        TelegramChannel(TG_TOKEN, api_url=NO_API, webhook_secret=SECRET),
        VkChannel("vk-token", VK_GROUP, api_url=NO_API, callback_secret=SECRET),
        FacebookChannel("page-token", app_secret=FB_APP_SECRET, verify_token="v", api_url=NO_API),
    ]
    webchat = await make_webchat(
        settings, local_backend, customer_history(engine), StoredFiles(engine)
    )
    app = make_app()
    for channel in [*channels, webchat]:
        app.router.add_routes(channel.webhook_routes(memory_bus.publish_inbound))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    stop = asyncio.Event()
    pipeline = Pipeline(engine, memory_bus, settings, None)
    worker = asyncio.ensure_future(
        memory_bus.consume_inbound("core", pipeline.handle, batch_size=50, stop=stop)
    )
    yield Webhooks(str(server.make_url("")).rstrip("/"), engine, memory_bus)
    stop.set()
    await asyncio.wait_for(worker, 10)
    for channel in [*channels, webchat]:
        await channel.close()
    await server.close()


BROKEN_BODIES = [
    b'{"update_id": 1, "message": {"text": "cut o',
    b"\xff\xfe not UTF-8",
    b"[" * 100_000,
    b"[]",
    b'"a JSON string"',
]


async def test_a_broken_body_on_any_webhook_is_refused_with_400_and_a_reason(
    webhooks: Webhooks,
) -> None:
    for network in NETWORKS:
        for body in BROKEN_BODIES:
            status, answer = await webhooks.post(network, body)
            assert status == 400, (network, body[:20], answer)
            assert "error" in json.loads(answer)

    for seq, network in enumerate(NETWORKS, 1):
        assert (await webhooks.post(network, customer_event(network, seq, network.value)))[0] == 200
    assert sorted(await webhooks.stored_texts(3)) == ["facebook", "telegram", "vk"]
    assert await webhooks.dead_letters() == 0


UNKNOWN_EVENTS: dict[Network, dict[str, Any]] = {
    Network.TELEGRAM: {"update_id": 90, "business_message_v9": {"text": "new in some Bot API"}},
    Network.VK: {"type": "wall_post_new", "group_id": VK_GROUP, "object": {"id": 5}},
    Network.FACEBOOK: {"object": "instagram", "entry": []},
}


async def test_an_unknown_event_type_is_acknowledged_stores_nothing_and_later_events_are_stored(
    webhooks: Webhooks,
) -> None:
    for network, event in UNKNOWN_EVENTS.items():
        assert (await webhooks.post(network, event))[0] == 200, network

    for seq, network in enumerate(NETWORKS, 1):
        assert (await webhooks.post(network, customer_event(network, seq, network.value)))[0] == 200
    assert sorted(await webhooks.stored_texts(3)) == ["facebook", "telegram", "vk"]


# What no redelivery can repair is acknowledged and skipped with a logged reason.
MALFORMED_EVENTS: dict[Network, dict[str, Any]] = {
    Network.TELEGRAM: customer_event(Network.TELEGRAM, 10**130, "an id no chat has"),
    Network.VK: {"type": "message_new", "group_id": VK_GROUP, "object": {"text": "no"}},
    Network.FACEBOOK: fb_payload(fb_event(sender={"id": ""}, message={"mid": "m"})),
}


async def test_a_malformed_event_of_a_known_type_never_stops_the_worker(
    webhooks: Webhooks, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        for network, event in MALFORMED_EVENTS.items():
            assert (await webhooks.post(network, event))[0] == 200, network
    assert sum("malformed" in record.getMessage() for record in caplog.records) == 3

    for seq, network in enumerate(NETWORKS, 1):
        assert (await webhooks.post(network, customer_event(network, seq, network.value)))[0] == 200
    assert sorted(await webhooks.stored_texts(3)) == ["facebook", "telegram", "vk"]


async def test_a_malformed_messenger_event_does_not_cost_the_others_of_its_post(
    webhooks: Webhooks,
) -> None:
    payload = fb_payload(
        fb_event(message={"mid": "before", "text": "first"}),
        fb_event(sender={"id": ""}, message={"mid": "bad", "text": "no sender"}),
        fb_event(message={"mid": "after", "text": "second"}),
    )

    assert (await webhooks.post(Network.FACEBOOK, payload))[0] == 200
    assert sorted(await webhooks.stored_texts(2)) == ["first", "second"]


async def test_a_body_over_the_request_limit_is_refused_with_413(webhooks: Webhooks) -> None:
    for network in NETWORKS:
        huge = customer_event(network, 1, "x" * MAX_REQUEST_BYTES)
        assert (await webhooks.post(network, huge))[0] == 413, network

    for seq, network in enumerate(NETWORKS, 1):
        assert (await webhooks.post(network, customer_event(network, seq, network.value)))[0] == 200
    assert sorted(await webhooks.stored_texts(3)) == ["facebook", "telegram", "vk"]


async def test_a_text_over_the_message_limit_is_stored_cut_to_it(webhooks: Webhooks) -> None:
    for seq, network in enumerate(NETWORKS, 1):
        event = customer_event(network, seq, network.value * 20_000)
        assert (await webhooks.post(network, event))[0] == 200

    texts = await webhooks.stored_texts(3)
    assert [len(text) for text in texts] == [MAX_TEXT_CHARS] * 3
    assert await webhooks.dead_letters() == 0


# a text frame past the frame limit, though short of what a file frame may hold
MAX_FRAME_TEXT = webchat_protocol.MAX_FRAME_BYTES + 1


async def test_a_refused_webchat_frame_gets_an_error_frame_and_the_socket_goes_on(
    webhooks: Webhooks,
) -> None:
    refused = [
        (as_frame({"type": "message", "id": "early-001", "text": "before hello"}), "hello_first"),
        ('{"type": "hello", "tok', "bad_json"),
        ("[" * 60_000, "bad_json"),
        (as_frame({"type": "typing"}), "unknown_type"),
        ("x" * (webchat_protocol.MAX_FILE_FRAME_BYTES + 1), "too_large"),
        (
            as_frame({"type": "message", "id": "big-0001", "text": "x" * MAX_FRAME_TEXT}),
            "too_large",
        ),
    ]
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(webhooks.url + webchat_channel.SOCKET_PATH) as socket,
    ):
        for frame, code in refused:
            await socket.send_str(frame)
            answer = await socket.receive_json(timeout=5)
            assert (answer["type"], answer["code"]) == ("error", code), frame[:30]
            assert answer["message"]

        await socket.send_str(as_frame({"type": "hello", "token": None, "language": "ru"}))
        assert (await socket.receive_json(timeout=5))["type"] == "welcome"
        too_long = {"type": "message", "id": "long-0001", "text": "я" * (MAX_TEXT_CHARS + 1)}
        await socket.send_str(as_frame(too_long))
        answer = await socket.receive_json(timeout=5)
        assert (answer["code"], answer["id"]) == ("too_long", "long-0001")
        await socket.send_str(as_frame({"type": "message", "id": "good-0001", "text": "webchat"}))
        assert (await socket.receive_json(timeout=5)) == {"type": "ack", "id": "good-0001"}

    assert await webhooks.stored_texts(1) == ["webchat"]
    assert await webhooks.dead_letters() == 0
