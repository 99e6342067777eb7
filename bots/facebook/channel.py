"""The Facebook Messenger channel: signed webhooks in, the Graph API Send API out, plain aiohttp.
Instagram direct messages go through the same Messenger Platform, so `bots.instagram` is this
channel with Instagram's object, limits and names.

Messenger only pushes (no polling). Sending is bound by the platform's messaging windows
(docs/networks.md 3.2): a standard message only within 24 h of the person's last
message; after that, only a human agent's reply with tag HUMAN_AGENT, and only within 7 days.
The channel checks the windows itself before calling, so an agent sees why a reply cannot go
instead of a bare error code.

The person's last message time comes with each outbound message (from the store), and from
the webhooks this channel verified (`last_seen`, fresher when a message is still on the bus);
when neither is known, the send is left to the platform's own check.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from typing import Any

import aiohttp
from aiohttp import web
from pydantic import ValidationError

from bots.downloads import Downloads
from bots.facebook.comments import comment_key, commented, thread_object
from bots.facebook.events import Inbound, WebhookPayload, to_inbound
from bridge.channel import (
    MB,
    Delivered,
    DeliveryError,
    FileKeeper,
    FileLimits,
    InboundSink,
    Limit,
    OutgoingFile,
    PollPosition,
    outgoing_files,
)
from bridge.domain import (
    MAX_TEXT_CHARS,
    MAX_URL_CHARS,
    PHOTO,
    AuthorKind,
    Button,
    Network,
    OutboundMessage,
    PublicPlace,
    Unreadable,
)
from bridge.util import json_text

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/facebook"
SIGNATURE_HEADER = "X-Hub-Signature-256"
GRAPH_URL = "https://graph.facebook.com"
MAX_MESSAGE_CHARS = 2000
MAX_QUICK_REPLIES = 13
QUICK_REPLY_TITLE_CHARS = 20
STANDARD_WINDOW_S = 24 * 3600
HUMAN_AGENT_WINDOW_S = 7 * 24 * 3600
# The platform allows 300 Send API calls/s per page; well under it, since the 24-hour budget
# (200 x engaged people) and the high-volume mode above 40 messages/s are not tracked here.
PAGE_PER_SECOND = 20.0
# 613 / 4 / 32: rate limits; 1 / 2: unknown / temporary errors (FBD error-codes).
TRANSIENT_CODES = frozenset({1, 2, 4, 32, 613})
OUTSIDE_WINDOW = (10, 2018278)
# The platform waits up to 20 s for a webhook's answer; the files are fetched within it.
DOWNLOAD_TIMEOUT_S = 12.0
# Beside a file's key, why it was not kept: the agent opening it is told.
NOT_KEPT_SUFFIX = ":not-kept"
# An attachment uploaded with the message: 25 MB, whatever its type (docs/networks.md 3.2).
FILE_LIMITS = FileLimits("Messenger", file_bytes=25 * MB, photo_bytes=25 * MB)
UPLOAD_TIMEOUT_S = 120.0
POST_READ_TIMEOUT_S = 5.0
# The newest comments looked through for a reply already posted: a retry comes within minutes.
RECENT_COMMENTS = 100


class FacebookChannel:
    network: Network = Network.FACEBOOK
    name = "Messenger"  # as agents know the network, in the reasons they read
    file_limits: FileLimits = FILE_LIMITS
    webhook_path = WEBHOOK_PATH
    reply_edge = "comments"  # the edge a comment is answered on, in public
    post_fields = ("message", "permalink_url")  # a post's text and address, as Graph names them
    comment_text = "message"  # a comment's text, as Graph names it
    account_field = "id"  # the field of /me (the Page) naming the account that comments

    def __init__(
        self,
        page_token: str,
        *,
        app_secret: str,
        verify_token: str,
        api_url: str | None = None,
        api_version: str = "v19.0",
        files: FileKeeper | None = None,
    ) -> None:
        # An empty secret would let anyone sign a webhook (HMAC with an empty key) or pass
        # the verification: refuse to start rather than accept forged pushes.
        if not (page_token and app_secret and verify_token):
            raise ValueError(f"{self.name} needs a page token, an app secret and a verify token")
        self.page_token = page_token
        self.app_secret = app_secret.encode()
        self.verify_token = verify_token
        self.graph_url = f"{(api_url or GRAPH_URL).rstrip('/')}/{api_version}"
        self.messages_url = f"{self.graph_url}/me/messages"
        # Limits are shared by every sender process through their key; the page id is not
        # known before a call, so the token names the page, hashed to keep it out of Redis.
        self.page_key = hashlib.sha256(page_token.encode()).hexdigest()[:16]
        self.last_seen: dict[str, float] = {}
        """PSID -> unix time of the person's last message, from verified webhooks."""
        self.posts: dict[str, PublicPlace] = {}
        """Public thread -> its post's text and address, read once per post."""
        self.account_id: str | None = None
        """The account's own id, read once, to know its comments from the customers'."""
        self._session: aiohttp.ClientSession | None = None
        self.files = files
        self.downloads = Downloads(api_url, timeout_s=DOWNLOAD_TIMEOUT_S)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await self.downloads.close()

    # -- sending ----------------------------------------------------------------------------

    def limits(self, message: OutboundMessage) -> Sequence[Limit]:
        return [Limit(f"{self.network.value}:{self.page_key}", PAGE_PER_SECOND)]

    def split(self, text: str) -> list[str]:
        """The messages a long text goes in."""
        return split_text(text)

    def attachment_type(self, file: OutgoingFile) -> str:
        """The Send API's attachment type for an agent's file."""
        return "image" if file.attachment.kind == PHOTO else "file"

    async def send(self, message: OutboundMessage) -> Delivered:
        files = await outgoing_files(self.files, self.file_limits, message)
        if message.public:
            return await self._comment(message, files)
        if (comment := commented(message.in_reply_to)) is not None:
            return await self._private_reply(message, comment, files)
        routing = self._routing(message)
        # an attachment carries no text: the text goes first, then each file
        chunks = self.split(message.text) or ([] if files else [""])
        parts: list[tuple[dict[str, Any], OutgoingFile | None]] = [
            ({"text": chunk}, None) for chunk in chunks
        ]
        for each in files:
            kind = self.attachment_type(each)
            parts.append(({"attachment": {"type": kind, "payload": {"is_reusable": False}}}, each))
        first: str | None = None
        for n, (content, upload) in enumerate(parts, 1):
            if n == len(parts) and message.buttons:
                content["quick_replies"] = quick_replies(message.buttons)
            body = {"recipient": {"id": message.chat_id}, **routing, "message": content}
            sent = str((await self._call(body, upload))["message_id"])
            first = first or sent
        assert first is not None
        return Delivered(first)

    async def _comment(self, message: OutboundMessage, files: Sequence[OutgoingFile]) -> Delivered:
        """A public reply as the page (the account): under the comment `in_reply_to`, or under
        the post itself when it answers none (docs/networks.md 3.4)."""
        post = thread_object(message.chat_id)
        if post is None:
            reason = f"{message.chat_id} is no {self.name} public thread"
            raise DeliveryError(reason, permanent=True)
        if files:
            reason = f"files in public {self.name} replies are not sent"
            raise DeliveryError(reason, permanent=True)
        parent = commented(message.in_reply_to)
        edge = f"{parent}/{self.reply_edge}" if parent else f"{post}/comments"
        url = f"{self.graph_url}/{edge}"
        # no dedupe key exists for comments: one whose answer was lost is found there instead
        posted = await self._posted(url, message.text)
        if posted is not None:
            return Delivered(comment_key(posted))
        answer = await self._graph(url, {"message": message.text})
        if not isinstance(answer.get("id"), str):
            raise DeliveryError(f"{self.name} answered a comment with {answer!r}", permanent=True)
        return Delivered(comment_key(answer["id"]))

    async def _posted(self, url: str, text: str) -> str | None:
        """The id of the account's comment with `text` among the newest at `url` (under the
        comment or the post a reply goes to), if it is there: the same reply, posted by an
        earlier try whose answer was lost (docs/networks.md 3.4)."""
        if self.account_id is None:
            me = await self._read(f"{self.graph_url}/me", self.account_field)
            found = me.get(self.account_field)
            self.account_id = str(found["id"] if isinstance(found, dict) else found)
        params = {
            "access_token": self.page_token,
            "fields": f"id,from,{self.comment_text}",
            "order": "reverse_chronological",
            "limit": str(RECENT_COMMENTS),
        }
        async with self._http().get(url, params=params) as response:
            answer = await self._answer(response)
        for comment in answer.get("data") or ():
            author = comment.get("from") if isinstance(comment, dict) else None
            if (
                isinstance(author, dict)
                and str(author.get("id")) == self.account_id
                and comment.get(self.comment_text) == text
            ):
                return str(comment["id"])
        return None

    async def _private_reply(
        self, message: OutboundMessage, comment: str, files: Sequence[OutgoingFile]
    ) -> Delivered:
        """The one message a comment's author may get privately for it: by the comment's id,
        whatever their 24-hour window (docs/networks.md 3.4); it is one text, so it is refused
        whole rather than cut. The answer names the person as their private chat knows them
        (on Facebook their PSID, not the comment's author id), which keys the conversation."""
        if files or message.buttons:
            raise DeliveryError(
                f"a private reply to a {self.name} comment is one text message, without files",
                permanent=True,
            )
        if len(self.split(message.text)) > 1:
            raise DeliveryError(
                f"a private reply to a {self.name} comment is one message: shorten the text",
                permanent=True,
            )
        body = {"recipient": {"comment_id": comment}, "message": {"text": message.text}}
        answer = await self._call(body)
        person = answer.get("recipient_id")
        return Delivered(str(answer["message_id"]), chat_id=str(person) if person else None)

    def _routing(self, message: OutboundMessage) -> dict[str, str]:
        """messaging_type (and tag) the windows allow, or DeliveryError before any call."""
        last = max(
            (
                t
                for t in (
                    self.last_seen.get(message.chat_id),
                    message.received_at,
                    message.customer_last_message_at,
                )
                if t
            ),
            default=None,
        )
        if last is None:
            # Unknown here (restart, other process): the platform checks, 10/2018278 if outside.
            return {"messaging_type": "RESPONSE"}
        age = time.time() - last
        if age <= STANDARD_WINDOW_S:
            return {"messaging_type": "RESPONSE"}
        if message.author_kind is not AuthorKind.AGENT:
            raise DeliveryError(
                f"outside {self.name}'s 24-hour window; an automatic message cannot be sent "
                "until the customer writes again (an agent may still reply within 7 days)",
                permanent=True,
            )
        if age <= HUMAN_AGENT_WINDOW_S:
            return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        raise DeliveryError(
            f"outside {self.name}'s 24-hour window; more than 7 days have passed since the "
            "customer's last message, so even an agent's reply cannot be sent until they "
            "write again",
            permanent=True,
        )

    async def _graph(self, url: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST one Graph call: its answer, or DeliveryError with the platform's reason."""
        request = self._http().post(url, params={"access_token": self.page_token}, json=body)
        async with request as response:
            return await self._answer(response)

    async def _call(self, body: dict[str, Any], file: OutgoingFile | None = None) -> dict[str, Any]:
        """POST one message (with `file`, uploaded along as `filedata`); the answer, which has
        its mid (`message_id`), or DeliveryError with the platform's reason."""
        params = {"access_token": self.page_token}
        if file is None:
            request = self._http().post(self.messages_url, params=params, json=body)
        else:
            form = aiohttp.FormData(quote_fields=False)  # a name as browsers send it: UTF-8
            for name, value in body.items():
                form.add_field(name, value if isinstance(value, str) else json.dumps(value))
            form.add_field(
                "filedata",
                file.content,
                filename=file.name,
                content_type=file.attachment.mime_type or "application/octet-stream",
            )
            timeout = aiohttp.ClientTimeout(total=UPLOAD_TIMEOUT_S)
            request = self._http().post(
                self.messages_url, params=params, data=form, timeout=timeout
            )
        async with request as response:
            answer = await self._answer(response)
        if "message_id" not in answer:
            raise DeliveryError(f"{self.name} answered without a message id", permanent=True)
        return answer

    async def _answer(self, response: aiohttp.ClientResponse) -> dict[str, Any]:
        """A Graph answer's object, or DeliveryError with the platform's reason."""
        try:
            answer = await response.json(content_type=None)
        except ValueError:
            answer = None
        retry_after = _retry_after(response.headers.get("Retry-After"))
        status = response.status
        if status == 200 and isinstance(answer, dict):
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        if not isinstance(error, dict):
            reason = f"{self.name} answered HTTP {status} without an error description"
            raise DeliveryError(reason, permanent=status < 500, retry_after=retry_after)
        code, subcode = error.get("code"), error.get("error_subcode")
        text = f"{self.name} error {code}" + (f"/{subcode}" if subcode else "")
        text += f": {error.get('message', '')}"
        if (code, subcode) == OUTSIDE_WINDOW:
            text = f"outside {self.name}'s allowed window ({text})"
        transient = code in TRANSIENT_CODES or status >= 500
        raise DeliveryError(text, permanent=not transient, retry_after=retry_after)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def fetch_file(self, network_file_id: str) -> bytes:
        """A file the customer sent, as it was kept when it came (the platform's addresses
        expire)."""
        if self.files is None:
            raise LookupError(f"{self.name} files are not kept by this process")
        try:
            return await self.files.load(network_file_id)
        except LookupError as exc:
            missing = exc
        try:
            why = (await self.files.load(network_file_id + NOT_KEPT_SUFFIX)).decode()
        except LookupError:
            raise missing from None
        raise LookupError(f"the file is not kept: it was not downloaded when it came ({why})")

    async def _keep_files(self, inbound: Sequence[Inbound]) -> None:
        """Download the files of the messages while their addresses hold, and keep them. One
        that cannot be had is left out, its reason kept for the agent who opens it; a store that
        cannot keep them fails the webhook, so that the platform delivers it again."""
        wanted = [(key, url) for item in inbound for key, url in item.downloads]
        if self.files is None or not wanted:
            return
        await asyncio.gather(*(self._keep_file(key, url) for key, url in wanted))

    async def _keep_file(self, key: str, url: str) -> None:
        assert self.files is not None
        try:
            content = await self.downloads.fetch(url)
        except TimeoutError:
            why = f"the file server did not hand it over within {DOWNLOAD_TIMEOUT_S:g} s"
        except (LookupError, aiohttp.ClientError) as exc:
            why = str(exc)
        else:
            await self.files.keep(key, content)
            return
        log.warning("%s: a customer's file was not downloaded: %s", self.network.value, why)
        await self.files.keep(key + NOT_KEPT_SUFFIX, why.encode())

    # -- receiving --------------------------------------------------------------------------

    async def poll(
        self, sink: InboundSink, stop: asyncio.Event, position: PollPosition | None = None
    ) -> None:
        """The platform only pushes webhooks: nothing to poll."""

    def webhook_routes(self, sink: InboundSink) -> Sequence[web.RouteDef]:
        async def verify(request: web.Request) -> web.Response:
            query = request.query
            token = query.get("hub.verify_token", "").encode()
            if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(
                token, self.verify_token.encode()
            ):
                return web.Response(status=403, text="verification failed")
            return web.Response(text=query.get("hub.challenge", ""))

        async def receive(request: web.Request) -> web.Response:
            body = await request.read()  # the signature covers these exact bytes
            if not self._signed(body, request.headers.get(SIGNATURE_HEADER, "")):
                return web.json_response({"error": "bad or missing signature"}, status=403)
            try:
                # not pydantic's parser: it refuses a lone surrogate (made storable later)
                payload = WebhookPayload.model_validate(json_text.loads(body))
            except (ValueError, ValidationError) as exc:
                error = f"not a {self.name} webhook: {exc}"
                return web.json_response({"error": error}, status=400)
            events = [await self._with_post(item) for item in to_inbound(payload, self.network)]
            inbound = [item for item in events if isinstance(item, Inbound)]
            unreadable = [item for item in events if isinstance(item, Unreadable)]
            # A failure here answers 500, so the platform delivers the events again.
            if inbound:
                await self._keep_files(inbound)
            if events:
                await sink([*(item.message for item in inbound), *unreadable])
            for item in inbound:
                if item.message.public is not None:
                    continue  # a comment opens no messaging window
                psid = item.message.chat_id
                self.last_seen[psid] = max(self.last_seen.get(psid, 0.0), item.sent_at)
            return web.Response(text="EVENT_RECEIVED")

        return [web.get(self.webhook_path, verify), web.post(self.webhook_path, receive)]

    async def _with_post(self, item: Inbound | Unreadable) -> Inbound | Unreadable:
        """A comment with the text and address of the post it is under (docs/networks.md 3.4):
        the change carries neither, so the post is read once; one that cannot be read leaves
        the comment as it came."""
        public = item.message.public if isinstance(item, Inbound) else None
        if not isinstance(item, Inbound) or public is None or item.message.kind == "delete":
            return item
        thread = item.message.chat_id
        if thread not in self.posts:
            post = thread_object(thread)
            try:
                answer = await self._read(f"{self.graph_url}/{post}", ",".join(self.post_fields))
            except (DeliveryError, aiohttp.ClientError, TimeoutError) as exc:
                log.warning("%s: post %s not read: %s", self.network.value, post, exc)
                return item
            text, url = (answer.get(name) for name in self.post_fields)
            self.posts[thread] = PublicPlace(
                post_text=text[:MAX_TEXT_CHARS] if isinstance(text, str) else None,
                post_url=url if isinstance(url, str) and len(url) <= MAX_URL_CHARS else None,
            )
        known = self.posts[thread]
        place = public.model_copy(
            update={"post_text": known.post_text, "post_url": known.post_url or public.post_url}
        )
        return Inbound(item.message.model_copy(update={"public": place}), item.sent_at)

    async def _read(self, url: str, fields: str) -> dict[str, Any]:
        """GET one Graph object's `fields`, within the webhook's time."""
        params = {"access_token": self.page_token, "fields": fields}
        timeout = aiohttp.ClientTimeout(total=POST_READ_TIMEOUT_S)
        async with self._http().get(url, params=params, timeout=timeout) as response:
            return await self._answer(response)

    def _signed(self, body: bytes, header: str) -> bool:
        expected = "sha256=" + hmac.new(self.app_secret, body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(header.encode(), expected.encode())

    async def register_webhook(self, public_url: str) -> None:
        # The callback URL is a setting of the Meta app (dashboard or app token), which a page
        # token cannot change: the operator sets it once.
        log.info(
            "%s: set the app's webhook callback URL to %s%s with the verify token",
            self.network.value,
            public_url.rstrip("/"),
            self.webhook_path,
        )


def quick_replies(buttons: Sequence[Button]) -> list[dict[str, str]]:
    """Our buttons as quick replies under the message (a tap comes back with the payload);
    Messenger cuts a title at 20 characters, so longer labels are shortened here, visibly."""
    return [
        {
            "content_type": "text",
            "title": b.label if len(b.label) <= QUICK_REPLY_TITLE_CHARS else b.label[:19] + "…",
            "payload": b.data,
        }
        for b in buttons[:MAX_QUICK_REPLIES]
    ]


def split_text(text: str) -> list[str]:
    """Messenger takes text under 2000 characters a message: longer replies go in several."""
    return [text[i : i + MAX_MESSAGE_CHARS] for i in range(0, len(text), MAX_MESSAGE_CHARS)]


def _retry_after(raw: str | None) -> float | None:
    """A Retry-After in seconds if the answer carries one (the platform's use is unconfirmed)."""
    try:
        return max(float(raw), 0.0) if raw is not None else None
    except ValueError:
        return None
