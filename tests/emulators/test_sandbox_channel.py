"""The sandbox's Telegram channel: a demo post in the brand's channel, forwarded into its
discussion group, that a customer on the page comments on; the bot gets the comment."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bridge.domain import Network
from emulators.sandbox.app import DEMO_POST, SANDBOX_TOKEN, mount_sandbox


async def test_a_customer_on_the_page_comments_on_the_demo_post_and_the_bot_gets_it() -> None:
    app = web.Application()
    mount_sandbox(app, [Network.TELEGRAM])
    emulator = "/sandbox/telegram/_emulator"

    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        (forward,) = (await (await client.get(f"{emulator}/discussion")).json())["result"]
        written = await client.post(
            f"{emulator}/users/7/comments",
            json={"post_id": forward["message_id"], "text": "Nice", "first_name": "Ivan"},
        )
        updates = await (
            await client.get(f"/sandbox/telegram/bot{SANDBOX_TOKEN}/getUpdates")
        ).json()

    assert (forward["text"], forward["is_automatic_forward"]) == (DEMO_POST, True)
    assert written.status == 200
    comment = updates["result"][-1]["message"]
    assert (comment["text"], comment["message_thread_id"]) == ("Nice", forward["message_id"])
    assert comment["reply_to_message"]["message_id"] == forward["message_id"]
