"""Agents open the files customers send: a customer writes to the emulated Telegram with aiogram
polling it, the pipeline stores the message, and the signed-in agent opens the attachment from
the conversation page (or the API); the file comes from Telegram at that moment."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.telegram import TelegramChannel
from bridge.bus.memory import MemoryBus
from bridge.domain import Attachment, Direction, Network
from bridge.inbox.agents import add_agent
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations, messages
from bridge.web.app import add_inbox
from bridge.web.server import make_app
from emulators.telegram import MAX_DOWNLOAD_SIZE, TelegramEmulator
from tests.factories import entries, inbound
from tests.web_client import PASSWORD, sign_in

TOKEN = "123456:ABC-attachments"
CUSTOMER = 701
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(256)) * 40
ATTACHMENT_LINK = re.compile(r'href="(/c/\d+/messages/\d+/attachments/\d+)"')


@dataclass
class Desk:
    """An agent signed in to the inbox, and a customer on the emulated Telegram."""

    telegram: TelegramEmulator
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    pipeline: Pipeline

    async def customer_sends(self, count: int = 1) -> int:
        """Waits until the customer's `count` messages are stored; their conversation's id."""
        query = sa.select(sa.func.count()).where(messages.c.direction == Direction.INBOUND)
        for _ in range(200):
            async with self.engine.connect() as conn:
                if (await conn.execute(query)).scalar_one() >= count:
                    found = await conn.execute(
                        sa.select(conversations.c.id).where(
                            conversations.c.chat_id == str(CUSTOMER)
                        )
                    )
                    return int(found.scalar_one())
            await asyncio.sleep(0.05)
        raise AssertionError(f"fewer than {count} customer messages stored")

    async def links(self, conversation_id: int) -> list[str]:
        page = await self.client.get(f"/c/{conversation_id}")
        return ATTACHMENT_LINK.findall(await page.text())

    async def open(self, conversation_id: int) -> ClientResponse:
        """The last attachment link of the conversation page, followed."""
        return await self.client.get((await self.links(conversation_id))[-1])


@pytest.fixture
async def desk(
    engine: AsyncEngine, settings: Settings, memory_bus: MemoryBus
) -> AsyncIterator[Desk]:
    telegram = TelegramEmulator([TOKEN])
    telegram.customer(CUSTOMER, first_name="Olga", language_code="ru")
    api = TestServer(telegram.app, host="127.0.0.1")
    await api.start_server()
    channel = TelegramChannel(TOKEN, api_url=str(api.make_url("")).rstrip("/"), poll_timeout_s=1)
    pipeline = Pipeline(engine, memory_bus, settings, responder=None)
    app = make_app()
    add_inbox(app, engine, memory_bus, settings, {Network.TELEGRAM: channel.fetch_file})
    client = TestClient(TestServer(app))
    await client.start_server()
    agent = await add_agent(engine, "anna", PASSWORD, display_name="Anna")
    await sign_in(client, agent)
    stop = asyncio.Event()
    tasks = [
        asyncio.ensure_future(channel.poll(memory_bus.publish_inbound, stop)),
        asyncio.ensure_future(
            memory_bus.consume_inbound("core", pipeline.handle, batch_size=50, stop=stop)
        ),
    ]
    yield Desk(telegram, client, engine, pipeline)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 10)
    await channel.close()
    await client.close()
    await api.close()


async def test_an_agent_opens_the_photo_a_customer_sent_and_sees_it_in_the_browser(
    desk: Desk,
) -> None:
    desk.telegram.write_photo(CUSTOMER, JPEG, caption="Вот так мигает роутер")
    conversation_id = await desk.customer_sends()

    response = await desk.open(conversation_id)

    assert response.status == 200
    assert response.content_type == "image/jpeg"
    assert response.headers["Content-Disposition"] == "inline"
    assert await response.read() == JPEG


async def test_a_document_is_downloaded_under_the_name_the_customer_gave_it(desk: Desk) -> None:
    contract = b"%PDF-1.4 the contract"
    desk.telegram.write_document(
        CUSTOMER, contract, file_name="договор №5.pdf", mime_type="application/pdf"
    )
    conversation_id = await desk.customer_sends()

    response = await desk.open(conversation_id)

    assert response.status == 200
    assert await response.read() == contract
    disposition = response.headers["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert (
        "filename*=UTF-8''%D0%B4%D0%BE%D0%B3%D0%BE%D0%B2%D0%BE%D1%80%20%E2%84%965.pdf"
        in disposition
    )


async def test_a_web_page_a_customer_sent_is_only_ever_downloaded_never_shown(desk: Desk) -> None:
    page = b"<html><script>fetch('/api/me')</script></html>"
    desk.telegram.write_document(CUSTOMER, page, file_name="invoice.html", mime_type="text/html")
    conversation_id = await desk.customer_sends()

    response = await desk.open(conversation_id)

    assert response.content_type == "application/octet-stream"
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert response.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_api_hands_out_the_same_file(desk: Desk) -> None:
    desk.telegram.write_photo(CUSTOMER, JPEG)
    conversation_id = await desk.customer_sends()
    page_path = (await desk.links(conversation_id))[0]

    response = await desk.client.get(page_path.replace("/c/", "/api/conversations/", 1))

    assert response.status == 200
    assert await response.read() == JPEG


async def test_a_file_telegram_will_not_hand_over_is_a_502_that_says_why(desk: Desk) -> None:
    desk.telegram.write_document(
        CUSTOMER,
        b"\0" * (MAX_DOWNLOAD_SIZE + 1),
        file_name="backup.zip",
        mime_type="application/zip",
    )
    conversation_id = await desk.customer_sends()

    response = await desk.open(conversation_id)

    assert response.status == 502
    assert "file is too big" in await response.text()
    assert (await desk.client.get(f"/c/{conversation_id}")).status == 200


async def test_an_attachment_of_a_network_whose_files_cannot_be_fetched_here_says_so(
    desk: Desk,
) -> None:
    photo = Attachment(kind="photo", network_file_id="photo-1_457239017")
    message = inbound(CUSTOMER, 1, "фото", network=Network.VK).model_copy(
        update={"attachments": [photo]}
    )
    await desk.pipeline.handle(entries(message))
    async with desk.engine.connect() as conn:
        conversation_id = (await conn.execute(sa.select(conversations.c.id))).scalar_one()

    response = await desk.open(conversation_id)

    assert response.status == 502
    assert "files of vk cannot be opened from here" in await response.text()


@pytest.mark.parametrize("path", ["/attachments/2", "/attachments/0", "/attachments/x"])
async def test_an_attachment_the_message_does_not_have_is_not_found(desk: Desk, path: str) -> None:
    desk.telegram.write_photo(CUSTOMER, JPEG)
    conversation_id = await desk.customer_sends()
    link = (await desk.links(conversation_id))[0]

    response = await desk.client.get(link.replace("/attachments/1", path))

    assert response.status == 404


async def test_a_message_is_not_reached_through_another_conversations_path(desk: Desk) -> None:
    desk.telegram.write_photo(CUSTOMER, JPEG)
    conversation_id = await desk.customer_sends()
    link = (await desk.links(conversation_id))[0]

    response = await desk.client.get(
        link.replace(f"/c/{conversation_id}/", f"/c/{conversation_id + 1}/")
    )

    assert response.status == 404


async def test_a_signed_out_visitor_gets_no_file(desk: Desk) -> None:
    desk.telegram.write_photo(CUSTOMER, JPEG)
    conversation_id = await desk.customer_sends()
    link = (await desk.links(conversation_id))[0]
    desk.client.session.cookie_jar.clear()

    response = await desk.client.get(link, allow_redirects=False)

    assert response.status in (303, 401)
    assert await response.read() != JPEG
