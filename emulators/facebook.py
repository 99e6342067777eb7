"""A local emulator of the Messenger Platform: the Graph API Send API and signed webhook pushes.

Serves `POST /{version}/me/messages?access_token=...` (and `/{page-id}/messages`) like
graph.facebook.com, so a plain HTTP client pointed at it (`SB_FACEBOOK_API_URL`) works unchanged.
Facts and their sources: docs/networks.md section 3.

What it enforces, as the platform documents:
* the page token (else error 190), recipient is a known PSID (100/2018001), text < 2000
  characters, at most 13 quick replies with titles of at most 20 characters, `messaging_type`;
* the standard messaging window: RESPONSE / UPDATE only within 24 h of the customer's last
  message; MESSAGE_TAG with tag HUMAN_AGENT within 7 days; outside: error 10, subcode 2018278;
* a person who cannot be reached answers 551 (subcode 1545041).

Unconfirmed in the reference and chosen here: every Graph error answers HTTP 400 except an
injected server error (its own 5xx status); the exact wording of most error messages; no
retry hint (Retry-After) on rate-limit errors.

Webhooks are pushed to the URL given to `subscribe` (which first runs the GET verification
handshake), in order, the events waiting batched into one POST (up to 100 entries), signed
`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the exact body bytes with the app secret>`; a
non-200 answer is retried with doubling back-off, as the platform retries until it succeeds.

A customer's files come as attachments with a CDN address (`/_files/...`: `files`, a
emulators.files.FileHost) that expires (`files.forget`). The page sends a file as the Send API
takes one uploaded with the message (multipart: `recipient`, `message` with an `attachment` of
type image, file, audio or video, and the file as `filedata`), of at most 25 MB; the customer sees
it at a CDN address too. Unconfirmed and chosen here: the wording and code of the refusals of an
attachment (100, "Upload attachment failure" with a reason); an image must be JPEG, PNG or GIF.

A test (or, over `/_emulator/...`, another process) plays the customers: writes as PSID X,
presses a quick reply, sends a postback, reads the page's messages, moves a customer's last
message into the past, makes a person unavailable; and reads what the page sent with the
emulator's receive times. `faults` injects 613 (rate limit), 5xx, slow answers and dropped
connections; `fail_next` injects any Graph error code (4, 32, 551, 10/2018278, 2, 190...).

The Page's posts, people's comments under them, the page's public replies and the one private
reply a comment may get: emulators.meta_comments (`comments`).

Run standalone: `python -m emulators.facebook --port 8083`, then
`POST /_emulator/subscribe {"url": ..., "verify_token": ...}`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from bridge.util.file_types import picture_type
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
from emulators.meta_comments import CommentError, PostComments
from emulators.pushes import Backoff, PushClient, stop
from emulators.signals import Signal
from emulators.standalone import options, serve

log = logging.getLogger(__name__)

JSON = dict[str, Any]

DEFAULT_PAGE_TOKEN = "EAAB-emulated-page-token"
DEFAULT_APP_SECRET = "emulated-app-secret"
DEFAULT_PAGE_ID = "1000000000001"
DEFAULT_APP_ID = "2000000000002"
SIGNATURE_HEADER = "X-Hub-Signature-256"
MAX_TEXT_CHARS = 2000
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
MAX_PAYLOAD_CHARS = 1000
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
ATTACHMENT_TYPES = frozenset({"image", "file", "audio", "video"})
STANDARD_WINDOW_S = 24 * 3600
HUMAN_AGENT_WINDOW_S = 7 * 24 * 3600
MESSAGING_TYPES = frozenset({"RESPONSE", "UPDATE", "MESSAGE_TAG"})
# Entries per webhook POST when events wait: the platform batches, its maximum is unpublished.
MAX_ENTRIES_PER_PUSH = 100
SENDER_ACTIONS = frozenset({"typing_on", "typing_off", "mark_seen"})

# The messages of the documented codes; wording of the real server unconfirmed except where
# public integrations quote it (551, 10/2018278, 613).
ERROR_MESSAGES: dict[int, str] = {
    1: "An unknown error has occurred.",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: "(#10) This message is sent outside of allowed window.",
    32: "(#32) Page request limit reached",
    100: "(#100) Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    551: "(#551) This person isn't available right now.",
    613: "(#613) Calls to this api have exceeded the rate limit.",
}


def sign(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value for `body`."""
    return "sha256=" + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


class GraphError(Exception):
    """A Graph API error answer in its documented envelope."""

    def __init__(
        self,
        code: int,
        message: str | None = None,
        *,
        subcode: int | None = None,
        status: int = 400,
        error_type: str = "OAuthException",
    ) -> None:
        self.code = code
        self.message = message or ERROR_MESSAGES.get(code, f"(#{code}) Error")
        super().__init__(self.message)
        self.subcode = subcode
        self.status = status
        self.error_type = error_type

    def response(self, trace_id: str) -> web.Response:
        error: JSON = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
            "fbtrace_id": trace_id,
        }
        if self.subcode is not None:
            error["error_subcode"] = self.subcode
        return web.json_response({"error": error}, status=self.status)


@dataclass(slots=True)
class PageMessage:
    """One message the page sent, as the customer sees it, with the emulator's receive time."""

    message_id: str
    recipient_id: str
    text: str
    quick_replies: list[JSON] | None
    messaging_type: str
    tag: str | None
    received_at: float
    attachment: JSON | None = None  # {"type", "payload": {"url"}, "name"}: a file the page sent

    def as_dict(self) -> JSON:
        return {
            "message_id": self.message_id,
            "recipient_id": self.recipient_id,
            "text": self.text,
            "quick_replies": self.quick_replies,
            "messaging_type": self.messaging_type,
            "tag": self.tag,
            "received_at": self.received_at,
            "attachment": self.attachment,
        }


@dataclass(slots=True)
class _Customer:
    psid: str
    last_message_at: float | None = None
    """When the person last wrote to the page (message, quick reply or postback)."""
    unavailable: bool = False
    page_messages: list[PageMessage] = field(default_factory=list)


class FacebookEmulator:
    """One emulated Page of one app; `app` is the aiohttp application. `emulators.instagram`
    changes what differs on Instagram: the webhook object, the text and file checks."""

    webhook_object = "page"
    pushes_deliveries = True  # Messenger reports deliveries; Instagram does not

    def __init__(
        self,
        page_token: str = DEFAULT_PAGE_TOKEN,
        *,
        app_secret: str = DEFAULT_APP_SECRET,
        page_id: str = DEFAULT_PAGE_ID,
        app_id: str = DEFAULT_APP_ID,
        seed: int = 0,
        webhook_retry_delay: float = 1.0,
        webhook_retry_cap: float = 60.0,
        webhook_timeout: float = 20.0,
        files_url: str | None = None,
    ) -> None:
        self.page_token = page_token
        self.files = FileHost(files_url)
        self.app_secret = app_secret
        self.page_id = page_id
        # whom the webhooks name as the recipient and the entry: the page itself on Messenger
        self.account_id = page_id
        self.app_id = app_id
        self.faults = FaultPlan(seed)
        self._rng = random.Random(seed)
        self._webhook_retry_delay = webhook_retry_delay
        self._webhook_retry_cap = webhook_retry_cap
        self._webhook_timeout = webhook_timeout
        self._customers: dict[str, _Customer] = {}
        self._next_errors: NextErrors[GraphError] = NextErrors()
        self.sent: list[PageMessage] = []
        self._page_sent = Signal()
        self._events: deque[JSON] = deque()
        self._events_added = Signal()
        self._webhook_url: str | None = None
        self._push_task: asyncio.Task[None] | None = None
        self._client = PushClient()
        self.pushes_failed = 0
        # a restarted sandbox (seeded with the time) must not number comments as the last run
        self.comments = PostComments(
            self.account_id, self._push_change, instagram=False, first_number=seed * 1000 + 1
        )
        self.app = self._build_app()

    # ---- the customer side (tests and the sandbox) ---------------------------------------------

    def write_text(self, psid: str, text: str) -> str:
        """Person `psid` writes `text` to the page; returns the message's mid."""
        if not text.strip():
            raise ValueError("Messenger does not send an empty message")
        return self._customer_event(psid, "message", {"text": text})

    def send_file(
        self,
        psid: str,
        data: bytes,
        *,
        kind: str = "image",
        content_type: str = "image/jpeg",
        expired: bool = False,
    ) -> str:
        """Person `psid` sends a file (`kind` image, file, video or audio); the webhook carries
        its CDN address (one that no longer answers, with `expired`). Returns the message's mid."""
        if kind not in ("image", "file", "video", "audio"):
            raise ValueError("kind is one of image, file, video, audio")
        url = self.files.add(data, content_type, served=not expired) + "?oe=expires"
        return self._customer_event(
            psid, "message", {"attachments": [{"type": kind, "payload": {"url": url}}]}
        )

    def press_quick_reply(self, psid: str, payload: str) -> str:
        """The person taps a quick reply of the page's latest message that offered them."""
        customer = self._customer(psid)
        offered = next(
            (m.quick_replies for m in reversed(customer.page_messages) if m.quick_replies), []
        )
        reply = next((q for q in offered if q.get("payload") == payload), None)
        if reply is None:
            raise ValueError(f"the page offered {psid} no quick reply with payload {payload!r}")
        # a tap arrives as a message whose text is the button's title (FBD quick-replies)
        return self._customer_event(
            psid, "message", {"text": reply.get("title", ""), "quick_reply": {"payload": payload}}
        )

    def postback(self, psid: str, payload: str, *, title: str = "") -> str:
        """The person taps a postback button (a template button, Get Started, the menu)."""
        return self._customer_event(psid, "postback", {"title": title, "payload": payload})

    def read(self, psid: str) -> None:
        """The person opens the conversation: a read event up to now (watermark)."""
        self._customer(psid)
        now = int(time.time() * 1000)
        self._push_event(
            {
                "sender": {"id": psid},
                "recipient": {"id": self.account_id},
                "timestamp": now,
                "read": {"watermark": now},
            }
        )

    def age_last_message(self, psid: str, seconds: float) -> None:
        """Move the person's last message `seconds` into the past (tests of the windows)."""
        customer = self._customer(psid)
        if customer.last_message_at is None:
            raise ValueError(f"{psid} never wrote to the page")
        customer.last_message_at -= seconds

    def set_unavailable(self, psid: str, unavailable: bool = True) -> None:
        """The person cannot be reached (blocked the page, deactivated): sends answer 551."""
        self._customer(psid).unavailable = unavailable

    def page_messages(self, psid: str) -> list[PageMessage]:
        """What the page sent to `psid`, oldest first."""
        customer = self._customers.get(psid)
        return list(customer.page_messages) if customer is not None else []

    async def wait_for_page_messages(
        self, psid: str, count: int, *, within: float = 5.0
    ) -> list[PageMessage]:
        await self._page_sent.wait_until(
            lambda: len(self.page_messages(psid)) >= count, within=within
        )
        return self.page_messages(psid)

    def fail_next(self, code: int, *, subcode: int | None = None, times: int = 1) -> None:
        """Answer the next `times` sends with Graph error `code` (e.g. 4, 32, 551, 10/2018278)."""
        self._next_errors.add(GraphError(code, subcode=subcode), times=times)

    # ---- webhooks -------------------------------------------------------------------------------

    async def verify_webhook(self, url: str, verify_token: str) -> bool:
        """The GET handshake: True when the receiver echoed the challenge."""
        challenge = str(self._rng.randint(10**8, 10**9))
        params = {"hub.mode": "subscribe", "hub.challenge": challenge}
        params["hub.verify_token"] = verify_token
        async with self._client.session().get(url, params=params) as response:
            return response.status == 200 and (await response.text()) == challenge

    async def subscribe(self, url: str, verify_token: str) -> None:
        """Verify `url` and push every later event to it (the app's callback URL)."""
        if not await self.verify_webhook(url, verify_token):
            raise ValueError(f"{url} failed the verification handshake")
        await stop(self._push_task)
        self._webhook_url = url
        self._push_task = asyncio.create_task(self._push_events(url))

    def _push_event(self, event: JSON) -> None:
        """Queue one messaging event; without a subscription it is dropped, as on the platform."""
        if self._webhook_url is None:
            return
        self._events.append(
            {"id": self.account_id, "time": event["timestamp"], "messaging": [event]}
        )
        self._events_added.fire()

    def _push_change(self, field: str, value: JSON) -> None:
        """Queue one change of a subscribed field (a comment); dropped without a subscription."""
        if self._webhook_url is None:
            return
        now = int(time.time())
        self._events.append(
            {"id": self.account_id, "time": now, "changes": [{"field": field, "value": value}]}
        )
        self._events_added.fire()

    async def _push_events(self, url: str) -> None:
        backoff = Backoff(self._webhook_retry_delay, self._webhook_retry_cap)
        while True:
            await self._events_added.wait_until(lambda: bool(self._events))
            # What waits goes in one POST, as the platform batches entries (docs/networks.md 3.1).
            batch = list(itertools.islice(self._events, MAX_ENTRIES_PER_PUSH))
            payload = {"object": self.webhook_object, "entry": batch}
            if await self._post(url, json.dumps(payload, ensure_ascii=False).encode()):
                for _ in batch:
                    self._events.popleft()
                backoff.reset()
                continue
            self.pushes_failed += 1
            await backoff.wait()

    async def _post(self, url: str, body: bytes) -> bool:
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(body, self.app_secret),
        }
        try:
            async with self._client.session().post(
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._webhook_timeout),
            ) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("webhook push to %s failed: %r", url, exc)
            return False

    # ---- Send API -------------------------------------------------------------------------------

    def _send(self, params: JSON, upload: web.FileField | None = None) -> JSON:
        recipient = params.get("recipient")
        if isinstance(recipient, dict) and "comment_id" in recipient:
            return self._private_reply(str(recipient["comment_id"]), params)
        psid = str(recipient.get("id", "")) if isinstance(recipient, dict) else ""
        customer = self._customers.get(psid)
        if customer is None:
            raise GraphError(100, "(#100) No matching user found", subcode=2018001)
        if "sender_action" in params:
            if params["sender_action"] not in SENDER_ACTIONS:
                actions = ", ".join(sorted(SENDER_ACTIONS))
                raise GraphError(100, f"(#100) Param sender_action must be one of {actions}")
            return {"recipient_id": psid}
        text, quick_replies, kind = _message(params.get("message"), uploaded=upload is not None)
        if text:
            self._check_text(text)
        messaging_type, tag = _messaging_type(params)
        self._check_window(customer, messaging_type)
        if customer.unavailable:
            raise GraphError(551, subcode=1545041)
        attachment = self._attachment(kind, upload) if kind is not None else None
        message = PageMessage(
            self._mid(), psid, text, quick_replies, messaging_type, tag, time.time(), attachment
        )
        customer.page_messages.append(message)
        self.sent.append(message)
        self._page_sent.fire()
        self._echo_and_deliver(message)
        return {"recipient_id": psid, "message_id": message.message_id}

    def _private_reply(self, comment_id: str, params: JSON) -> JSON:
        """One text message to the author of a comment, in their private conversation: once
        per comment, within 7 days of it, whatever their 24-hour window; the answer's
        `recipient_id` is their PSID, which the comment's change did not give
        (docs/networks.md 3.4)."""
        text, quick_replies, kind = _message(params.get("message"), uploaded=False)
        if kind is not None:
            raise GraphError(100, "(#100) a private reply is text only in this emulator")
        self._check_text(text)
        try:
            comment = self.comments.take_private_reply(comment_id)
        except CommentError as exc:
            raise GraphError(exc.code, exc.message, subcode=exc.subcode) from None
        customer = self._customer(comment.person)  # a Page's change named them otherwise
        message = PageMessage(
            self._mid(),
            customer.psid,
            text,
            quick_replies,
            str(params.get("messaging_type", "RESPONSE")),
            None,
            time.time(),
        )
        customer.page_messages.append(message)
        self.sent.append(message)
        self._page_sent.fire()
        self._echo_and_deliver(message)
        return {"recipient_id": customer.psid, "message_id": message.message_id}

    def _check_text(self, text: str) -> None:
        if len(text) > MAX_TEXT_CHARS:
            raise GraphError(
                100, f"(#100) Length of param message[text] must be less than {MAX_TEXT_CHARS}"
            )

    def _attachment(self, kind: str, upload: web.FileField | None) -> JSON:
        """The uploaded file, at a CDN address, as the customer receives it."""
        if upload is None:
            raise GraphError(100, "(#100) Upload attachment failure: only uploads are emulated")
        data = upload.file.read()
        content_type = self._check_file(kind, data) or upload.content_type
        url = self.files.add(data, content_type or "application/octet-stream")
        return {"type": kind, "payload": {"url": url}, "name": upload.filename}

    def _check_file(self, kind: str, data: bytes) -> str | None:
        """Refuses a file the platform does not take as `kind`; its type, when it knows it."""
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise GraphError(100, "(#100) Upload attachment failure: the file exceeds 25 MB")
        picture = picture_type(data)
        if kind == "image" and picture is None:
            raise GraphError(100, "(#100) Upload attachment failure: not an image")
        return picture

    def _check_window(self, customer: _Customer, messaging_type: str) -> None:
        since = time.time() - customer.last_message_at if customer.last_message_at else None
        allowed = STANDARD_WINDOW_S if messaging_type != "MESSAGE_TAG" else HUMAN_AGENT_WINDOW_S
        if since is None or since > allowed:
            raise GraphError(10, subcode=2018278)

    def _echo_and_deliver(self, message: PageMessage) -> None:
        now = int(message.received_at * 1000)
        echo: JSON = {"is_echo": True, "app_id": self.app_id, "mid": message.message_id}
        if message.attachment is not None:
            echo["attachments"] = [{k: message.attachment[k] for k in ("type", "payload")}]
        else:
            echo["text"] = message.text
        page, person = {"id": self.account_id}, {"id": message.recipient_id}
        self._push_event({"sender": page, "recipient": person, "timestamp": now, "message": echo})
        if not self.pushes_deliveries:
            return
        delivery = {"mids": [message.message_id], "watermark": now}
        self._push_event(
            {"sender": person, "recipient": page, "timestamp": now, "delivery": delivery}
        )

    def _customer(self, psid: str) -> _Customer:
        if not psid.isdigit():
            raise ValueError("a PSID is a string of digits")
        return self._customers.setdefault(psid, _Customer(psid))

    def _customer_event(self, psid: str, kind: str, content: JSON) -> str:
        """The person writes or taps (`kind` message or postback): the event's mid."""
        customer = self._customer(psid)
        mid = self._mid()
        now = time.time()
        customer.last_message_at = now
        self._push_event(
            {
                "sender": {"id": psid},
                "recipient": {"id": self.account_id},
                "timestamp": int(now * 1000),
                kind: {"mid": mid, **content},
            }
        )
        return mid

    def _mid(self) -> str:
        return "m_" + "".join(self._rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnop", k=40))

    # ---- HTTP -----------------------------------------------------------------------------------

    def _build_app(self) -> web.Application:
        routes = [
            web.post("/{version:v[0-9.]+}/{node}/messages", self._handle_send),
            web.post("/{version:v[0-9.]+}/{node}/{edge:comments|replies}", self._handle_comment),
            web.get(
                "/{version:v[0-9.]+}/{node}/{edge:comments|replies}", self._handle_read_comments
            ),
            web.get("/{version:v[0-9.]+}/{node}", self._handle_read_post),
            self.files.route(),
            *self._customer_routes(PREFIX),
        ]
        return emulator_app(routes, self.faults, self.close, max_upload_bytes=MAX_ATTACHMENT_BYTES)

    async def close(self) -> None:
        """Stop the webhook pusher and close its HTTP session."""
        await stop(self._push_task)
        self._push_task = None
        await self._client.close()

    async def _handle_send(self, request: web.Request) -> web.StreamResponse:
        trace_id = "".join(self._rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=11))
        fault: Fault | None = None
        try:
            if request.query.get("access_token") != self.page_token:
                raise GraphError(190)
            if request.match_info["node"] not in ("me", self.page_id):
                raise GraphError(100, "(#100) Unsupported post request")
            fault = self.faults.next_fault("messages")
            if (dropped := await fault_before_call(fault, request, _fault_error)) is not None:
                return dropped
            if (asked := self._next_errors.take("messages")) is not None:
                raise asked
            params, upload = await _send_params(request)
            answer = web.json_response(self._send(params, upload))
        except GraphError as exc:
            answer = exc.response(trace_id)
        return fault_after_call(fault, request, answer)

    async def _handle_comment(self, request: web.Request) -> web.StreamResponse:
        """The account comments in public: under a post, or in reply to a comment."""
        trace_id = "".join(self._rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=11))
        fault: Fault | None = None
        try:
            if request.query.get("access_token") != self.page_token:
                raise GraphError(190)
            fault = self.faults.next_fault("comments")
            if (dropped := await fault_before_call(fault, request, _fault_error)) is not None:
                return dropped
            params, _ = await _send_params(request)
            node, edge = request.match_info["node"], request.match_info["edge"]
            try:
                created = self.comments.reply(node, edge, str(params.get("message", "")))
            except CommentError as exc:
                raise GraphError(exc.code, exc.message, subcode=exc.subcode) from None
            answer = web.json_response({"id": created})
        except GraphError as exc:
            answer = exc.response(trace_id)
        return fault_after_call(fault, request, answer)

    async def _handle_read_comments(self, request: web.Request) -> web.StreamResponse:
        """The comments under a post, or the replies to a comment (`order`, `limit`)."""
        trace_id = "".join(self._rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=11))
        fault: Fault | None = None
        try:
            if request.query.get("access_token") != self.page_token:
                raise GraphError(190)
            fault = self.faults.next_fault("read_comments")
            if (dropped := await fault_before_call(fault, request, _fault_error)) is not None:
                return dropped
            node, edge = request.match_info["node"], request.match_info["edge"]
            newest_first = request.query.get("order") == "reverse_chronological"
            try:
                found = self.comments.read_comments(node, edge, newest_first=newest_first)
            except CommentError as exc:
                raise GraphError(exc.code, exc.message, subcode=exc.subcode) from None
            limit = int(request.query.get("limit", "25"))
            answer = web.json_response({"data": found[:limit]})
        except GraphError as exc:
            answer = exc.response(trace_id)
        return fault_after_call(fault, request, answer)

    def me(self) -> JSON:
        """`GET /me` with the page token: the Page."""
        return {"id": self.page_id}

    async def _handle_read_post(self, request: web.Request) -> web.StreamResponse:
        """A post's (a media's) text and address, or (`/me`) the Page."""
        trace_id = "".join(self._rng.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", k=11))
        try:
            if request.query.get("access_token") != self.page_token:
                raise GraphError(190)
            if request.match_info["node"] == "me":
                return web.json_response(self.me())
            try:
                return web.json_response(self.comments.read_post(request.match_info["node"]))
            except CommentError as exc:
                raise GraphError(exc.code, exc.message, subcode=exc.subcode) from None
        except GraphError as exc:
            return exc.response(trace_id)

    def _customer_routes(self, prefix: str) -> list[web.RouteDef]:
        user = f"{prefix}/users/{{psid:[0-9]+}}"

        def write(body: JSON, psid: str) -> JSON:
            return {"mid": self.write_text(psid, _field(body, "text"))}

        def send_file(body: JSON, psid: str) -> JSON:
            data = uploaded(_field(body, "data_base64"))
            kind, content_type = str(body.get("kind", "image")), str(body.get("content_type", ""))
            return {"mid": self.send_file(psid, data, kind=kind, content_type=content_type)}

        def quick_reply(body: JSON, psid: str) -> JSON:
            return {"mid": self.press_quick_reply(psid, _field(body, "payload"))}

        def postback(body: JSON, psid: str) -> JSON:
            title = str(body.get("title", ""))
            return {"mid": self.postback(psid, _field(body, "payload"), title=title)}

        def read(_body: JSON, psid: str) -> bool:
            self.read(psid)
            return True

        def age(body: JSON, psid: str) -> bool:
            self.age_last_message(psid, float(_field(body, "seconds")))
            return True

        def unavailable(body: JSON, psid: str) -> bool:
            self.set_unavailable(psid, bool(body.get("unavailable", True)))
            return True

        def messages(_body: JSON, psid: str) -> list[JSON]:
            return [m.as_dict() for m in self.page_messages(psid)]

        def all_messages(_body: JSON, _psid: str) -> list[JSON]:
            return [m.as_dict() for m in self.sent]

        def comment(body: JSON, psid: str) -> JSON:
            reply_to = str(body["reply_to"]) if body.get("reply_to") else None
            name = str(body.get("name", ""))
            text, post = _field(body, "text"), _field(body, "post_id")
            return self.comments.comment(psid, post, text, name=name, reply_to=reply_to).as_dict()

        def add_post(body: JSON, _psid: str) -> JSON:
            return self.comments.add_post(_field(body, "text")).as_dict(self.account_id)

        def posts(_body: JSON, _psid: str) -> list[JSON]:
            return [p.as_dict(self.account_id) for p in self.comments.posts()]

        async def subscribe(request: web.Request) -> web.Response:
            try:
                body = await json_body(request)
                await self.subscribe(_field(body, "url"), _field(body, "verify_token"))
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)
            return web.json_response({"ok": True})

        return [
            _customer_route("POST", f"{user}/messages", write),
            _customer_route("POST", f"{user}/files", send_file),
            _customer_route("POST", f"{user}/quick-replies", quick_reply),
            _customer_route("POST", f"{user}/postbacks", postback),
            _customer_route("POST", f"{user}/read", read),
            _customer_route("POST", f"{user}/age", age),
            _customer_route("POST", f"{user}/unavailable", unavailable),
            _customer_route("GET", f"{user}/page-messages", messages),
            _customer_route("GET", f"{prefix}/page-messages", all_messages),
            _customer_route("POST", f"{user}/comments", comment),
            _customer_route("POST", f"{prefix}/posts", add_post),
            _customer_route("GET", f"{prefix}/posts", posts),
            web.post(f"{prefix}/subscribe", subscribe),
        ]


def _customer_route(method: str, path: str, action: Callable[[JSON, str], Any]) -> web.RouteDef:
    """A customer endpoint whose `action` takes the JSON body and the person's PSID."""

    async def act(request: web.Request) -> Any:
        return action(await json_body(request), request.match_info.get("psid", ""))

    return customer_route(method, path, act)


def _field(body: JSON, name: str) -> str:
    value = body.get(name)
    if value is None:
        raise ValueError(f"{name} is required")
    return str(value)


async def _send_params(request: web.Request) -> tuple[JSON, web.FileField | None]:
    """A Send API call's parameters: a JSON body, or a multipart form whose fields are JSON
    texts, with the file uploaded as `filedata`."""
    if request.content_type != "multipart/form-data":
        try:
            params = await request.json()
        except ValueError:
            raise GraphError(100, "(#100) The request body is not valid JSON") from None
        if not isinstance(params, dict):
            raise GraphError(100, "(#100) The request body must be a JSON object")
        return params, None
    try:
        form = await request.post()
    except web.HTTPRequestEntityTooLarge:
        raise GraphError(100, "(#100) Upload attachment failure: the file exceeds 25 MB") from None
    params = {}
    for name, value in form.items():
        if isinstance(value, str):
            try:
                params[name] = json.loads(value) if value[:1] in "{[" else value
            except ValueError:
                raise GraphError(100, f"(#100) param {name} must be JSON") from None
    upload = form.get("filedata")
    return params, upload if isinstance(upload, web.FileField) else None


def _message(message: Any, *, uploaded: bool) -> tuple[str, list[JSON] | None, str | None]:
    """The message's text, quick replies and attachment type (None without one)."""
    if not isinstance(message, dict):
        raise GraphError(100, "(#100) param message must be a JSON object")
    attachment = message.get("attachment")
    kind = None
    if attachment is not None:
        kind = attachment.get("type") if isinstance(attachment, dict) else None
        if kind not in ATTACHMENT_TYPES:
            raise GraphError(100, "(#100) param message[attachment][type] is invalid")
        if "text" in message:
            raise GraphError(100, "(#100) message[text] and message[attachment] exclude each other")
        return "", _quick_replies(message), kind
    if uploaded:
        raise GraphError(100, "(#100) filedata was sent without an attachment")
    text = message.get("text")
    if not isinstance(text, str) or not text:
        raise GraphError(100, "(#100) param message[text] must be a non-empty UTF-8 string")
    return text, _quick_replies(message), None


def _quick_replies(message: JSON) -> list[JSON] | None:
    quick_replies = message.get("quick_replies")
    if quick_replies is None:
        return None
    if not isinstance(quick_replies, list) or len(quick_replies) > MAX_QUICK_REPLIES:
        raise GraphError(100, "(#100) param message[quick_replies] must have at most 13 items")
    for reply in quick_replies:
        if not isinstance(reply, dict) or reply.get("content_type", "text") != "text":
            raise GraphError(100, "(#100) only text quick replies are emulated")
        title, payload = reply.get("title"), reply.get("payload")
        if not isinstance(title, str) or not 0 < len(title) <= MAX_QUICK_REPLY_TITLE:
            raise GraphError(100, "(#100) param title must be 1 to 20 characters")
        if not isinstance(payload, str) or not 0 < len(payload) <= MAX_PAYLOAD_CHARS:
            raise GraphError(100, "(#100) param payload must be 1 to 1000 characters")
    return quick_replies


def _messaging_type(params: JSON) -> tuple[str, str | None]:
    messaging_type = params.get("messaging_type")
    if messaging_type not in MESSAGING_TYPES:
        raise GraphError(
            100, "(#100) param messaging_type must be one of RESPONSE, UPDATE, MESSAGE_TAG"
        )
    tag = params.get("tag")
    if messaging_type != "MESSAGE_TAG":
        return str(messaging_type), None
    # only the tag a support inbox needs is emulated; the other tags have their own rules
    if tag != "HUMAN_AGENT":
        raise GraphError(100, "(#100) param tag must be HUMAN_AGENT in this emulator")
    return "MESSAGE_TAG", "HUMAN_AGENT"


def _fault_error(fault: Fault) -> GraphError:
    """An injected rate limit or server error, the Graph way."""
    if fault.kind is FaultKind.RATE_LIMIT:
        return GraphError(613)
    return GraphError(2, status=fault.status)


def main(argv: Sequence[str] | None = None) -> None:
    parser = options("emulators.facebook", "Run the Messenger Platform emulator.", port=8083)
    parser.add_argument("--page-token", default=DEFAULT_PAGE_TOKEN)
    parser.add_argument("--app-secret", default=DEFAULT_APP_SECRET)
    args = parser.parse_args(argv)
    emulator = FacebookEmulator(args.page_token, app_secret=args.app_secret, seed=args.seed)
    serve(emulator.app, args)


if __name__ == "__main__":
    main()
