"""A local emulator of the VK API for community bots: methods, Bots Long Poll and Callback API.

Serves `/method/{name}` like api.vk.com / api.vk.ru (GET or POST, query or form parameters,
`access_token` and `v` required), and the Bots Long Poll server at `/lp/{group_id}`, so vk_api
pointed at it through its requests session (`SB_VK_API_URL`) works unchanged. Facts and their
sources: docs/networks.md section 2.

What it does as VK documents:
* every answer is HTTP 200, `{"response": ...}` or `{"error": {"error_code", "error_msg",
  "request_params"}}` (vk_api parses JSON only on 2xx, so API errors must be 200);
* customers' photos (sizes `s`, `x`, `w`, each at its own address) and documents, served from
  `/_files/...` (`files`, a emulators.files.FileHost), and `messages.getById` for the
  community's messages;
* the community's photos and documents in messages: upload addresses, the upload server and the
  saves (emulators.vk_uploads), then `attachment` in messages.send;
* codes 5 (bad token), 6 / 9 / 10 (injected), 100 (bad parameter), 901 (the user has not allowed
  messages, or denied them), 911 (bad keyboard), 914 (text over 9000 characters);
* the community's wall posts, photos, videos, market items and board topics, users' comments
  under them and the community's replies (emulators.vk_wall); `message_allow` / `message_deny`
  when a user allows or denies the community's messages;
* `messages.send` deduplicates by `random_id` per community: a repeat is not delivered again;
* Bots Long Poll `a_check` held up to `wait` (≤ 90) seconds, `failed` 1 (ts outdated; a new
  `ts` is given), 2 (key expired) and 3 (information lost) on demand;
* Callback API: the confirmation handshake, then one POST per event with the configured
  `secret`, in order; any answer but HTTP 200 with body `ok` is retried with `X-Retry-Counter`.

Unconfirmed in the reference and chosen here: a repeated `random_id` answers the first
message's id; `random_id` is required; the callback retry schedule (doubling from
`callback_retry_delay`, at most `callback_retries` times); `message_event.payload` is an object;
`users.get`'s `lang` switches to the Latin names given to `customer`.

A test (or, over `/_emulator/...`, another process) plays the customers: writes as user X,
edits, presses a callback button, comments under a post, denies messages, and reads what the
community sent with the emulator's own receive time of each send. `faults` injects error 6
(RATE_LIMIT), error 10 (SERVER_ERROR), slow answers and dropped connections; `fail_next` any
VK error code (e.g. 9).

Run standalone: `python -m emulators.vk --port 8082 --group-id 1 --token vk-emulator`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from emulators.control import PREFIX, customer_route, emulator_app, json_body
from emulators.faults import (
    Fault,
    FaultKind,
    FaultPlan,
    NextErrors,
    fault_after_call,
    fault_before_call,
)
from emulators.files import FileHost, uploaded
from emulators.pushes import Backoff, PushClient, stop
from emulators.signals import Signal
from emulators.standalone import options, serve
from emulators.vk_uploads import MAX_DOCUMENT_BYTES, AttachmentError, VkUploads
from emulators.vk_wall import Comment, Kind, Place, VkWall, WallError, kind_of

log = logging.getLogger(__name__)

JSON = dict[str, Any]

DEFAULT_TOKEN = "vk-emulator-community-token"
DEFAULT_GROUP_ID = 1
API_VERSION = "5.199"
MAX_MESSAGE_CHARS = 9000
MAX_LONG_POLL_WAIT = 90
MAX_PAYLOAD_CHARS = 255
CHAT_PEER_BASE = 2_000_000_000
KEYBOARD_ACTIONS = frozenset(
    {"text", "callback", "open_link", "location", "vkpay", "open_app", "open_photo"}
)
KEYBOARD_COLOURS = frozenset({"default", "secondary", "positive", "negative", "primary"})
# VKS errors.json wording (VKCOM/vk-api-schema@08576fa)
ERROR_TEXTS = {
    1: "Unknown error occurred",
    3: "Unknown method passed",
    5: "User authorization failed",
    6: "Too many requests per second",
    8: "Invalid request",
    9: "Flood control",
    10: "Internal server error",
    100: "One of the parameters specified was missing or invalid",
    900: "Can't send messages for users from blacklist",
    901: "Can't send messages for users without permission",
    902: "Can't send messages to this user due to their privacy settings",
    911: "Keyboard format is invalid",
    914: "Message is too long",
    932: "Your community can't interact with this peer",
}


class VkApiError(Exception):
    def __init__(self, code: int, detail: str | None = None) -> None:
        text = ERROR_TEXTS.get(code, ERROR_TEXTS[1])
        super().__init__(f"{text}: {detail}" if detail else text)
        self.code = code
        self.message = str(self)

    def response(self, method: str, params: JSON) -> web.Response:
        # VK echoes the call's parameters, never the token
        echoed = [{"key": "method", "value": method}, {"key": "oauth", "value": "1"}]
        echoed += [{"key": k, "value": str(v)} for k, v in params.items() if k != "access_token"]
        body = {"error_code": self.code, "error_msg": self.message, "request_params": echoed}
        return web.json_response({"error": body})


@dataclass(slots=True)
class Customer:
    id: int
    first_name: str
    last_name: str
    lang_id: int = 0
    """VK interface language of the customer's app (client_info.lang_id: 0 ru, 3 en)."""
    latin_name: tuple[str, str] | None = None
    """(first, last) as users.get answers with lang=en."""
    allows_messages: bool = False
    """Writing to the community allows it to answer; `deny_messages` takes that back."""


@dataclass(slots=True)
class BotMessage:
    """One message the community sent, as the customer sees it, with the emulator's receive time."""

    id: int
    peer_id: int
    text: str
    keyboard: JSON | None
    random_id: int
    date: int
    received_at: float
    attachments: list[JSON] = field(default_factory=list)  # {"type": "photo", "photo": {...}}

    def as_dict(self) -> JSON:
        return {
            "id": self.id,
            "peer_id": self.peer_id,
            "text": self.text,
            "keyboard": self.keyboard,
            "random_id": self.random_id,
            "date": self.date,
            "received_at": self.received_at,
            "attachments": self.attachments,
        }


@dataclass(slots=True)
class ButtonEvent:
    """A callback-button press and, once the community answered it, its event_data."""

    event_id: str
    user_id: int
    payload: Any
    pressed_at: float
    answered: bool = False
    answer: JSON | None = None

    def as_dict(self) -> JSON:
        return {
            "event_id": self.event_id,
            "user_id": self.user_id,
            "payload": self.payload,
            "pressed_at": self.pressed_at,
            "answered": self.answered,
            "answer": self.answer,
        }


@dataclass(slots=True)
class _CallbackServer:
    url: str
    secret: str | None
    queue: asyncio.Queue[JSON] = field(default_factory=asyncio.Queue)
    task: asyncio.Task[None] | None = None


_Method = Callable[[JSON, web.Request], Awaitable[Any]]


class VkEmulator:
    """State of one emulated community; `app` is the aiohttp app."""

    def __init__(
        self,
        *,
        group_id: int = DEFAULT_GROUP_ID,
        token: str = DEFAULT_TOKEN,
        confirmation: str = "emulator-confirm",
        seed: int = 0,
        random_id_window_s: float | None = None,
        callback_retry_delay: float = 1.0,
        callback_retries: int = 5,
        files_url: str | None = None,
        first_message_id: int | None = None,
    ) -> None:
        """`first_message_id`: where message ids start (by default somewhere random, from the
        seed); a product that keeps what it saw needs them not to repeat across restarts."""
        self.group_id = group_id
        self.files = FileHost(files_url)
        self.token = token
        self.confirmation = confirmation
        self.faults = FaultPlan(seed)
        self._rng = random.Random(seed)
        self._random_id_window_s = random_id_window_s
        self._callback_retry_delay = callback_retry_delay
        self._callback_retries = callback_retries
        self._customers: dict[int, Customer] = {}
        # VK numbers a community's messages in one sequence, both directions
        start = self._rng.randint(10**4, 10**5) if first_message_id is None else first_message_id
        self._message_ids = itertools.count(start)
        self._customer_messages: dict[int, JSON] = {}
        self._sent: list[BotMessage] = []
        self._by_random_id: dict[int, BotMessage] = {}
        self._button_events: dict[str, ButtonEvent] = {}
        self._next_errors: NextErrors[VkApiError] = NextErrors()
        # long poll: event number n is history[n - first_ts]
        self._key = self._new_key()
        self._first_ts = self._rng.randint(1, 1000)
        self._history: list[JSON] = []
        self._pending_failure: int | None = None
        self._shutting_down = False
        self._new_event = Signal()
        self._bot_sent = Signal()
        self._callbacks: list[_CallbackServer] = []
        self._client = PushClient(timeout=10)
        self.uploads = VkUploads(group_id, self.files, self._rng)
        # a restarted sandbox must not number its posts and comments as the last run did
        self.wall = VkWall(group_id, self._add_event, start)
        self._methods: dict[str, _Method] = {
            **self.uploads.methods(),
            **self.wall.methods(),
            "groups.getLongPollServer": self._get_long_poll_server,
            "groups.getCallbackConfirmationCode": self._get_confirmation_code,
            "messages.send": self._send,
            "messages.sendMessageEventAnswer": self._send_event_answer,
            "users.get": self._users_get,
            "messages.getById": self._get_by_id,
        }
        self.app = self._build_app()

    # ---- the customer side (tests and the sandbox) -------------------------------------------

    def customer(
        self,
        user_id: int,
        *,
        first_name: str,
        last_name: str = "",
        lang_id: int = 0,
        latin_name: tuple[str, str] | None = None,
    ) -> Customer:
        """Create or update the VK profile of user `user_id`."""
        if not 0 < user_id < CHAT_PEER_BASE:
            raise ValueError("VK user ids are positive and below 2000000000")
        known = self._customers.get(user_id)
        self._customers[user_id] = Customer(
            user_id,
            first_name,
            last_name,
            lang_id,
            latin_name,
            allows_messages=known.allows_messages if known else False,
        )
        return self._customers[user_id]

    def write(
        self,
        user_id: int,
        text: str,
        *,
        payload: str | None = None,
        attachments: Sequence[JSON] = (),
    ) -> JSON:
        """User `user_id` writes to the community; returns the message object it will receive."""
        customer = self._customer(user_id)
        if not text.strip() and not attachments:
            raise ValueError("VK does not send an empty message")
        customer.allows_messages = True
        message: JSON = {
            "id": next(self._message_ids),
            "date": int(time.time()),
            "peer_id": user_id,
            "from_id": user_id,
            "text": text,
            "conversation_message_id": len(self._customer_messages) + 1,
            "out": 0,
            "version": 1,
            "attachments": list(attachments),
            "fwd_messages": [],
            "important": False,
            "is_hidden": False,
        }
        if payload is not None:
            message["payload"] = payload
        self._customer_messages[message["id"]] = message
        client_info = {
            "button_actions": ["text", "vkpay", "open_app", "location", "open_link", "callback"],
            "keyboard": True,
            "inline_keyboard": True,
            "carousel": True,
            "lang_id": customer.lang_id,
        }
        self._add_event("message_new", {"message": dict(message), "client_info": client_info})
        return dict(message)

    def write_photo(self, user_id: int, data: bytes, *, text: str = "") -> JSON:
        """User `user_id` sends a photo: VK gives its sizes, each at an address of its own (the
        largest, `w` here, holds `data`; the smaller ones are other images)."""
        photo_id = next(self._message_ids)
        sizes = [
            {
                "type": kind,
                "url": self.files.add(data if kind == "w" else kind.encode(), "image/jpeg"),
                "width": width,
                "height": height,
            }
            for kind, width, height in (("s", 75, 56), ("x", 604, 453), ("w", 2560, 1920))
        ]
        photo = {
            "id": photo_id,
            "album_id": -3,  # the album VK keeps photos sent in messages in
            "owner_id": user_id,
            "access_key": self._new_key()[:18],
            "date": int(time.time()),
            "sizes": sizes,
            "text": "",
        }
        return self.write(user_id, text, attachments=[{"type": "photo", "photo": photo}])

    def write_document(self, user_id: int, data: bytes, title: str, *, text: str = "") -> JSON:
        """User `user_id` sends a file as a VK document."""
        extension = title.rsplit(".", 1)[-1].lower() if "." in title else ""
        doc = {
            "id": next(self._message_ids),
            "owner_id": user_id,
            "title": title,
            "size": len(data),
            "ext": extension,
            "url": self.files.add(data, "application/octet-stream"),
            "date": int(time.time()),
            "type": 8,  # "unknown" in VK's document types
            "access_key": self._new_key()[:18],
        }
        return self.write(user_id, text, attachments=[{"type": "doc", "doc": doc}])

    def edit(self, user_id: int, message_id: int, text: str) -> JSON:
        """User `user_id` edits their message; message_edit carries the message object itself."""
        message = self._customer_messages.get(message_id)
        if message is None or message["from_id"] != user_id:
            raise KeyError(f"message {message_id} of user {user_id}")
        message["text"] = text
        message["version"] += 1
        message["update_time"] = int(time.time())
        self._add_event("message_edit", dict(message))
        return dict(message)

    def press_button(self, user_id: int, message_id: int, payload: Any) -> str:
        """User `user_id` presses a callback button under the community's message; the event id."""
        sent = next((m for m in self._sent if m.id == message_id and m.peer_id == user_id), None)
        if sent is None:
            raise KeyError(f"community message {message_id} to user {user_id}")
        self._customer(user_id)
        event_id = f"{self._rng.getrandbits(48):012x}"
        self._button_events[event_id] = ButtonEvent(event_id, user_id, payload, time.time())
        self._add_event(
            "message_event",
            {
                "user_id": user_id,
                "peer_id": user_id,
                "event_id": event_id,
                "payload": payload,
                "conversation_message_id": sent.id,
            },
        )
        return event_id

    def deny_messages(self, user_id: int) -> None:
        """The user forbids the community's messages: message_deny."""
        self._customer(user_id).allows_messages = False
        self._add_event("message_deny", {"user_id": user_id})

    def allow_messages(self, user_id: int) -> None:
        """The user allows the community's messages (its "allow messages" button):
        message_allow, whose `key` is the button's optional parameter, empty here."""
        self._customer(user_id).allows_messages = True
        self._add_event("message_allow", {"user_id": user_id, "key": ""})

    def post(self, text: str, *, kind: Kind = "wall") -> Place:
        """The community publishes a wall post (or a photo, video, market item or board topic:
        `kind` photo, video, market, topic) that users may comment on."""
        return self.wall.add_place(text, kind)

    def comment(
        self,
        user_id: int,
        item_id: int,
        text: str,
        *,
        kind: Kind = "wall",
        reply_to: int | None = None,
    ) -> Comment:
        """User `user_id` comments under a post (or photo, ...), perhaps answering a comment."""
        self._customer(user_id)
        if not text.strip():
            raise ValueError("VK does not post an empty comment")
        try:
            return self.wall.comment(user_id, item_id, text, kind=kind, reply_to=reply_to)
        except WallError as exc:
            raise KeyError(str(exc)) from None

    def community_comments(self) -> list[Comment]:
        return self.wall.community_comments()

    async def wait_for_community_comments(
        self, count: int, *, within: float = 5.0
    ) -> list[Comment]:
        """Wait until the community has posted at least `count` comments."""
        await self._new_event.wait_until(
            lambda: len(self.wall.community_comments()) >= count, within=within
        )
        return self.wall.community_comments()

    def bot_messages(self, user_id: int) -> list[BotMessage]:
        return [m for m in self._sent if m.peer_id == user_id]

    def sent_messages(self) -> list[BotMessage]:
        return list(self._sent)

    def button_event(self, event_id: str) -> ButtonEvent:
        return self._button_events[event_id]

    async def wait_for_bot_messages(
        self, user_id: int, count: int, *, within: float = 5.0
    ) -> list[BotMessage]:
        """Wait until the community has sent at least `count` messages to user `user_id`."""
        await self._bot_sent.wait_until(
            lambda: len(self.bot_messages(user_id)) >= count, within=within
        )
        return self.bot_messages(user_id)

    def fail_next(self, code: int, *, methods: Sequence[str] | None = None, times: int = 1) -> None:
        """Answer the next `times` calls (of `methods`, or any) with VK error `code` (e.g. 9)."""
        self._next_errors.add(VkApiError(code), methods=methods, times=times)

    def fail_long_poll(self, failed: int) -> None:
        """The next a_check answers `failed` 1 (ts outdated), 2 (key expired) or 3 (info lost)."""
        if failed not in (1, 2, 3):
            raise ValueError("failed is 1, 2 or 3")
        self._pending_failure = failed
        self._new_event.fire()

    # ---- Callback API -------------------------------------------------------------------------

    async def confirm_callback_server(self, url: str) -> bool:
        """The confirmation handshake: True when `url` answered this community's string."""
        body = {"type": "confirmation", "group_id": self.group_id}
        async with self._client.session().post(url, json=body) as response:
            return response.status == 200 and (await response.text()) == self.confirmation

    async def add_callback_server(self, url: str, *, secret: str | None) -> None:
        """Confirm `url` and push every later event to it, as the community settings do."""
        if not await self.confirm_callback_server(url):
            raise ValueError(f"{url} did not answer the confirmation string")
        server = _CallbackServer(url, secret)
        server.task = asyncio.create_task(self._push_events(server))
        self._callbacks.append(server)

    async def _push_events(self, server: _CallbackServer) -> None:
        while True:
            event = await server.queue.get()
            body = {**event, "secret": server.secret} if server.secret is not None else event
            backoff = Backoff(self._callback_retry_delay)
            for attempt in range(self._callback_retries + 1):
                headers = {"X-Retry-Counter": str(attempt)} if attempt else {}
                try:
                    session = self._client.session()
                    async with session.post(server.url, json=body, headers=headers) as reply:
                        if reply.status == 200 and (await reply.text()) == "ok":
                            break
                        log.info("callback %s answered %d", server.url, reply.status)
                except (aiohttp.ClientError, TimeoutError) as exc:
                    log.info("callback %s: %r", server.url, exc)
                await backoff.wait()
            else:
                log.warning("callback %s: event %s given up", server.url, event["event_id"])

    # ---- events ---------------------------------------------------------------------------------

    def _add_event(self, kind: str, obj: JSON) -> None:
        event = {
            "type": kind,
            "object": obj,
            "group_id": self.group_id,
            "event_id": f"{self._rng.getrandbits(160):040x}",
            "v": API_VERSION,
        }
        self._history.append(event)
        for server in self._callbacks:
            server.queue.put_nowait(event)
        self._new_event.fire()

    @property
    def _next_ts(self) -> int:
        return self._first_ts + len(self._history)

    def _customer(self, user_id: int) -> Customer:
        customer = self._customers.get(user_id)
        if customer is None:
            customer = self.customer(user_id, first_name=f"User{user_id}")
        return customer

    def _new_key(self) -> str:
        return f"{self._rng.getrandbits(160):040x}"

    # ---- methods --------------------------------------------------------------------------------

    async def _get_long_poll_server(self, params: JSON, request: web.Request) -> JSON:
        if _int(params, "group_id") != self.group_id:
            raise VkApiError(100, "group_id is undefined")
        server = request.url.origin().join(request.app.router["long_poll"].url_for())
        return {"key": self._key, "server": str(server), "ts": str(self._next_ts)}

    async def _get_confirmation_code(self, params: JSON, _request: web.Request) -> JSON:
        if _int(params, "group_id") != self.group_id:
            raise VkApiError(100, "group_id is undefined")
        return {"code": self.confirmation}

    async def _send(self, params: JSON, _request: web.Request) -> int:
        peer_id = _int(params, "peer_id" if "peer_id" in params else "user_id")
        random_id = _int(params, "random_id")
        message = str(params.get("message", ""))
        attachments = self.uploads.attachments(str(params.get("attachment", "")))
        if not message and not attachments:
            raise VkApiError(100, "message is empty or invalid")
        if len(message) > MAX_MESSAGE_CHARS:
            raise VkApiError(914)
        keyboard = _keyboard(params.get("keyboard"))
        repeat = self._by_random_id.get(random_id)
        now = time.time()
        if repeat is not None and (
            self._random_id_window_s is None or now - repeat.received_at < self._random_id_window_s
        ):
            return repeat.id
        customer = self._customers.get(peer_id)
        if customer is None or not customer.allows_messages:
            raise VkApiError(901)
        sent = BotMessage(
            next(self._message_ids),
            peer_id,
            message,
            keyboard,
            random_id,
            int(now),
            now,
            attachments,
        )
        self._sent.append(sent)
        self._by_random_id[random_id] = sent
        self._bot_sent.fire()
        return sent.id

    async def _send_event_answer(self, params: JSON, _request: web.Request) -> int:
        event = self._button_events.get(str(params.get("event_id", "")))
        if event is None or _int(params, "user_id") != event.user_id:
            raise VkApiError(100, "event_id is invalid")
        _int(params, "peer_id")
        data = params.get("event_data")
        if data is not None:
            try:
                parsed = json.loads(str(data))
            except ValueError:
                raise VkApiError(100, "event_data is not JSON") from None
            if len(str(data)) > 1000 or not isinstance(parsed, dict) or "type" not in parsed:
                raise VkApiError(100, "event_data is invalid")
            event.answer = parsed
        event.answered = True
        return 1

    async def _get_by_id(self, params: JSON, _request: web.Request) -> JSON:
        """The community's messages by id, as messages.getById answers a community token: the
        unknown ids are left out."""
        raw = str(params.get("message_ids", ""))
        try:
            ids = [int(part) for part in raw.split(",") if part.strip()]
        except ValueError:
            raise VkApiError(100, "message_ids is invalid") from None
        if not ids or len(ids) > 100:
            raise VkApiError(100, "message_ids is undefined or has more than 100 ids")
        items = [dict(self._customer_messages[i]) for i in ids if i in self._customer_messages]
        return {"count": len(items), "items": items}

    async def _users_get(self, params: JSON, _request: web.Request) -> list[JSON]:
        raw = str(params.get("user_ids", params.get("user_id", "")))
        latin = str(params.get("lang", "")) in ("en", "3")
        found = []
        for part in filter(None, (p.strip() for p in raw.split(","))):
            if not part.isdigit():
                raise VkApiError(100, f"invalid user id {part}")
            customer = self._customers.get(int(part))
            if customer is None:
                continue  # VK leaves out ids it does not know
            first, last = customer.first_name, customer.last_name
            if latin and customer.latin_name is not None:
                first, last = customer.latin_name
            found.append(
                {
                    "id": customer.id,
                    "first_name": first,
                    "last_name": last,
                    "can_access_closed": True,
                    "is_closed": False,
                }
            )
        return found

    # ---- HTTP ---------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        routes = [
            web.route("*", "/method/{method}", self._handle_method),
            web.get(f"/lp/{self.group_id}", self._handle_long_poll, name="long_poll"),
            self.uploads.route(),
            self.files.route(),
            *self._customer_routes(PREFIX),
        ]
        return emulator_app(routes, self.faults, self.close, max_upload_bytes=MAX_DOCUMENT_BYTES)

    async def close(self) -> None:
        """End hanging long polls, callback pushers and the pushers' HTTP session."""
        self._shutting_down = True
        self._new_event.fire()  # answer hanging long polls now
        for server in self._callbacks:
            await stop(server.task)
        await self._client.close()

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params: JSON = dict(request.query)
        if request.method == "POST" and request.content_type in (
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ):
            params.update((await request.post()).items())
        fault: Fault | None = None
        try:
            handler = self._methods.get(method)
            if handler is None:
                raise VkApiError(3, f"no method {method}")
            if params.get("access_token") != self.token:
                raise VkApiError(5, "invalid access_token (4).")
            if not params.get("v"):
                raise VkApiError(8, "v is required")
            if (asked := self._next_errors.take(method)) is not None:
                raise asked
            fault = self.faults.next_fault(method)
            if (dropped := await fault_before_call(fault, request, _fault_error)) is not None:
                return dropped
            answer = web.json_response({"response": await handler(params, request)})
        except VkApiError as exc:
            answer = exc.response(method, params)
        except AttachmentError as exc:
            answer = VkApiError(100, str(exc)).response(method, params)
        except WallError as exc:
            answer = VkApiError(exc.code, str(exc)).response(method, params)
        return fault_after_call(fault, request, answer)

    async def _handle_long_poll(self, request: web.Request) -> web.Response:
        query = request.query
        if query.get("act") != "a_check":
            return web.json_response({"failed": 2})
        try:
            ts = int(query.get("ts", ""))
            wait = min(max(int(query.get("wait", "25")), 0), MAX_LONG_POLL_WAIT)
        except ValueError:
            return web.json_response({"failed": 1, "ts": self._next_ts})
        deadline = time.monotonic() + wait
        while True:
            woken = self._new_event.event()
            if (failed := self._pending_failure) is not None:
                self._pending_failure = None
                return self._long_poll_failure(failed)
            if query.get("key") != self._key:
                return web.json_response({"failed": 2})
            if not self._first_ts <= ts <= self._next_ts:
                return web.json_response({"failed": 1, "ts": self._next_ts})
            updates = self._history[ts - self._first_ts :]
            remaining = deadline - time.monotonic()
            if updates or remaining <= 0 or self._shutting_down:
                return web.json_response({"ts": str(self._next_ts), "updates": updates})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken.wait(), remaining)

    def _long_poll_failure(self, failed: int) -> web.Response:
        if failed == 1:
            # the history before now is gone: the client must go on from the current ts
            return web.json_response({"failed": 1, "ts": self._next_ts})
        self._key = self._new_key()
        return web.json_response({"failed": failed})

    def _customer_routes(self, prefix: str) -> list[web.RouteDef]:
        user = f"{prefix}/users/{{user_id:[0-9]+}}"

        def route(method: str, path: str, action: Callable[[JSON], Any]) -> web.RouteDef:
            async def act(request: web.Request) -> Any:
                body = await json_body(request)
                if "first_name" in body:
                    self.customer(
                        int(body["user_id"]),
                        first_name=str(body["first_name"]),
                        last_name=str(body.get("last_name", "")),
                        lang_id=int(body.get("lang_id", 0)),
                    )
                return action(body)

            return customer_route(method, path, act)

        def uid(body: JSON) -> int:
            return int(body["user_id"])

        def acting(action: Callable[[JSON], None]) -> Callable[[JSON], bool]:
            def run(body: JSON) -> bool:
                action(body)
                return True

            return run

        return [
            route("POST", f"{user}/messages", lambda b: self.write(uid(b), str(b["text"]))),
            route(
                "POST",
                f"{user}/photos",
                lambda b: self.write_photo(
                    uid(b), uploaded(b["data_base64"]), text=str(b.get("text", ""))
                ),
            ),
            route(
                "POST",
                f"{user}/documents",
                lambda b: self.write_document(
                    uid(b), uploaded(b["data_base64"]), str(b["title"]), text=str(b.get("text", ""))
                ),
            ),
            route(
                "POST",
                f"{user}/messages/{{message_id:[0-9]+}}/edit",
                lambda b: self.edit(uid(b), int(b["message_id"]), str(b["text"])),
            ),
            route(
                "POST",
                f"{user}/button-presses",
                lambda b: {
                    "event_id": self.press_button(uid(b), int(b["message_id"]), b.get("payload"))
                },
            ),
            route(
                "POST",
                f"{user}/comments",
                lambda b: self.comment(
                    uid(b),
                    int(b["item_id"]),
                    str(b["text"]),
                    kind=kind_of(str(b.get("kind", "wall"))),
                    reply_to=int(b["reply_to"]) if b.get("reply_to") else None,
                ).as_dict(),
            ),
            route(
                "POST",
                f"{prefix}/posts",
                lambda b: _place(
                    self.post(str(b["text"]), kind=kind_of(str(b.get("kind", "wall"))))
                ),
            ),
            route("GET", f"{prefix}/posts", lambda _: [_place(p) for p in self.wall.places()]),
            route(
                "GET",
                f"{prefix}/community-comments",
                lambda _: [c.as_dict() for c in self.community_comments()],
            ),
            route("POST", f"{user}/deny", acting(lambda b: self.deny_messages(uid(b)))),
            route("POST", f"{user}/allow", acting(lambda b: self.allow_messages(uid(b)))),
            route(
                "GET",
                f"{user}/bot-messages",
                lambda b: [m.as_dict() for m in self.bot_messages(uid(b))],
            ),
            route("GET", f"{prefix}/bot-messages", lambda _: [m.as_dict() for m in self._sent]),
            route(
                "GET",
                f"{prefix}/button-events/{{event_id}}",
                lambda b: self.button_event(str(b["event_id"])).as_dict(),
            ),
            route(
                "POST",
                f"{prefix}/errors",
                acting(
                    lambda b: self.fail_next(
                        int(b["code"]), methods=b.get("methods"), times=int(b.get("times", 1))
                    )
                ),
            ),
            route(
                "POST",
                f"{prefix}/long-poll-failure",
                acting(lambda b: self.fail_long_poll(int(b["failed"]))),
            ),
        ]


def _place(place: Place) -> JSON:
    """A post (or photo, ...) and its comments, as the sandbox's page shows them."""
    return {
        "kind": place.kind,
        "id": place.id,
        "text": place.text,
        "comments": [c.as_dict() for c in place.comments],
    }


def _int(params: JSON, name: str) -> int:
    try:
        return int(str(params[name]))
    except (KeyError, ValueError):
        raise VkApiError(100, f"{name} is undefined or not a number") from None


def _keyboard(raw: Any) -> JSON | None:
    """The keyboard as the customer will see it; 911 when VK would refuse it."""
    if raw is None or raw == "":
        return None
    try:
        keyboard = json.loads(str(raw))
        rows = keyboard["buttons"]
        inline = bool(keyboard.get("inline", False))
        if not isinstance(rows, list) or len(rows) > (6 if inline else 10):
            raise ValueError("too many rows")
        for row in rows:
            if not isinstance(row, list) or not 0 < len(row) <= 5:
                raise ValueError("a row holds 1 to 5 buttons")
            for button in row:
                action = button["action"]
                if action["type"] not in KEYBOARD_ACTIONS:
                    raise ValueError(f"unknown action {action['type']}")
                if action["type"] in ("text", "callback") and not action.get("label"):
                    raise ValueError("a button needs a label")
                payload = action.get("payload")
                if payload is not None and (
                    len(payload) > MAX_PAYLOAD_CHARS or json.loads(payload) is None
                ):
                    raise ValueError("payload must be JSON of at most 255 characters")
                if button.get("color", "default") not in KEYBOARD_COLOURS:
                    raise ValueError("unknown colour")
    except (ValueError, KeyError, TypeError) as exc:
        raise VkApiError(911, str(exc)) from None
    if not isinstance(keyboard, dict):
        raise VkApiError(911)
    return keyboard


def _fault_error(fault: Fault) -> VkApiError:
    """An injected rate limit or server error, the VK way (HTTP 200 with an error)."""
    return VkApiError(6 if fault.kind is FaultKind.RATE_LIMIT else 10)


def main(argv: Sequence[str] | None = None) -> None:
    parser = options("emulators.vk", "Run the VK API emulator.", port=8082)
    parser.add_argument("--group-id", type=int, default=DEFAULT_GROUP_ID)
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    parser.add_argument("--confirmation", default="emulator-confirm")
    args = parser.parse_args(argv)
    emulator = VkEmulator(
        group_id=args.group_id, token=args.token, confirmation=args.confirmation, seed=args.seed
    )
    serve(emulator.app, args)


if __name__ == "__main__":
    main()
