"""An agent's photos and documents, end to end on Telegram, VK and Facebook Messenger: checked
against the network's limits when the agent sends them, kept, uploaded by the network's client
library to its emulator the network's way, and seen by the customer; a network's refusal fails
the reply with its reason, and a passing failure is retried and delivers the file once."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from PIL import Image
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.channel import DeliveryError
from bridge.domain import DOCUMENT, PHOTO, Attachment, AuthorKind, DeliveryStatus, OutboundMessage
from bridge.inbox.outgoing_files import AgentFile, FileRefused
from bridge.settings import Settings
from bridge.store.kept_files import StoredFiles
from bridge.store.models import kept_files, messages
from tests.network_harness import NETWORKS, AnyNetwork, Bridge, open_bridge

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def picture(width: int = 640, height: int = 480, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "#3a7bd5").save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(params=list(NETWORKS))
async def bridge(
    request: pytest.FixtureRequest, engine: AsyncEngine, settings: Settings
) -> AsyncIterator[Bridge[AnyNetwork]]:
    net = NETWORKS[request.param]()
    async with open_bridge(net, engine, settings, None, net.receivers[0]) as opened:
        net.customer(801)
        await opened.customer_writes(801, "Пришлите, пожалуйста, схему")
        yield opened


async def test_a_photo_and_a_document_reach_the_customer_with_the_text_as_caption(
    bridge: Bridge[AnyNetwork],
) -> None:
    photo = picture()
    await bridge.agent_sends(
        801,
        "Вот схема подключения",
        AgentFile("router.png", photo, "image/png"),
        AgentFile("договор.pdf", PDF, "application/pdf"),
    )

    statuses = await bridge.settled_statuses()
    received = [f for sent in bridge.net.sent(801) for f in sent.files]
    texts = [sent.text for sent in bridge.net.sent(801)]

    assert statuses[-1] == ("Вот схема подключения", DeliveryStatus.SENT, None)
    assert [(f.kind, f.content) for f in received] == [("photo", photo), ("document", PDF)]
    assert received[1].name == "договор.pdf"
    assert "Вот схема подключения" in texts  # a caption, or the message the files follow


async def test_a_file_larger_than_the_network_takes_is_refused_before_anything_is_kept(
    bridge: Bridge[AnyNetwork],
) -> None:
    limit = bridge.net.channel.file_limits.file_bytes
    oversized = AgentFile("backup.zip", b"\0" * (min(limit, 50 * 1024 * 1024) + 1))

    with pytest.raises(FileRefused) as refused:
        await bridge.agent_sends(801, "архив", oversized)

    assert refused.value.too_large
    assert await bridge.rows(sa.select(kept_files.c.key)) == []
    assert await bridge.rows(sa.select(messages.c.id).where(messages.c.text == "архив")) == []


async def test_a_file_that_failed_to_go_is_sent_again_and_reaches_the_customer_once(
    bridge: Bridge[AnyNetwork],
) -> None:
    bridge.net.fail_next_file_send()
    photo = picture(fmt="JPEG")

    await bridge.agent_sends(801, "", AgentFile("photo.jpg", photo, "image/jpeg"))
    statuses = await bridge.settled_statuses()

    assert statuses[-1][1:] == (DeliveryStatus.SENT, None)
    assert bridge.sender.stats.retries == 1
    last = bridge.net.sent(801)[-1]
    assert [(f.kind, f.content) for f in last.files] == [("photo", photo)]
    assert last.text == ""  # a file alone goes without text
    assert sum(len(sent.files) for sent in bridge.net.sent(801)) == 1


async def test_a_file_the_network_refuses_fails_for_good_with_the_networks_reason(
    bridge: Bridge[AnyNetwork],
) -> None:
    # kept as a photo, but a PDF: the network itself refuses it (no check of ours stops it)
    await StoredFiles(bridge.engine).keep("outbox:not-a-photo", PDF)
    conversation = await bridge.conversation_id(801)
    message = OutboundMessage(
        message_id=1,
        conversation_id=conversation,
        network=bridge.net.network,
        chat_id="801",
        text="",
        idempotency_key="agent:not-a-photo",
        author_kind=AuthorKind.AGENT,
        attachments=[Attachment(kind=PHOTO, network_file_id="outbox:not-a-photo", name="x.jpg")],
    )

    with pytest.raises(DeliveryError) as refused:
        await bridge.net.channel.send(message)

    assert refused.value.permanent
    assert refused.value.reason  # the network's own words, for the agent


async def test_a_file_no_longer_kept_fails_for_good_and_says_so(
    bridge: Bridge[AnyNetwork],
) -> None:
    message = OutboundMessage(
        message_id=1,
        conversation_id=await bridge.conversation_id(801),
        network=bridge.net.network,
        chat_id="801",
        text="",
        idempotency_key="agent:gone",
        author_kind=AuthorKind.AGENT,
        attachments=[Attachment(kind=DOCUMENT, network_file_id="outbox:gone", name="a.pdf")],
    )

    with pytest.raises(DeliveryError) as refused:
        await bridge.net.channel.send(message)

    assert refused.value.permanent
    assert refused.value.reason.startswith("a.pdf is no longer kept")
