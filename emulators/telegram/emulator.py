"""The emulator as one object: the bots' state, the Bot API served over HTTP at
`/bot{token}/{method}` and `/file/bot{token}/{file_path}`, the customer side (inherited), the
customer endpoints and the fault plan."""

from __future__ import annotations

import random
from collections.abc import Iterable

from aiohttp import web

from emulators.control import PREFIX, emulator_app
from emulators.faults import Fault, FaultPlan, fault_after_call, fault_before_call
from emulators.signals import Signal
from emulators.telegram.answers import ApiError, fault_error, ok_response
from emulators.telegram.customer_routes import customer_routes
from emulators.telegram.customer_side import CustomerSide
from emulators.telegram.media import MAX_UPLOAD_BYTES, TOO_LARGE
from emulators.telegram.methods import BotApi
from emulators.telegram.params import read_params
from emulators.telegram.state import Bot, is_token, new_bots

DEFAULT_TOKEN = "123456:ABC-emulator"


class TelegramEmulator(CustomerSide):
    """State of the emulated Bot API for the configured bot tokens; `app` is the aiohttp app."""

    def __init__(
        self,
        tokens: Iterable[str] = (DEFAULT_TOKEN,),
        *,
        seed: int = 0,
        webhook_retry_delay: float = 1.0,
        webhook_retry_cap: float = 60.0,
        webhook_timeout: float = 10.0,
        first_message_id: int = 1,
    ) -> None:
        """`first_message_id`: where each chat's message numbers start (a product that keeps
        what it saw needs them not to repeat across the emulator's restarts)."""
        rng = random.Random(seed)
        self.faults = FaultPlan(seed)
        bot_sent = Signal()
        super().__init__(new_bots(tokens, rng), rng, bot_sent, first_message_id)
        self._api = BotApi(
            bot_sent,
            webhook_retry_delay=webhook_retry_delay,
            webhook_retry_cap=webhook_retry_cap,
            webhook_timeout=webhook_timeout,
        )
        self.app = emulator_app(
            [
                web.get("/bot{token}/{method}", self._handle_method),
                web.post("/bot{token}/{method}", self._handle_method),
                web.get("/file/bot{token}/{file_path:.+}", self._handle_file),
                web.get(f"{PREFIX}/files/{{file_id}}", self._customer_file),
                *customer_routes(self, PREFIX),
            ],
            self.faults,
            self.close,
            max_upload_bytes=MAX_UPLOAD_BYTES,
        )

    async def close(self) -> None:
        """Answer hanging long polls now (so the server does not wait out their timeouts), and
        stop the webhook pushes."""
        for bot in self._bots.values():
            bot.end_poll(None)
        await self._api.webhooks.close()

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        fault: Fault | None = None
        try:
            bot = self._authorise(request.match_info["token"])
            name = request.match_info["method"].lower()
            method = self._api.method(name)
            fault = self.faults.next_fault(name)
            if (dropped := await fault_before_call(fault, request, fault_error)) is not None:
                return dropped
            answer = ok_response(await method(bot, await read_params(request)))
        except ApiError as exc:
            answer = exc.response()
        except web.HTTPRequestEntityTooLarge:
            answer = ApiError(413, TOO_LARGE).response()
        return fault_after_call(fault, request, answer)

    def _authorise(self, token: str) -> Bot:
        if not is_token(token):
            raise ApiError(401, "Unauthorized: invalid token specified")
        bot = self._bots.get(token)
        if bot is None:
            raise ApiError(401, "Unauthorized")
        return bot

    async def _handle_file(self, request: web.Request) -> web.Response:
        bot = self._bots.get(request.match_info["token"])
        path = request.match_info["file_path"]
        stored = next((f for f in bot.files.values() if f.file_path == path), None) if bot else None
        if stored is None:
            return ApiError(404, "Not Found").response()
        return web.Response(body=stored.data, content_type=stored.mime_type)

    async def _customer_file(self, request: web.Request) -> web.Response:
        """A file a bot sent, as the customer's app downloads it (by its file_id)."""
        file_id = request.match_info["file_id"]
        stored = next((b.files[file_id] for b in self._bots.values() if file_id in b.files), None)
        if stored is None:
            return web.json_response({"ok": False, "description": "no such file"}, status=404)
        return web.Response(body=stored.data, content_type=stored.mime_type)
