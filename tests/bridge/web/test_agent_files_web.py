"""An agent sends files from the inbox's composer and through the REST API: the network's limits
are checked before anything is kept (413 or 400 with the reason), the reply carries the files
to its network's sender, and the agent sees what they sent."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.facebook.channel import FILE_LIMITS as MESSENGER
from bots.telegram.channel import FILE_LIMITS as TELEGRAM
from bots.vk.channel import FILE_LIMITS as VK
from bridge.bus.memory import MemoryBus
from bridge.domain import Network
from bridge.inbox.agents import AgentInfo, add_agent
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations, kept_files, messages
from bridge.web.app import add_inbox
from bridge.web.auth import issue_api_token
from tests.factories import drain_outbound, entries, inbound
from tests.web_client import PASSWORD, sign_in

PDF = b"%PDF-1.4\n%%EOF\n"
MB = 1024 * 1024


def photo() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (400, 300), "#e0312b").save(buffer, format="PNG")
    return buffer.getvalue()


@dataclass
class Inbox:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    bus: MemoryBus
    pipeline: Pipeline
    agent: AgentInfo
    token: str

    async def conversation(self, network: Network = Network.TELEGRAM) -> int:
        await self.pipeline.handle(entries(inbound(9, 1, "схема?", network=network)))
        async with self.engine.connect() as conn:
            query = sa.select(conversations.c.id).where(conversations.c.network == network)
            return int((await conn.execute(query)).scalar_one())

    async def send_files(
        self, conversation: int, *files: tuple[str, bytes], text: str = ""
    ) -> aiohttp.ClientResponse:
        form = aiohttp.FormData(quote_fields=False)
        form.add_field("text", text)
        for name, content in files:
            form.add_field("files", content, filename=name)
        return await self.client.post(
            f"/api/conversations/{conversation}/files",
            data=form,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    async def rows(self, query: sa.Select[tuple[object, ...]]) -> list[tuple[object, ...]]:
        async with self.engine.connect() as conn:
            return [tuple(row) for row in await conn.execute(query)]


@pytest.fixture
async def inbox(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Inbox]:
    app = web.Application(client_max_size=MB)  # the product's app: 1 MB bodies elsewhere
    limits = {Network.TELEGRAM: TELEGRAM, Network.VK: VK, Network.FACEBOOK: MESSENGER}
    add_inbox(app, engine, memory_bus, settings, file_limits=limits)
    client = TestClient(TestServer(app))
    await client.start_server()
    agent = await add_agent(engine, "anna", PASSWORD)
    yield Inbox(
        client,
        engine,
        memory_bus,
        Pipeline(engine, memory_bus, settings, responder=None),
        agent,
        await issue_api_token(engine, agent.id, "crm"),
    )
    await client.close()


async def test_the_api_sends_a_photo_and_a_document_with_their_caption(inbox: Inbox) -> None:
    conversation = await inbox.conversation()
    picture = photo()

    response = await inbox.send_files(
        conversation, ("router.png", picture), ("договор.pdf", PDF), text="Вот схема"
    )
    [queued] = [m for m in drain_outbound(inbox.bus, Network.TELEGRAM) if m.attachments]
    kept = dict(await inbox.rows(sa.select(kept_files.c.key, kept_files.c.content)))

    assert response.status == 200, await response.text()
    assert queued.text == "Вот схема"
    described = [(a.kind, a.name, a.mime_type, a.size) for a in queued.attachments]
    assert described == [
        ("photo", "router.png", "image/png", len(picture)),
        ("document", "договор.pdf", "application/octet-stream", len(PDF)),
    ]
    assert [kept[a.network_file_id] for a in queued.attachments] == [picture, PDF]


async def test_a_file_the_network_does_not_take_is_refused_with_its_reason(inbox: Inbox) -> None:
    conversation = await inbox.conversation(Network.VK)

    response = await inbox.send_files(conversation, ("setup.exe", b"MZ\x90\x00"))

    assert response.status == 400
    assert (await response.json())["error"] == "setup.exe: VK does not take .exe files"
    assert await inbox.rows(sa.select(kept_files.c.key)) == []


async def test_a_file_larger_than_the_network_takes_is_refused_with_413(inbox: Inbox) -> None:
    conversation = await inbox.conversation(Network.FACEBOOK)

    response = await inbox.send_files(conversation, ("video.mp4", bytes(25 * MB + 1)))

    assert response.status == 413
    error = (await response.json())["error"]
    assert error == "video.mp4: file too large for Messenger: 25 MB max"
    assert await inbox.rows(sa.select(messages.c.id).where(messages.c.author_kind == "agent")) == []


async def test_files_larger_than_a_reply_carries_are_refused_before_they_are_read(
    inbox: Inbox,
) -> None:
    conversation = await inbox.conversation()

    response = await inbox.send_files(
        conversation, ("a.bin", bytes(30 * MB)), ("b.bin", bytes(30 * MB))
    )

    assert response.status == 413
    assert (await response.json())["error"] == "the files of one reply may have 50 MB together"


async def test_the_composer_sends_a_photo_and_the_conversation_shows_it(inbox: Inbox) -> None:
    conversation = await inbox.conversation()
    csrf = await sign_in(inbox.client, inbox.agent)
    picture = photo()
    form = aiohttp.FormData()
    form.add_field("csrf", csrf)
    form.add_field("text", "")
    form.add_field("files", picture, filename="router.png", content_type="image/png")

    sent = await inbox.client.post(f"/c/{conversation}/reply", data=form, allow_redirects=False)
    page = await (await inbox.client.get(f"/c/{conversation}")).text()
    [href] = re.findall(r'<img src="(/c/\d+/messages/\d+/attachments/1)"', page)
    opened = await inbox.client.get(href)

    assert (sent.status, sent.headers["Location"]) == (303, f"/c/{conversation}")
    assert (await opened.read(), opened.content_type) == (picture, "image/png")


async def test_a_form_whose_parts_are_malformed_is_refused_with_the_reason(inbox: Inbox) -> None:
    conversation = await inbox.conversation()
    boundary = "b0undary"
    # a part's header aiohttp cannot parse (a control character in the field's name)
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="\x16x"\r\n\r\n[]\r\n'
        f"--{boundary}--\r\n"
    ).encode()
    response = await inbox.client.post(
        f"/api/conversations/{conversation}/files",
        data=body,
        headers={
            "Authorization": f"Bearer {inbox.token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
        },
    )
    assert response.status == 400
    assert "malformed request body" in (await response.json())["error"]
