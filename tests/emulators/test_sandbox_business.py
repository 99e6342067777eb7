"""The sandbox shows a chat with the demo brand's Telegram Business account: the brand's account
is connected to the sandbox bot, and the customer's page writes in that account's chat."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge.domain import Network
from emulators.sandbox.app import SANDBOX_TOKEN, mount_sandbox


async def test_the_page_offers_the_brands_business_chat_when_telegram_is_emulated() -> None:
    app = web.Application()
    sandbox = mount_sandbox(app, [Network.TELEGRAM])

    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        page = await (await client.get("/sandbox/")).text()

    assert sandbox.business
    assert 'data-networks="telegram,telegram-business,webchat"' in page
    assert f'data-business="{sandbox.business}"' in page


async def test_a_customer_on_the_page_writes_to_the_business_account_and_the_bot_gets_it() -> None:
    app = web.Application()
    sandbox = mount_sandbox(app, [Network.TELEGRAM])
    business = f"/sandbox/telegram/_emulator/business/{sandbox.business}/users/7"

    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        written = await client.post(
            f"{business}/messages", json={"text": "hi", "first_name": "Ivan"}
        )
        updates = await (
            await client.get(f"/sandbox/telegram/bot{SANDBOX_TOKEN}/getUpdates")
        ).json()
        replies = await (await client.get(f"{business}/bot-messages")).json()

    assert written.status == 200
    kinds = [next(k for k in u if k != "update_id") for u in updates["result"]]
    # the demo channel post's forward into its discussion group comes between
    assert kinds == ["business_connection", "message", "business_message"]
    assert updates["result"][2]["business_message"]["business_connection_id"] == sandbox.business
    assert replies == {"ok": True, "result": []}


def test_no_business_chat_without_telegram() -> None:
    sandbox = mount_sandbox(web.Application(), [Network.VK])

    assert sandbox.business is None
