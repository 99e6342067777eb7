"""An event a network sent that cannot become a message is acknowledged like any and kept in
dead_letters with its reason, never only logged: Telegram button data past its 256 characters,
a Messenger event with a negative timestamp, a VK object of the wrong shape."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from aiogram.types import Update
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.facebook.events import WebhookPayload
from bots.facebook.events import to_inbound as facebook_to_inbound
from bots.telegram.events import to_inbound as telegram_to_inbound
from bots.vk.events import VkUpdate
from bridge.bus.memory import MemoryBus
from bridge.domain import Unreadable
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import dead_letters, messages


async def stored_through_the_pipeline(
    engine: AsyncEngine, bus: MemoryBus, settings: Settings, events: list[Any]
) -> tuple[list[str], int]:
    """What `dead_letters` says of the events, and how many messages were stored."""
    await bus.publish_inbound(events)
    batch = [entry for queue in bus._inbound for entry in list(queue._queue)]  # type: ignore[attr-defined]
    await Pipeline(engine, bus, settings, None).handle(batch)
    async with engine.connect() as conn:
        reasons = [r.reason for r in (await conn.execute(sa.select(dead_letters))).all()]
        count = (await conn.execute(sa.select(sa.func.count()).select_from(messages))).scalar()
    return reasons, int(count or 0)


def test_a_telegram_button_with_data_past_256_characters_is_unreadable() -> None:
    press = {
        "update_id": 5,
        "callback_query": {
            "id": "77",
            "from": {"id": 9, "is_bot": False, "first_name": "Ivan"},
            "chat_instance": "1",
            "data": "x" * 300,
            "message": {
                "message_id": 3,
                "date": 1_700_000_000,
                "chat": {"id": 9, "type": "private"},
                "text": "did this help?",
            },
        },
    }

    [parsed] = telegram_to_inbound(Update.model_validate(press))

    assert isinstance(parsed, Unreadable)
    assert "256" in parsed.reason and '"update_id":5' in parsed.payload


def test_a_messenger_event_with_a_negative_timestamp_is_unreadable_not_its_neighbour() -> None:
    good = {
        "sender": {"id": "1"},
        "recipient": {"id": "2"},
        "timestamp": 1_700_000_000_000,
        "message": {"mid": "m_1", "text": "hello"},
    }
    bad = {**good, "timestamp": -5, "message": {"mid": "m_2", "text": "again"}}
    payload = WebhookPayload.model_validate(
        {"object": "page", "entry": [{"id": "2", "time": 1, "messaging": [bad, good]}]}
    )

    parsed = facebook_to_inbound(payload)

    assert [type(item).__name__ for item in parsed] == ["Unreadable", "Inbound"]


async def test_unreadable_events_reach_dead_letters_with_their_reason(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> None:
    wrong_shape = VkUpdate.model_validate(
        {"type": "message_new", "object": {"message": {"id": "not a number"}}, "group_id": 1}
    )
    unreadable = Unreadable(
        network="vk", reason="message: field required", payload=wrong_shape.model_dump_json()
    )

    reasons, stored = await stored_through_the_pipeline(engine, memory_bus, settings, [unreadable])

    assert reasons == ["unreadable vk event: message: field required"]
    assert stored == 0
