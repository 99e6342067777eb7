"""`supportbridge run --sandbox`: every network without a token is emulated on the product's own
port (Telegram's Bot API, VK's API and Bots Long Poll, Messenger's and Instagram's Send API with
their signed webhooks to the product's /webhooks/facebook and /webhooks/instagram), the channels
talk to those emulators, and `/sandbox/` lets a person write as a customer on any of them, or on
the web chat of a demo brand page (`/sandbox/webchat/`), and see what the bot and the agents
answer."""

from __future__ import annotations

import html
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from importlib import resources

import aiohttp
from aiohttp import web

from bridge.domain import Network
from bridge.settings import Settings
from emulators.control import PREFIX
from emulators.facebook import FacebookEmulator
from emulators.instagram import InstagramEmulator
from emulators.telegram import TelegramEmulator
from emulators.vk import VkEmulator

log = logging.getLogger(__name__)

SANDBOX_TOKEN = "100000:sandbox-bot"
BRAND_ACCOUNT = 100001  # the demo brand's Telegram Business account, connected to the bot
VK_TOKEN = "sandbox-vk-community-token"
DEMO_POST = (
    "Новая коллекция уже в магазинах! Вопросы о размерах и доставке задавайте в комментариях. / "
    "The new collection is in the shops! Ask about sizes and delivery in the comments."
)
VK_GROUP_ID = 1
FACEBOOK_PAGE_TOKEN = "EAAB-sandbox-page-token"
FACEBOOK_APP_SECRET = "sandbox-app-secret"
FACEBOOK_VERIFY_TOKEN = "sandbox-verify-token"
INSTAGRAM_PAGE_TOKEN = "EAAB-sandbox-instagram-page-token"
INSTAGRAM_APP_SECRET = "sandbox-instagram-app-secret"
INSTAGRAM_VERIFY_TOKEN = "sandbox-instagram-verify-token"
PREFIXES = {
    Network.TELEGRAM: "/sandbox/telegram",
    Network.VK: "/sandbox/vk",
    Network.FACEBOOK: "/sandbox/facebook",
    Network.INSTAGRAM: "/sandbox/instagram",
}
# The networks that push to the product's webhook, with the verify token it answers.
VERIFY_TOKENS = {
    Network.FACEBOOK: FACEBOOK_VERIFY_TOKEN,
    Network.INSTAGRAM: INSTAGRAM_VERIFY_TOKEN,
}
TELEGRAM_PREFIX = PREFIXES[Network.TELEGRAM]


def emulated_networks(configured: list[Network]) -> list[Network]:
    """The networks the sandbox emulates: those without a token of their own (`configured`)."""
    return [network for network in PREFIXES if network not in configured]


def sandbox_settings(settings: Settings, networks: list[Network]) -> Settings:
    """The settings with each emulated network's channel pointed at its emulator."""
    base = f"http://{settings.http_host}:{settings.http_port}"
    update: dict[str, object] = {}
    if Network.TELEGRAM in networks:
        update |= {"telegram_token": SANDBOX_TOKEN, "telegram_api_url": base + TELEGRAM_PREFIX}
    if Network.VK in networks:
        # no callback secret: the channel long-polls the emulator
        update |= {
            "vk_token": VK_TOKEN,
            "vk_group_id": VK_GROUP_ID,
            "vk_api_url": base + PREFIXES[Network.VK],
            "vk_callback_secret": None,
        }
    if Network.FACEBOOK in networks:
        update |= {
            "facebook_page_token": FACEBOOK_PAGE_TOKEN,
            "facebook_app_secret": FACEBOOK_APP_SECRET,
            "facebook_verify_token": FACEBOOK_VERIFY_TOKEN,
            "facebook_api_url": base + PREFIXES[Network.FACEBOOK],
        }
    if Network.INSTAGRAM in networks:
        update |= {
            "instagram_page_token": INSTAGRAM_PAGE_TOKEN,
            "instagram_app_secret": INSTAGRAM_APP_SECRET,
            "instagram_verify_token": INSTAGRAM_VERIFY_TOKEN,
            "instagram_api_url": base + PREFIXES[Network.INSTAGRAM],
        }
    return settings.model_copy(update=update)


class Sandbox:
    """The emulators of the networks without a token, and the customer's pages."""

    def __init__(self, networks: list[Network]) -> None:
        self.networks = networks
        # The product keeps what it stored across restarts, so the emulators' message ids must
        # not start again where the last run's did (they would be dropped as duplicates).
        first = int(time.time() * 1000)
        self.telegram = (
            TelegramEmulator([SANDBOX_TOKEN], first_message_id=first)
            if Network.TELEGRAM in networks
            else None
        )
        # The same connection id on every run (the emulator's ids are seeded), so a customer's
        # business chat stays one conversation across restarts.
        self.business = (
            self.telegram.connect_business(BRAND_ACCOUNT, first_name="Demo brand")
            if self.telegram is not None
            else None
        )
        self.vk = (
            VkEmulator(group_id=VK_GROUP_ID, token=VK_TOKEN, first_message_id=first)
            if Network.VK in networks
            else None
        )
        if self.vk is not None:  # a post for the customer to comment on: a public thread
            self.vk.post(DEMO_POST)
        if self.telegram is not None:  # the same in the brand's channel, with its discussion
            self.telegram.post_to_channel(DEMO_POST)
        self.facebook = (
            FacebookEmulator(FACEBOOK_PAGE_TOKEN, app_secret=FACEBOOK_APP_SECRET, seed=first)
            if Network.FACEBOOK in networks
            else None
        )
        self.instagram = (
            # its own seed: the two would otherwise hand out the same mids
            InstagramEmulator(INSTAGRAM_PAGE_TOKEN, app_secret=INSTAGRAM_APP_SECRET, seed=first + 1)
            if Network.INSTAGRAM in networks
            else None
        )
        for account in (self.facebook, self.instagram):  # a post (a media) to comment on
            if account is not None:
                account.comments.add_post(DEMO_POST)

    def mount(self, app: web.Application) -> None:
        emulators = {
            Network.TELEGRAM: self.telegram,
            Network.VK: self.vk,
            Network.FACEBOOK: self.facebook,
            Network.INSTAGRAM: self.instagram,
        }
        for network, emulator in emulators.items():
            if emulator is not None:
                emulator.app.middlewares.append(lent_origin_guard)
                app.add_subapp(PREFIXES[network], emulator.app)
        files = resources.files(__package__)
        # the page offers the emulated networks, a chat with the demo brand's Telegram Business
        # account when Telegram is one, and the web chat, which is always there
        business = ["telegram-business"] if self.business is not None else []
        offered = ",".join([n.value for n in self.networks] + business + [Network.WEBCHAT.value])
        customer = (
            files.joinpath("customer.html")
            .read_text(encoding="utf-8")
            .replace("{{networks}}", html.escape(offered))
            .replace("{{business}}", html.escape(self.business or ""))
        )
        brand = files.joinpath("brand.html").read_text(encoding="utf-8")

        def page(text: str) -> Callable[[web.Request], Awaitable[web.Response]]:
            async def serve(_request: web.Request) -> web.Response:
                return web.Response(text=text, content_type="text/html", charset="utf-8")

            return serve

        app.router.add_get("/sandbox/", page(customer))
        app.router.add_get("/sandbox/webchat/", page(brand))

    async def start(self, base_url: str, webhook_paths: Mapping[Network, str]) -> None:
        """Once the port listens: the emulators serve the customers' files at its address, and
        Messenger's and Instagram's app is subscribed to the product's webhook (`webhook_paths`),
        as an operator does in Meta's dashboard (the GET verification with the verify token)."""
        base_url = base_url.rstrip("/")
        if self.vk is not None:
            self.vk.files.url = base_url + PREFIXES[Network.VK]
        pushing = {Network.FACEBOOK: self.facebook, Network.INSTAGRAM: self.instagram}
        for network, emulator in pushing.items():
            if emulator is None:
                continue
            emulator.files.url = base_url + PREFIXES[network]
            url = base_url + webhook_paths[network]
            try:
                await emulator.subscribe(url, VERIFY_TOKENS[network])
            except (ValueError, aiohttp.ClientError) as exc:
                log.warning(
                    "sandbox: the %s emulator could not subscribe to %s: %s", network, url, exc
                )


@web.middleware
async def lent_origin_guard(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """The emulators are served on the product's own origin: nothing they serve may run there as
    a page (a customer's HTML "file" would act with a signed-in admin's cookies), and the routes
    that play customers or read every reply answer this machine only."""
    if PREFIX in request.path and not _from_this_machine(request):
        return web.json_response(
            {"ok": False, "description": "the sandbox's customers play from this machine only"},
            status=403,
        )
    response = await handler(request)
    response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'; img-src 'self'"
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.content_type not in ("application/json", "text/plain") and response.status == 200:
        response.headers["Content-Disposition"] = "attachment"
    return response


def _from_this_machine(request: web.Request) -> bool:
    try:
        return ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        return False


def mount_sandbox(app: web.Application, networks: list[Network]) -> Sandbox:
    """Mount the emulators of `networks` on the product's app."""
    sandbox = Sandbox(networks)
    sandbox.mount(app)
    return sandbox
