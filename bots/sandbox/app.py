"""`supportbridge run --sandbox`: with no network tokens, the Telegram emulator is mounted on the
product's own port, the Telegram channel talks to it, and `/sandbox/` lets a person write as a
customer and see what the bot and the agents answer."""

from __future__ import annotations

from importlib import resources

from aiohttp import web

from bots.emulators.telegram import TelegramEmulator
from bridge.settings import Settings

SANDBOX_TOKEN = "100000:sandbox-bot"
TELEGRAM_PREFIX = "/sandbox/telegram"


def sandbox_settings(settings: Settings) -> Settings:
    """The settings with the Telegram channel pointed at the mounted emulator."""
    base = f"http://{settings.http_host}:{settings.http_port}{TELEGRAM_PREFIX}"
    return settings.model_copy(update={"telegram_token": SANDBOX_TOKEN, "telegram_api_url": base})


def mount_sandbox(app: web.Application) -> TelegramEmulator:
    emulator = TelegramEmulator([SANDBOX_TOKEN])
    app.add_subapp(TELEGRAM_PREFIX, emulator.app)
    page = resources.files(__package__).joinpath("customer.html").read_text(encoding="utf-8")

    async def customer_page(_request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    app.router.add_get("/sandbox/", customer_page)
    return emulator
