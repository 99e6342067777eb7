"""Pushing a bot's updates to its webhook: one by one, in order (as if max_connections were 1),
a failed one retried with doubling back-off or after the receiver's Retry-After, and a method
call the receiver answered with handed back to the Bot API to run."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable

import aiohttp

from emulators.pushes import Backoff, PushClient, stop
from emulators.telegram.state import JSON, Bot, Webhook

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_WEBHOOK_RETRY_AFTER = 3600  # TBA WebhookActor caps a receiver's Retry-After here

ReplyRunner = Callable[[Bot, JSON], Awaitable[None]]


class WebhookPushes:
    """The pushers of the bots that have a webhook; `run_reply` runs a webhook reply's method."""

    def __init__(
        self, run_reply: ReplyRunner, *, retry_delay: float, retry_cap: float, timeout: float
    ) -> None:
        self._run_reply = run_reply
        self._retry_delay = retry_delay
        self._retry_cap = retry_cap
        self._timeout = timeout
        self._client = PushClient()
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def start(self, bot: Bot, hook: Webhook) -> None:
        """Push `bot`'s updates to `hook` from now on; `stop` its previous pusher first."""
        self._tasks[bot.token] = asyncio.create_task(self._push_updates(bot, hook))

    async def stop(self, bot: Bot) -> None:
        await stop(self._tasks.pop(bot.token, None))

    async def close(self) -> None:
        """Stop every pusher and close their HTTP session."""
        while self._tasks:
            await stop(self._tasks.popitem()[1])
        await self._client.close()

    async def _push_updates(self, bot: Bot, hook: Webhook) -> None:
        """Deliver queued updates one by one; retry a failed one with doubling back-off."""
        backoff = Backoff(self._retry_delay, self._retry_cap)
        while True:
            await bot.updates_added.wait_until(lambda: bool(bot.updates))
            update = bot.updates[0]
            error, retry_after = await self._post_update(bot, hook, update)
            if error is None:
                bot.confirm(update["update_id"] + 1)
                backoff.reset()
                continue
            hook.last_error_date = int(time.time())
            hook.last_error_message = error
            await backoff.wait(retry_after)

    async def _post_update(
        self, bot: Bot, hook: Webhook, update: JSON
    ) -> tuple[str | None, int | None]:
        """POST one update: (None, None) on 2xx, else (the error, the receiver's Retry-After)."""
        headers = {"Content-Type": "application/json"}
        if hook.secret_token:
            headers[SECRET_HEADER] = hook.secret_token
        try:
            async with self._client.session().post(
                hook.url,
                data=json.dumps(update),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as response:
                if 200 <= response.status < 300:
                    await self._run_reply_method(bot, response)
                    return None, None
                error = f"Wrong response from the webhook: {response.status} {response.reason}"
                retry_after = _int_or_none(response.headers.get("Retry-After"))
                if retry_after is not None:
                    retry_after = min(max(retry_after, 1), MAX_WEBHOOK_RETRY_AFTER)
                return error, retry_after
        except TimeoutError:
            return "Read timeout expired", None
        except aiohttp.ClientConnectorError:
            return "Connection refused", None
        except aiohttp.ClientError as exc:
            return f"Failed to deliver the update: {exc.__class__.__name__}", None

    async def _run_reply_method(self, bot: Bot, response: aiohttp.ClientResponse) -> None:
        """Run the method call a webhook answered with (JSON, or multipart as aiogram sends)."""
        try:
            params = await _reply_params(response)
        except (ValueError, aiohttp.ClientError) as exc:
            log.info("unreadable webhook reply ignored: %r", exc)  # the update was delivered
            return
        await self._run_reply(bot, params)


async def _reply_params(response: aiohttp.ClientResponse) -> JSON:
    params: JSON = {}
    if response.content_type == "application/json":
        body = await response.json()
        params = body if isinstance(body, dict) else {}
    elif response.content_type.startswith("multipart/"):
        reader = aiohttp.MultipartReader(response.headers, response.content)
        while (part := await reader.next()) is not None:
            if isinstance(part, aiohttp.BodyPartReader) and part.name:
                params[part.name] = await part.text()
    return params


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
