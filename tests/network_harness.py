"""The harness of the networks' end-to-end tests: the embedded product (store, in-process bus,
pipeline, sender, one agent) around one network's channel, driven by its real client library
against that network's emulator.

What differs between the networks is in an `EmulatedNetwork`: how a customer writes, sends a file
and presses a button, how the bot's messages are read back, how the network is made to refuse or
to rate-limit sends, what its webhook requests look like. `Bridge` is all the rest; it is opened
by `open_bridge`, for the contract over every network (test_network_contract.py) and for each
network's own tests (test_<network>_e2e.py).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Literal, Protocol, TypeVar

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.facebook import FacebookChannel
from bots.facebook.channel import WEBHOOK_PATH as FACEBOOK_WEBHOOK_PATH
from bots.instagram import InstagramChannel
from bots.instagram.channel import WEBHOOK_PATH as INSTAGRAM_WEBHOOK_PATH
from bots.telegram import TelegramChannel
from bots.telegram.channel import WEBHOOK_PATH as TELEGRAM_WEBHOOK_PATH
from bots.vk import VkChannel
from bots.vk.channel import WEBHOOK_PATH as VK_WEBHOOK_PATH
from bridge.bus.memory import MemoryBus
from bridge.channel import Channel, Receiver
from bridge.delivery.ratelimit import MemoryRateLimiter
from bridge.delivery.sender import RetryPolicy, Sender
from bridge.domain import DeliveryStatus, Network
from bridge.inbox.actions import reply_as_agent
from bridge.inbox.outgoing_files import AgentFile, reply_with_files
from bridge.pipeline.responder import Responder
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.kept_files import StoredFiles
from bridge.store.models import agents, conversations, messages
from emulators.facebook import SIGNATURE_HEADER, FacebookEmulator, PageMessage, sign
from emulators.faults import Fault, FaultKind
from emulators.instagram import InstagramEmulator
from emulators.telegram import SECRET_HEADER, TelegramEmulator
from emulators.telegram import BotMessage as TelegramMessage
from emulators.vk import BotMessage as VkMessage
from emulators.vk import VkEmulator

Receiving = Literal["polling", "webhook"]
"""How the product receives the customers' messages: it polls the network, or the network
pushes them to the webhook (registered with the network when the bridge opens)."""


@dataclass(frozen=True, slots=True)
class SentFile:
    """A file the customer received: shown as a `photo` or offered as a `document`."""

    kind: Literal["photo", "document"]
    name: str | None
    content: bytes


@dataclass(frozen=True, slots=True)
class Sent:
    """A message the bot sent, as the customer sees it: its text (a file's caption), its rows of
    buttons, each a (label, the data a press sends back), and the files it carries."""

    message_id: int | str
    text: str
    buttons: list[list[tuple[str, str]]]
    files: tuple[SentFile, ...] = ()


@dataclass(frozen=True, slots=True)
class WebhookRequest:
    body: bytes
    headers: dict[str, str]


class EmulatedChannel(Channel, Receiver, Protocol):
    async def close(self) -> None: ...


class Emulator(Protocol):
    app: web.Application


E = TypeVar("E", bound=Emulator)
C = TypeVar("C", bound=EmulatedChannel)


class EmulatedNetwork(abc.ABC, Generic[E, C]):
    """One network as its customers use it, emulated (`emulator`), and the channel the product
    talks to it with. Chats are numbers (a Messenger PSID is their decimal string)."""

    network: ClassVar[Network]
    receivers: ClassVar[tuple[Receiving, ...]]
    """The ways the product can receive from this network, the usual one first."""
    webhook_path: ClassVar[str]
    accepted: ClassVar[tuple[int, str]]
    """Our webhook's answer (status, body) to a genuine request."""
    refused_status: ClassVar[int]
    """Our webhook's status for a request that fails verification."""
    forgeries: ClassVar[tuple[str, ...]]
    """The names of the ways a request can fail verification (see `webhook_request`)."""
    refusal: ClassVar[str]
    """The delivery error of a send to a customer the network will not deliver to, for good."""
    storm_within_s: ClassVar[float] = 15.0
    """How long replies may take under `limit_every_other_send`."""

    emulator: E

    def __init__(self) -> None:
        """After a subclass has made its `emulator`."""
        self.api_url = ""
        self._api = TestServer(self.emulator.app, host="127.0.0.1")
        self._channel: C | None = None

    @property
    def channel(self) -> C:
        assert self._channel is not None, "the network is not started"
        return self._channel

    async def start(self, engine: AsyncEngine) -> None:
        """The emulator on a loopback port, and the channel against it."""
        await self._api.start_server()
        self.api_url = str(self._api.make_url("")).rstrip("/")
        self._channel = self.connect(engine)

    @abc.abstractmethod
    def connect(self, engine: AsyncEngine) -> C:
        """The channel against the emulator at `api_url`."""

    async def stop(self) -> None:
        await self._api.close()

    async def polling_started(self) -> None:
        """Returns once the poller receives what customers write from now on."""

    @abc.abstractmethod
    async def receive_by_webhook(self, url: str) -> None:
        """Tell the network to push the customers' messages to our webhook at `url`."""

    @abc.abstractmethod
    def customer(self, chat: int, language: str = "ru") -> None:
        """The customer's profile on the network (where it keeps one), in `language`."""

    @abc.abstractmethod
    def write(self, chat: int, text: str) -> None: ...

    @abc.abstractmethod
    def send_photo(self, chat: int, data: bytes) -> None: ...

    @abc.abstractmethod
    def send_document(self, chat: int, data: bytes, name: str, mime_type: str) -> None: ...

    @abc.abstractmethod
    def sent(self, chat: int) -> list[Sent]:
        """What the bot sent to the chat, oldest first."""

    @abc.abstractmethod
    async def wait_sent(self, chat: int, count: int, *, within: float = 5.0) -> list[Sent]:
        """What the bot sent to the chat, once it is at least `count` messages."""

    @abc.abstractmethod
    def press(self, chat: int, message: Sent, data: str) -> None:
        """The customer presses the button of `message` that sends `data`."""

    @abc.abstractmethod
    def refuse_sends_to(self, chat: int) -> None:
        """The network will not deliver to this customer any more (blocked, denied, gone)."""

    @abc.abstractmethod
    def limit_every_other_send(self) -> None:
        """From now on every second send is refused with the network's rate-limit error."""

    @abc.abstractmethod
    def fail_next_file_send(self) -> None:
        """The next call that sends a file fails as a network's passing trouble does."""

    @abc.abstractmethod
    def webhook_request(
        self, chat: int, text: str, *, attempt: int = 0, forgery: str | None = None
    ) -> WebhookRequest:
        """The network's push of message `text` in `chat` (one and the same message on every
        `attempt`), as the network signs it, or forged in the way named `forgery`."""


AnyNetwork = EmulatedNetwork[Any, Any]

JSON_BODY = {"Content-Type": "application/json"}


class EmulatedTelegram(EmulatedNetwork[TelegramEmulator, TelegramChannel]):
    network = Network.TELEGRAM
    receivers = ("polling", "webhook")
    webhook_path = TELEGRAM_WEBHOOK_PATH
    accepted = (200, "{}")
    refused_status = 401
    forgeries = ("forged", "missing")
    refusal = "Forbidden: bot was blocked by the user"
    storm_within_s = 30.0  # the 429s ask for a second's wait each

    TOKEN = "123456:ABC-emulator"
    SECRET = "s3cret-token_1"

    def __init__(self) -> None:
        self.emulator = TelegramEmulator([self.TOKEN], webhook_retry_delay=0.05)
        super().__init__()

    def connect(self, engine: AsyncEngine) -> TelegramChannel:
        return TelegramChannel(
            self.TOKEN,
            api_url=self.api_url,
            webhook_secret=self.SECRET,
            poll_timeout_s=1,
            files=StoredFiles(engine),
        )

    async def receive_by_webhook(self, url: str) -> None:
        await self.channel.bot.set_webhook(url, secret_token=self.SECRET)

    def customer(self, chat: int, language: str = "ru") -> None:
        self.emulator.customer(chat, first_name="Ivan", last_name="Petrov", language_code=language)

    def write(self, chat: int, text: str) -> None:
        self.emulator.write_text(chat, text)

    def send_photo(self, chat: int, data: bytes) -> None:
        self.emulator.write_photo(chat, data)

    def send_document(self, chat: int, data: bytes, name: str, mime_type: str) -> None:
        self.emulator.write_document(chat, data, file_name=name, mime_type=mime_type)

    def sent(self, chat: int) -> list[Sent]:
        return [self._seen(message) for message in self.emulator.bot_messages(chat)]

    async def wait_sent(self, chat: int, count: int, *, within: float = 5.0) -> list[Sent]:
        await self.emulator.wait_for_bot_messages(chat, count, within=within)
        return self.sent(chat)

    def _seen(self, message: TelegramMessage) -> Sent:
        keyboard = (message.current_reply_markup or {}).get("inline_keyboard", [])
        buttons = [[(b["text"], b["callback_data"]) for b in row] for row in keyboard]
        files: tuple[SentFile, ...] = ()
        if message.media is not None and message.file_id is not None:
            kind, body = message.media
            name = None if kind == "photo" else body.get("file_name")
            content = self.emulator.sent_file(message.file_id)
            files = (SentFile("photo" if kind == "photo" else "document", name, content),)
        return Sent(message.message_id, message.current_text, buttons, files)

    def press(self, chat: int, message: Sent, data: str) -> None:
        self.emulator.press_button(chat, int(message.message_id), data)

    def refuse_sends_to(self, chat: int) -> None:
        self.emulator.block_bot(chat)

    def limit_every_other_send(self) -> None:
        self.emulator.faults.add(
            Fault(FaultKind.RATE_LIMIT, retry_after=1), methods="sendMessage", every=2
        )

    def fail_next_file_send(self) -> None:
        self.emulator.faults.add(
            Fault(FaultKind.SERVER_ERROR), methods=("sendphoto", "senddocument"), times=1
        )

    def webhook_request(
        self, chat: int, text: str, *, attempt: int = 0, forgery: str | None = None
    ) -> WebhookRequest:
        user = {"id": chat, "is_bot": False, "first_name": "Ivan"}
        message = {
            "message_id": 7,
            "date": 1_700_000_000,
            "chat": {"id": chat, "type": "private", "first_name": "Ivan"},
            "from": user,
            "text": text,
        }
        update = {"update_id": 1, "message": message}
        secret = {None: self.SECRET, "forged": "forged", "missing": None}[forgery]
        headers = JSON_BODY | ({SECRET_HEADER: secret} if secret is not None else {})
        return WebhookRequest(json.dumps(update).encode(), headers)


class EmulatedVk(EmulatedNetwork[VkEmulator, VkChannel]):
    network = Network.VK
    receivers = ("polling", "webhook")
    webhook_path = VK_WEBHOOK_PATH
    accepted = (200, "ok")
    refused_status = 403
    forgeries = ("forged", "missing")
    refusal = "VK error 901: Can't send messages for users without permission"

    TOKEN = "vk-test-token"
    GROUP = 77
    SECRET = "callback-secret"
    CONFIRMATION = "a1b2c3"
    LANG_IDS: ClassVar[dict[str, int]] = {"ru": 0, "en": 3}  # client_info.lang_id

    def __init__(self) -> None:
        self.emulator = VkEmulator(
            group_id=self.GROUP, token=self.TOKEN, confirmation=self.CONFIRMATION
        )
        super().__init__()

    def connect(self, engine: AsyncEngine) -> VkChannel:
        self.emulator.files.url = self.api_url
        return VkChannel(
            self.TOKEN,
            self.GROUP,
            api_url=self.api_url,
            callback_secret=self.SECRET,
            confirmation=self.CONFIRMATION,
            poll_wait_s=1,
            files=StoredFiles(engine),
        )

    async def polling_started(self) -> None:
        for _ in range(100):  # events before the first ts are not the poller's
            if self.channel.key is not None:
                return
            await asyncio.sleep(0.02)

    async def receive_by_webhook(self, url: str) -> None:
        await self.emulator.add_callback_server(url, secret=self.SECRET)

    def customer(self, chat: int, language: str = "ru") -> None:
        lang_id = self.LANG_IDS[language]
        self.emulator.customer(chat, first_name="Иван", last_name="Петров", lang_id=lang_id)

    def write(self, chat: int, text: str) -> None:
        self.emulator.write(chat, text)

    def send_photo(self, chat: int, data: bytes) -> None:
        # VK offers the photo in several sizes, each at its own address: only the largest is it
        self.emulator.write_photo(chat, data)

    def send_document(self, chat: int, data: bytes, name: str, mime_type: str) -> None:
        self.emulator.write_document(chat, data, name)  # VK keeps no type, only the title

    def sent(self, chat: int) -> list[Sent]:
        return [self._seen(message) for message in self.emulator.bot_messages(chat)]

    async def wait_sent(self, chat: int, count: int, *, within: float = 5.0) -> list[Sent]:
        await self.emulator.wait_for_bot_messages(chat, count, within=within)
        return self.sent(chat)

    def _seen(self, message: VkMessage) -> Sent:
        rows = (message.keyboard or {}).get("buttons", [])
        buttons = [[(b["action"]["label"], b["action"]["payload"]) for b in row] for row in rows]
        files = []
        for item in message.attachments:
            if item["type"] == "photo":
                url, name, kind = item["photo"]["sizes"][-1]["url"], None, "photo"
            else:
                url, name, kind = item["doc"]["url"], item["doc"]["title"], "document"
            files.append(SentFile(kind, name, self.emulator.files.content(url) or b""))
        return Sent(message.id, message.text, buttons, tuple(files))

    def press(self, chat: int, message: Sent, data: str) -> None:
        self.emulator.press_button(chat, int(message.message_id), data)

    def refuse_sends_to(self, chat: int) -> None:
        self.emulator.deny_messages(chat)

    def limit_every_other_send(self) -> None:
        self.emulator.faults.add(Fault(FaultKind.RATE_LIMIT), methods="messages.send", every=2)

    def fail_next_file_send(self) -> None:
        self.emulator.fail_next(10, methods=["photos.saveMessagesPhoto", "docs.save"])

    def webhook_request(
        self, chat: int, text: str, *, attempt: int = 0, forgery: str | None = None
    ) -> WebhookRequest:
        message = {
            "id": 1234,
            "date": 1_700_000_000,
            "peer_id": chat,
            "from_id": chat,
            "text": text,
            "conversation_message_id": 1,
            "out": 0,
            "version": 1,
        }
        event: dict[str, object] = {
            "type": "message_new",
            "object": {"message": message, "client_info": {"lang_id": 3}},
            "group_id": self.GROUP,
            "event_id": "e" * 40,
            "v": "5.199",
        }
        secret = {None: self.SECRET, "forged": "forged", "missing": None}[forgery]
        if secret is not None:
            event["secret"] = secret
        headers = JSON_BODY | ({"X-Retry-Counter": str(attempt)} if attempt else {})
        return WebhookRequest(json.dumps(event).encode(), headers)


class EmulatedFacebook(EmulatedNetwork[FacebookEmulator, FacebookChannel]):
    network = Network.FACEBOOK
    receivers = ("webhook",)  # Messenger only pushes
    webhook_path = FACEBOOK_WEBHOOK_PATH
    accepted = (200, "EVENT_RECEIVED")
    refused_status = 403
    forgeries = ("other-body", "wrong-secret", "sha1-only", "empty", "missing")
    refusal = "Messenger error 551/1545041: (#551) This person isn't available right now."

    TOKEN = "EAAB-e2e-page-token"
    APP_SECRET = "e2e-app-secret"
    VERIFY = "e2e-verify-token"
    emulator_class: ClassVar[type[FacebookEmulator]] = FacebookEmulator
    channel_class: ClassVar[type[FacebookChannel]] = FacebookChannel

    def __init__(self) -> None:
        self.emulator = self.emulator_class(
            self.TOKEN, app_secret=self.APP_SECRET, webhook_retry_delay=0.05
        )
        super().__init__()

    def connect(self, engine: AsyncEngine) -> FacebookChannel:
        self.emulator.files.url = self.api_url
        return self.channel_class(
            self.TOKEN,
            app_secret=self.APP_SECRET,
            verify_token=self.VERIFY,
            api_url=self.api_url,
            files=StoredFiles(engine),
        )

    async def receive_by_webhook(self, url: str) -> None:
        await self.emulator.subscribe(url, self.VERIFY)

    def customer(self, chat: int, language: str = "ru") -> None:
        """Messenger tells a page nothing about the person before they write."""

    def write(self, chat: int, text: str) -> None:
        self.emulator.write_text(str(chat), text)

    def send_photo(self, chat: int, data: bytes) -> None:
        self.emulator.send_file(str(chat), data)

    def send_document(self, chat: int, data: bytes, name: str, mime_type: str) -> None:
        # Messenger gives a file's address and kind, no name
        self.emulator.send_file(str(chat), data, kind="file", content_type=mime_type)

    def sent(self, chat: int) -> list[Sent]:
        return [self._seen(message) for message in self.emulator.page_messages(str(chat))]

    async def wait_sent(self, chat: int, count: int, *, within: float = 5.0) -> list[Sent]:
        await self.emulator.wait_for_page_messages(str(chat), count, within=within)
        return self.sent(chat)

    def _seen(self, message: PageMessage) -> Sent:
        replies = message.quick_replies or []
        buttons = [[(q["title"], q["payload"]) for q in replies]] if replies else []
        files: tuple[SentFile, ...] = ()
        if (attachment := message.attachment) is not None:
            content = self.emulator.files.content(attachment["payload"]["url"]) or b""
            kind: Literal["photo", "document"] = (
                "photo" if attachment["type"] == "image" else "document"
            )
            files = (SentFile(kind, attachment.get("name"), content),)
        return Sent(message.message_id, message.text, buttons, files)

    def press(self, chat: int, message: Sent, data: str) -> None:
        self.emulator.press_quick_reply(str(chat), data)

    def refuse_sends_to(self, chat: int) -> None:
        self.emulator.set_unavailable(str(chat))

    def limit_every_other_send(self) -> None:
        self.emulator.faults.add(Fault(FaultKind.RATE_LIMIT), methods="messages", every=2)

    def fail_next_file_send(self) -> None:
        # the first send of a reply with files is its first file (no text) in these tests
        self.emulator.faults.add(Fault(FaultKind.SERVER_ERROR), methods="messages", times=1)

    webhook_object: ClassVar[str] = "page"

    def webhook_request(
        self, chat: int, text: str, *, attempt: int = 0, forgery: str | None = None
    ) -> WebhookRequest:
        account = self.emulator.account_id
        event = {
            "sender": {"id": str(chat)},
            "recipient": {"id": account},
            "timestamp": 1_700_000_000_000,
            "message": {"mid": f"m_{chat}", "text": text},
        }
        entry = {"id": account, "time": 1_700_000_000_000, "messaging": [event]}
        body = json.dumps({"object": self.webhook_object, "entry": [entry]}).encode()
        signature = {
            None: sign(body, self.APP_SECRET),
            "other-body": sign(b"another body", self.APP_SECRET),
            "wrong-secret": sign(body, "wrong secret"),
            "sha1-only": "sha1=0000",
            "empty": "sha256=",
            "missing": None,
        }[forgery]
        headers = JSON_BODY | ({SIGNATURE_HEADER: signature} if signature is not None else {})
        return WebhookRequest(body, headers)


class EmulatedInstagram(EmulatedFacebook):
    """Instagram direct messages: the Messenger Platform with Instagram's object and limits."""

    network = Network.INSTAGRAM
    webhook_path = INSTAGRAM_WEBHOOK_PATH
    refusal = "Instagram error 551/1545041: (#551) This person isn't available right now."
    webhook_object = "instagram"

    TOKEN = "EAAB-e2e-instagram-page-token"
    APP_SECRET = "e2e-instagram-app-secret"
    VERIFY = "e2e-instagram-verify-token"
    emulator_class = InstagramEmulator
    channel_class = InstagramChannel


NETWORKS: dict[str, type[AnyNetwork]] = {
    "telegram": EmulatedTelegram,
    "vk": EmulatedVk,
    "facebook": EmulatedFacebook,
    "instagram": EmulatedInstagram,
}

N = TypeVar("N", bound=AnyNetwork)


@dataclass
class Bridge(Generic[N]):
    """The embedded product around one network's channel, and the emulated network."""

    net: N
    engine: AsyncEngine
    bus: MemoryBus
    sender: Sender
    webhook_url: str
    agent_id: int

    async def rows(self, query: sa.Select[Any]) -> list[tuple[Any, ...]]:
        async with self.engine.connect() as conn:
            return [tuple(row) for row in (await conn.execute(query)).all()]

    async def stored_count(self) -> int:
        query = sa.select(sa.func.count()).where(messages.c.direction == "inbound")
        return int((await self.rows(query))[0][0])

    async def wait_stored(self, count: int) -> None:
        for _ in range(200):
            if await self.stored_count() >= count:
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

    async def stored_attachments(self) -> list[dict[str, Any]]:
        """The attachments of the first customer message, once it is stored."""
        await self.wait_stored(1)
        rows = await self.rows(
            sa.select(messages.c.attachments).where(messages.c.direction == "inbound")
        )
        return list(rows[0][0] or [])

    async def conversation_id(self, chat: int) -> int:
        found = await self.rows(
            sa.select(conversations.c.id).where(conversations.c.chat_id == str(chat))
        )
        return int(found[0][0])

    async def statuses(self) -> list[tuple[object, ...]]:
        query = (
            sa.select(messages.c.text, messages.c.delivery_status, messages.c.delivery_error)
            .where(messages.c.direction == "outbound")
            .order_by(messages.c.id)
        )
        return await self.rows(query)

    async def settled_statuses(self) -> list[tuple[object, ...]]:
        """Outbound statuses once no message is still queued."""
        for _ in range(200):
            statuses = await self.statuses()
            if all(status is not DeliveryStatus.QUEUED for _, status, _ in statuses):
                return statuses
            await asyncio.sleep(0.05)
        raise AssertionError(f"messages still queued: {statuses}")

    async def customer_writes(self, chat: int, text: str) -> Sent:
        """The customer writes; returns the bot's answer (the hand-off note, or an auto answer)
        once the message is stored and the answer reached the customer."""
        stored, sent = await self.stored_count(), len(self.net.sent(chat))
        self.net.write(chat, text)
        await self.wait_stored(stored + 1)
        return (await self.net.wait_sent(chat, sent + 1))[-1]

    async def agent_replies(self, chat: int, text: str) -> None:
        conversation_id = await self.conversation_id(chat)
        await reply_as_agent(self.engine, self.bus, conversation_id, self.agent_id, text)

    async def agent_sends(self, chat: int, text: str, *files: AgentFile) -> None:
        """The agent's reply with files, as the inbox sends it (checked against the network's
        limits, kept, then queued)."""
        conversation_id = await self.conversation_id(chat)
        limits = {self.net.network: self.net.channel.file_limits}
        await reply_with_files(
            self.engine, self.bus, conversation_id, self.agent_id, text, files, limits
        )


@contextlib.asynccontextmanager
async def open_bridge(
    net: N,
    engine: AsyncEngine,
    settings: Settings,
    responder: Responder | None,
    receiving: Receiving | None,
) -> AsyncIterator[Bridge[N]]:
    """The product around `net`'s channel, receiving as `receiving` says (None: neither polling
    nor a registered webhook; a test posts to the webhook, or registers it, itself)."""
    await net.start(engine)
    bus = MemoryBus(settings.inbound_shards)
    routes = web.Application()
    routes.add_routes(net.channel.webhook_routes(bus.publish_inbound))
    hook = TestServer(routes, host="127.0.0.1")
    await hook.start_server()
    webhook_url = str(hook.make_url(net.webhook_path))
    sender = Sender(engine, bus, net.channel, MemoryRateLimiter(), RetryPolicy(base_delay_s=0.05))
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
            bus.consume_outbound(net.network, "sender", sender.handle, batch_size=50, stop=stop)
        ),
    ]
    if receiving == "polling":
        tasks.append(asyncio.ensure_future(net.channel.poll(bus.publish_inbound, stop)))
        await net.polling_started()
    elif receiving == "webhook":
        await net.receive_by_webhook(webhook_url)
    try:
        yield Bridge(net, engine, bus, sender, webhook_url, agent_id)
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await net.channel.close()
        await hook.close()
        await net.stop()


def webhook_mode(request: pytest.FixtureRequest, net: AnyNetwork) -> Receiving:
    """A test marked `webhook` receives by webhook; any other the network's usual way."""
    return "webhook" if request.node.get_closest_marker("webhook") else net.receivers[0]


async def post(request: WebhookRequest, url: str) -> tuple[int, str]:
    """Our webhook's answer (status, body) to `request`."""
    async with aiohttp.ClientSession() as http:
        async with http.post(url, data=request.body, headers=request.headers) as response:
            return response.status, await response.text()
