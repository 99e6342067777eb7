"""Builders of domain objects for tests."""

from __future__ import annotations

import orjson

from bridge.bus import BusEntry
from bridge.domain import InboundMessage, Network


def inbound(
    chat: str | int,
    seq: int,
    text: str = "hello",
    *,
    network: Network = Network.TELEGRAM,
    language: str | None = None,
) -> InboundMessage:
    """Message number `seq` of the private chat `chat` (user id = chat id, as in private chats)."""
    return InboundMessage(
        network=network,
        network_message_id=f"{chat}-{seq}",
        chat_id=str(chat),
        user_id=str(chat),
        text=text,
        display_name=f"Customer {chat}",
        language=language,
    )


def entries(*messages: InboundMessage | bytes) -> list[BusEntry]:
    """Bus entries as a worker would publish them; bytes are passed through as a raw payload."""
    return [
        BusEntry(
            str(n),
            item if isinstance(item, bytes) else orjson.dumps(item.model_dump(mode="json")),
        )
        for n, item in enumerate(messages, 1)
    ]
