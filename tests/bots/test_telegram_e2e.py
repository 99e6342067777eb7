"""Telegram end to end, what is Telegram's own: aiogram against the emulator, through the real
pipeline and senders. What every network does is in test_network_contract.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.telegram import TelegramChannel
from bots.telegram.channel import WEBHOOK_PATH
from bridge.backends.local import LocalBackend
from bridge.domain import AuthorKind, Button, Network, OutboundMessage
from bridge.pipeline.responder import Responder
from bridge.settings import Settings
from bridge.store.models import identities, messages
from emulators.faults import Fault, FaultKind
from emulators.telegram import TelegramEmulator
from supportbridge.runtime import run_channel
from tests.network_harness import Bridge, EmulatedTelegram, Receiving, open_bridge

TelegramBridge = Bridge[EmulatedTelegram]


@pytest.fixture
async def bridge(
    engine: AsyncEngine,
    settings: Settings,
    responder: Responder | None,
    request: pytest.FixtureRequest,
) -> AsyncIterator[TelegramBridge]:
    """Polling Telegram; a test marked `webhook` registers the webhook (or has it registered)
    itself."""
    receiving: Receiving | None = None if request.node.get_closest_marker("webhook") else "polling"
    async with open_bridge(EmulatedTelegram(), engine, settings, responder, receiving) as bridge:
        yield bridge


@pytest.fixture
def telegram(bridge: TelegramBridge) -> TelegramEmulator:
    return bridge.net.emulator


async def test_customer_identity_name_and_language_come_from_telegram(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    telegram.customer(502, first_name="Ivan", last_name="Petrov", language_code="en")
    telegram.write_text(502, "hello")
    await bridge.wait_stored(1)

    found = await bridge.rows(
        sa.select(identities.c.external_user_id, identities.c.display_name, identities.c.language)
    )
    assert found == [("502", "Ivan Petrov", "en")]


@pytest.mark.webhook
async def test_with_a_public_url_the_worker_registers_its_webhook_itself(
    bridge: TelegramBridge, telegram: TelegramEmulator, settings: Settings
) -> None:
    public_url = bridge.webhook_url.removesuffix(WEBHOOK_PATH)
    channel = bridge.net.channel
    stop = asyncio.Event()
    worker = asyncio.ensure_future(
        run_channel(
            settings.model_copy(update={"public_url": public_url}),
            bridge.engine,
            LocalBackend(bridge.bus, settings.data_dir),
            TelegramChannel(
                EmulatedTelegram.TOKEN,
                api_url=bridge.net.api_url,
                webhook_secret=EmulatedTelegram.SECRET,
            ),
            stop,
        )
    )
    try:
        for _ in range(100):
            if (await channel.bot.get_webhook_info()).url:
                break
            await asyncio.sleep(0.05)
        bridge.net.customer(506)
        telegram.write_text(506, "вебхук сам")
        await bridge.wait_stored(1)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)

    info = await channel.bot.get_webhook_info()
    assert info.url == bridge.webhook_url


async def test_an_unreachable_api_is_retried_without_stopping_the_bridge(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    bridge.net.customer(801)
    telegram.faults.add(Fault(FaultKind.SERVER_ERROR, status=502), methods="sendMessage", times=3)
    telegram.write_text(801, "привет")

    received = await telegram.wait_for_bot_messages(801, 1, within=20)

    assert received[0].current_text.startswith("Спасибо!")
    assert bridge.sender.stats.retries == 3


async def test_a_document_is_stored_with_its_caption_name_type_and_size(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    bridge.net.customer(901)
    telegram.write_document(
        901,
        b"%PDF-1.4 contract",
        file_name="contract.pdf",
        mime_type="application/pdf",
        caption="мой договор",
    )
    await bridge.wait_stored(1)

    stored = await bridge.rows(
        sa.select(messages.c.text, messages.c.attachments).where(messages.c.direction == "inbound")
    )
    text, attachments = stored[0]
    assert text == "мой договор"
    assert [(a["kind"], a["name"], a["mime_type"], a["size"]) for a in attachments] == [
        ("document", "contract.pdf", "application/pdf", 17)
    ]


async def test_buttons_go_as_an_inline_keyboard_and_a_press_comes_back_answered(
    bridge: TelegramBridge, telegram: TelegramEmulator
) -> None:
    bridge.net.customer(951)
    telegram.write_text(951, "тариф?")
    await telegram.wait_for_bot_messages(951, 1)
    question = OutboundMessage(
        message_id=0,
        conversation_id=await bridge.conversation_id(951),
        network=Network.TELEGRAM,
        chat_id="951",
        text="Это помогло?",
        idempotency_key="feedback-1",
        author_kind=AuthorKind.BOT,
        buttons=[Button(label="Да", data="helped:yes"), Button(label="Нет", data="helped:no")],
    )
    await bridge.net.channel.send(question)
    sent = (await telegram.wait_for_bot_messages(951, 2))[-1]
    assert sent.current_reply_markup == {
        "inline_keyboard": [
            [
                {"text": "Да", "callback_data": "helped:yes"},
                {"text": "Нет", "callback_data": "helped:no"},
            ]
        ]
    }

    query_id = telegram.press_button(951, sent.message_id, "helped:no")
    await bridge.wait_stored(2)

    pressed = await bridge.rows(
        sa.select(messages.c.text, messages.c.network_message_id)
        .where(messages.c.direction == "inbound")
        .order_by(messages.c.id)
    )
    assert pressed[-1] == ("helped:no", f"cb:{query_id}")
    for _ in range(50):
        if telegram.callback_query(query_id).answer is not None:
            break
        await asyncio.sleep(0.05)
    assert telegram.callback_query(query_id).answer is not None, "the spinner stopped"
