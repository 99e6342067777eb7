"""The VK channel: vk_api for every API method, our own Bots Long Poll loop and Callback route.

vk_api is synchronous, so each call runs in a worker thread (asyncio.to_thread); its VkApi lock
serializes them. Its own pacing is switched off (the shared limiter paces sends across every
process: 20 requests/s per community token) and so is its handler for error 6, which would sleep
and repeat forever inside the thread; the sender retries with back-off instead.

Our own long-poll loop, rather than vk_api's VkBotLongPoll, because the `ts` moves past events
only after the bus accepted them (VkBotLongPoll moves it on as it reads), and because an aiohttp
request can be abandoned at once on shutdown where a blocked thread cannot.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp
import jconfig
import requests
import vk_api
from aiohttp import web
from pydantic import ValidationError
from requests.adapters import HTTPAdapter
from vk_api.exceptions import TOO_MANY_RPS_CODE, ApiError, ApiHttpError

from bots.downloads import Downloads
from bots.vk.events import (
    BUTTON_KEY,
    VkUpdate,
    attachment_name,
    author_id,
    comment_id,
    file_url,
    parse_thread,
    to_inbound,
    wall_post,
)
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
    PHOTO,
    Button,
    InboundMessage,
    Network,
    OutboundMessage,
    Unreadable,
)
from bridge.util.stopping import pause

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/vk"
API_VERSION = "5.199"
MAX_MESSAGE_CHARS = 9000
COMMUNITY_PER_SECOND = 20.0
# 6 too many requests per second, 9 flood control, 10 internal server error (VKS errors.json)
RETRYABLE_CODES = frozenset({6, 9, 10})
# vk_api 11.10.1 posts to api.vk.ru, earlier releases to api.vk.com (docs/networks.md 2.1)
VK_API_PREFIXES = ("https://api.vk.ru/method/", "https://api.vk.com/method/")
# An agent waits for the file they opened (bridge.inbox.attachments gives up after 30 s).
DOWNLOAD_TIMEOUT_S = 25.0
# Photos in messages: JPEG, PNG or GIF of 50 MB, sides adding up to 14000 px, at most 1:20;
# documents of 200 MB, not MP3 nor executables (docs/networks.md 2.4; which extensions VK counts
# as executable is unconfirmed).
FILE_LIMITS = FileLimits(
    "VK",
    file_bytes=200 * MB,
    photo_bytes=50 * MB,
    photo_sides=14_000,
    photo_ratio=20,
    refused_extensions=frozenset({"mp3", "exe", "msi", "bat", "cmd", "com", "scr"}),
)
UPLOAD_TIMEOUT_S = 120.0  # a 200 MB document on a slow uplink
# A comment in a public thread, by the place it is under: the method and its item's parameter
# (a board topic's comment, board.createComment, is made apart: it names the group and topic).
COMMENT_METHODS = {
    "wall": ("wall.createComment", "post_id"),
    "photo": ("photos.createComment", "photo_id"),
    "video": ("video.createComment", "video_id"),
    "market": ("market.createComment", "item_id"),
}


class _RedirectAdapter(HTTPAdapter):
    """Sends vk_api's calls to another API base (the emulator, or a proxy) instead of VK's."""

    def __init__(self, api_url: str) -> None:
        super().__init__()
        self._base = api_url.rstrip("/") + "/method/"

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        url = request.url or ""
        for prefix in VK_API_PREFIXES:
            if url.startswith(prefix):
                request.url = self._base + url[len(prefix) :]
        return super().send(request, stream, timeout, verify, cert, proxies)


class VkChannel:
    network = Network.VK
    file_limits = FILE_LIMITS

    def __init__(
        self,
        token: str,
        group_id: int,
        *,
        api_url: str | None = None,
        callback_secret: str | None = None,
        confirmation: str | None = None,
        poll_wait_s: int = 25,
        files: FileKeeper | None = None,
    ) -> None:
        """`files`: where the files agents send are kept until they are sent."""
        self.group_id = group_id
        self.files = files
        self.callback_secret = callback_secret
        self.confirmation = confirmation
        self.poll_wait_s = poll_wait_s
        self.session = requests.Session()
        if api_url:
            adapter = _RedirectAdapter(api_url)
            for prefix in VK_API_PREFIXES:
                self.session.mount(prefix, adapter)
        self.vk = vk_api.VkApi(
            token=token, api_version=API_VERSION, config=jconfig.MemoryConfig, session=self.session
        )
        self.vk.RPS_DELAY = 0
        self.vk.error_handlers.pop(TOO_MANY_RPS_CODE, None)
        self.server: str | None = None
        self.key: str | None = None
        self.ts: str | None = None
        self._names: dict[int, str] = {}
        self._posts: dict[str, str] = {}  # wall posts' texts by thread, read once each
        self._http: aiohttp.ClientSession | None = None
        self.downloads = Downloads(api_url, timeout_s=DOWNLOAD_TIMEOUT_S)

    async def register_webhook(self, public_url: str) -> None:
        """VK has no setWebhook for a community token: the Callback API address is entered in
        the community's settings (with the confirmation string and the secret)."""
        log.info("VK: set the Callback API address to %s%s", public_url.rstrip("/"), WEBHOOK_PATH)

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self.downloads.close()
        self.session.close()

    def _client(self) -> aiohttp.ClientSession:
        """The session of the long polls (vk_api's is synchronous)."""
        if self._http is None:
            self._http = aiohttp.ClientSession()
        return self._http

    async def call(self, method: str, **values: Any) -> Any:
        """One API method, off the event loop."""
        return await asyncio.to_thread(self.vk.method, method, values)

    # -- sending ----------------------------------------------------------------------------

    def limits(self, message: OutboundMessage) -> Sequence[Limit]:
        return [Limit(f"vk:{self.group_id}", COMMUNITY_PER_SECOND)]

    async def send(self, message: OutboundMessage) -> Delivered:
        files = await outgoing_files(self.files, FILE_LIMITS, message)
        try:
            if message.public:
                return await self._comment(message, files)
            return await self._send(message, files)
        except ApiError as exc:
            raise DeliveryError(
                f"VK error {exc.code}: {exc.error.get('error_msg', '')}",
                permanent=exc.code not in RETRYABLE_CODES,
            ) from exc
        except (ApiHttpError, requests.RequestException) as exc:
            raise DeliveryError(f"VK unreachable: {exc}", permanent=False) from exc

    async def _send(self, message: OutboundMessage, files: list[OutgoingFile]) -> Delivered:
        peer = int(message.chat_id)
        # uploaded again on a retry: an upload VK keeps unsent costs nothing
        attached = ",".join([await self._upload(peer, file) for file in files])
        chunks = split_text(message.text) or [""]
        first: int | None = None
        for n, chunk in enumerate(chunks, 1):
            values: dict[str, Any] = {
                "peer_id": peer,
                "message": chunk,
                # a retry of the same part carries the same random_id, so VK does not repeat it
                "random_id": random_id(f"{message.idempotency_key}:{n}"),
            }
            if n == len(chunks):  # under the last part, where the customer's eye ends
                if (markup := keyboard(message.buttons)) is not None:
                    values["keyboard"] = markup
                if attached:
                    values["attachment"] = attached
            sent = await self.call("messages.send", **values)
            first = first if first is not None else int(sent)
        assert first is not None
        return Delivered(str(first))

    async def _comment(self, message: OutboundMessage, files: list[OutgoingFile]) -> Delivered:
        """A public reply: a comment as the community in the thread, answering the comment
        `in_reply_to` (docs/networks.md 2.7). Comments carry no keyboard, so buttons stay off."""
        place = parse_thread(message.chat_id)
        if place is None:
            raise DeliveryError(f"{message.chat_id} is no VK public thread", permanent=True)
        if files:
            raise DeliveryError("files in public VK replies are not sent yet", permanent=True)
        kind, owner, item = place
        values: dict[str, Any] = {
            "message": message.text,
            # VK drops a second comment with the same guid, so a retry is not posted twice
            "guid": str(random_id(message.idempotency_key)),
        }
        parent = comment_id(message.in_reply_to) if message.in_reply_to else None
        if kind == "topic":  # a board's posts answer no post in particular
            method, values["group_id"], values["topic_id"] = "board.createComment", -owner, item
            values["from_group"] = 1
        else:
            method, id_field = COMMENT_METHODS[kind]
            values["owner_id"], values[id_field] = owner, item
            # wall.createComment takes the community's id, the others a flag
            values["from_group"] = -owner if kind == "wall" else 1
            if parent is not None:
                values["reply_to_comment"] = parent
        sent = await self.call(method, **values)
        try:
            number = int(sent["comment_id"] if isinstance(sent, dict) else sent)
        except (KeyError, TypeError, ValueError):
            # the guid keeps a retry from posting it twice, should VK have posted it
            raise DeliveryError(f"VK answered {method} with {sent!r}", permanent=False) from None
        return Delivered(f"{message.chat_id}:{number}")

    async def _upload(self, peer: int, file: OutgoingFile) -> str:
        """VK's three steps (docs/networks.md 2.4): an upload address, the file posted there,
        then saved; the attachment's name for messages.send."""
        if file.attachment.kind == PHOTO:
            server = await self.call("photos.getMessagesUploadServer", peer_id=peer)
            posted = await self._post(str(server["upload_url"]), "photo", file)
            saved = await self.call(
                "photos.saveMessagesPhoto",
                photo=posted.get("photo", ""),
                server=posted.get("server", ""),
                hash=posted.get("hash", ""),
            )
            return attachment_name("photo", saved[0])
        server = await self.call("docs.getMessagesUploadServer", type="doc", peer_id=peer)
        posted = await self._post(str(server["upload_url"]), "file", file)
        saved = await self.call("docs.save", file=posted.get("file", ""), title=file.name)
        return attachment_name("doc", saved["doc"])

    async def _post(self, url: str, field: str, file: OutgoingFile) -> dict[str, Any]:
        """The file posted to VK's upload server; its refusal is final (the same file would be
        refused again)."""
        response = await asyncio.to_thread(
            self.session.post,
            url,
            files={field: (file.name, file.content)},
            timeout=UPLOAD_TIMEOUT_S,
        )
        if 400 <= response.status_code < 500:
            reason = f"VK's upload server refused {file.name} (HTTP {response.status_code})"
            raise DeliveryError(reason, permanent=True)
        response.raise_for_status()
        try:
            answer = response.json()
        except ValueError:
            raise DeliveryError(
                f"VK's upload server answered {response.text[:200]!r}", permanent=False
            ) from None
        if not isinstance(answer, dict) or "error" in answer:
            why = answer.get("error") if isinstance(answer, dict) else answer
            raise DeliveryError(f"VK refused the file {file.name}: {why}", permanent=True)
        return answer

    async def fetch_file(self, network_file_id: str) -> bytes:
        """A customer's photo or document. VK's file addresses are signed and expire, so the
        message it came in is read again (messages.getById) for a fresh one."""
        message_id, _, name = network_file_id.partition(":")
        if not message_id.isdigit() or not name:
            raise LookupError(f"VK attachment {network_file_id} was stored without its message")
        try:
            found = await self.call(
                "messages.getById", message_ids=message_id, group_id=self.group_id
            )
        except ApiError as exc:
            raise LookupError(f"VK error {exc.code}: {exc.error.get('error_msg', '')}") from exc
        items = found.get("items") or [{}]
        url = file_url(items[0], name)
        if url is None:
            raise LookupError("VK no longer has this attachment")
        try:
            content = await self.downloads.fetch(url)
        except LookupError as exc:
            raise LookupError(f"VK: {exc}") from None
        return content

    # -- receiving --------------------------------------------------------------------------

    async def poll(
        self, sink: InboundSink, stop: asyncio.Event, position: PollPosition | None = None
    ) -> None:
        # VK hands out only events after the ts a poller holds: one that starts afresh would miss
        # what was written while none ran, so it goes on from the last one's position.
        if position is not None and self.ts is None:
            self.ts = await _load_position(position)
        delay = 1.0
        while not stop.is_set():
            try:
                if self.server is None:
                    await self._long_poll_server(keep_ts=True)
                reply = await self._check(stop)
                if reply is not None:
                    await self._handle_reply(reply, sink)
                    if position is not None and self.ts is not None:
                        await _save_position(position, self.ts)
                delay = 1.0
            except (ApiError, ApiHttpError, requests.RequestException) as exc:
                log.warning("vk polling: %s; retrying in %.0f s", exc, delay)
                await pause(stop, delay)
                delay = min(delay * 2, 60.0)
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                log.warning("vk polling: %r; retrying in %.0f s", exc, delay)
                await pause(stop, delay)
                delay = min(delay * 2, 60.0)

    async def _handle_reply(self, reply: dict[str, Any], sink: InboundSink) -> None:
        """One a_check answer; `failed` as VK's SDKs handle it (docs/networks.md 2.2)."""
        failed = reply.get("failed")
        if failed == 1:
            self.ts = str(reply["ts"])  # events before it are lost; go on from here
        elif failed == 2:
            await self._long_poll_server(keep_ts=True)
        elif failed == 3:
            await self._long_poll_server(keep_ts=False)
        elif failed is not None:
            raise ValueError(f"unknown long poll failure {failed}")
        else:
            updates = [VkUpdate.model_validate(u) for u in reply.get("updates", [])]
            await self._accept(updates, sink)
            self.ts = str(reply["ts"])

    async def _long_poll_server(self, *, keep_ts: bool) -> None:
        found = await self.call("groups.getLongPollServer", group_id=self.group_id)
        self.server, self.key = str(found["server"]), str(found["key"])
        if not keep_ts or self.ts is None:
            self.ts = str(found["ts"])

    async def _check(self, stop: asyncio.Event) -> dict[str, Any] | None:
        """One a_check, or None when `stop` came first."""
        assert self.server is not None
        params = {
            "act": "a_check",
            "key": self.key or "",
            "ts": self.ts or "",
            "wait": self.poll_wait_s,
        }
        timeout = aiohttp.ClientTimeout(total=self.poll_wait_s + 10)
        request = asyncio.ensure_future(
            self._get_json(self._client(), self.server, params, timeout)
        )
        stopping = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait({request, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if not request.done():
            request.cancel()
            return None
        return request.result()

    @staticmethod
    async def _get_json(
        http: aiohttp.ClientSession,
        url: str,
        params: dict[str, Any],
        limit: aiohttp.ClientTimeout,
    ) -> dict[str, Any]:
        async with http.get(url, params=params, timeout=limit) as response:
            response.raise_for_status()
            body = await response.json(content_type=None)
        if not isinstance(body, dict):
            raise ValueError(f"long poll answered {body!r}")
        return body

    async def _accept(self, updates: Sequence[VkUpdate], sink: InboundSink) -> None:
        mine = [u for u in updates if u.group_id == self.group_id]
        await self._learn_names(mine)
        await self._learn_posts(mine)
        inbound = []
        for update in mine:
            try:
                message: InboundMessage | Unreadable | None = to_inbound(
                    update, self._names, self._posts
                )
            except ValueError as exc:  # pydantic's ValidationError is one
                log.error("vk event %s is malformed (%s); dead-lettered", update.event_id, exc)
                message = Unreadable(
                    network=Network.VK, reason=str(exc), payload=update.model_dump_json()
                )
            if message is not None:
                inbound.append(message)
        if inbound:
            await sink(inbound)
        for update in mine:
            if update.type == "message_event":
                await self._answer_button(update.object)

    async def _learn_names(self, updates: Sequence[VkUpdate]) -> None:
        """Names of authors not seen before, in one users.get; a failure only leaves them out."""
        unknown: set[int] = set()
        for update in updates:
            try:
                user = author_id(update)
            except ValidationError:
                continue
            if user is not None and user > 0 and user not in self._names:
                unknown.add(user)
        if not unknown:
            return
        try:
            found = await self.call("users.get", user_ids=",".join(map(str, sorted(unknown))))
        except (ApiError, ApiHttpError, requests.RequestException) as exc:
            log.info("vk: users.get: %s", exc)
            return
        for user in found:
            name = f"{user.get('first_name', '')} {user.get('last_name', '')}".strip()
            self._names[int(user["id"])] = name[:255] or str(user["id"])

    async def _learn_posts(self, updates: Sequence[VkUpdate]) -> None:
        """Texts of the wall posts new comments are under, in one wall.getById; a failure only
        leaves them out (the thread still links to the post)."""
        wanted = {t for u in updates if (t := wall_post(u)) and t not in self._posts}
        if not wanted:
            return
        try:
            found = await self.call("wall.getById", posts=",".join(w[4:] for w in sorted(wanted)))
        except (ApiError, ApiHttpError, requests.RequestException) as exc:
            log.info("vk: wall.getById: %s", exc)
            return
        # 5.199 answers {"items": [...]}, older versions the list itself (docs/networks.md 2.7)
        posts = found.get("items", []) if isinstance(found, dict) else found
        for post in posts if isinstance(posts, list) else ():
            if isinstance(post, dict) and isinstance(post.get("id"), int):
                thread = f"wall{post.get('owner_id')}_{post['id']}"
                self._posts[thread] = str(post.get("text") or "")[:MAX_TEXT_CHARS]

    async def _answer_button(self, event: dict[str, Any]) -> None:
        """Stops the spinner on the customer's button; a stale event is not worth an error."""
        try:
            await self.call(
                "messages.sendMessageEventAnswer",
                event_id=event["event_id"],
                user_id=event["user_id"],
                peer_id=event["peer_id"],
            )
        except (ApiError, ApiHttpError, requests.RequestException, KeyError) as exc:
            log.info("vk: sendMessageEventAnswer: %s", exc)

    def webhook_routes(self, sink: InboundSink) -> Sequence[web.RouteDef]:
        if not self.callback_secret:
            return []
        secret = self.callback_secret.encode()

        async def receive(request: web.Request) -> web.Response:
            try:
                body = await request.json()
                if not isinstance(body, dict):
                    raise ValueError("the body must be a JSON object")
                update = VkUpdate.model_validate(body)
            except (ValueError, RecursionError, ValidationError) as exc:
                return web.json_response({"error": f"not a VK event: {exc}"}, status=400)
            if update.group_id != self.group_id:
                return web.json_response({"error": "another community"}, status=403)
            if update.type == "confirmation":
                if not self.confirmation:
                    return web.json_response({"error": "no confirmation string set"}, status=403)
                return web.Response(text=self.confirmation)
            given = str(body.get("secret", "")).encode()
            if not hmac.compare_digest(given, secret):
                return web.json_response({"error": "bad secret"}, status=403)
            # A failure here answers 500, so VK delivers the event again.
            await self._accept([update], sink)
            return web.Response(text="ok")

        return [web.post(WEBHOOK_PATH, receive)]


def random_id(idempotency_key: str) -> int:
    """A stable, positive 31-bit int per key: VK drops a second send with the same random_id."""
    digest = hashlib.sha256(idempotency_key.encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF or 1


def keyboard(buttons: Sequence[Button]) -> str | None:
    """Our buttons as an inline keyboard of callback buttons (a press is a message_event),
    five to a row, VK's most."""
    if not buttons:
        return None
    cells = [
        {
            "action": {
                "type": "callback",
                "label": b.label,
                "payload": json.dumps({BUTTON_KEY: b.data}, ensure_ascii=False),
            }
        }
        for b in buttons
    ]
    rows = [cells[i : i + 5] for i in range(0, len(cells), 5)]
    return json.dumps({"inline": True, "buttons": rows}, ensure_ascii=False)


def split_text(text: str) -> list[str]:
    """VK takes at most 9000 characters a message: longer replies go in several."""
    return [text[i : i + MAX_MESSAGE_CHARS] for i in range(0, len(text), MAX_MESSAGE_CHARS)]


async def _load_position(position: PollPosition) -> str | None:
    try:
        return await position.load()
    except Exception as exc:
        log.warning("vk polling: last position unknown (%s); starting from now", exc)
        return None


async def _save_position(position: PollPosition, ts: str) -> None:
    try:
        await position.save(ts)
    except Exception as exc:
        # Only a restart in between would need it; the next save comes with the next events.
        log.warning("vk polling: position not saved: %s", exc)
