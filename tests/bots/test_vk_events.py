"""How a VK event becomes a domain message: the key that names it for good."""

from __future__ import annotations

from typing import Any

from bots.vk.events import VkUpdate, to_inbound


def message_new(message_id: int, peer_id: int, number: int) -> VkUpdate:
    message: dict[str, Any] = {
        "id": message_id,
        "date": 1_700_000_000,
        "peer_id": peer_id,
        "from_id": peer_id,
        "text": "Здравствуйте",
        "conversation_message_id": number,
        "out": 0,
    }
    return VkUpdate.model_validate(
        {"type": "message_new", "object": {"message": message}, "group_id": 1}
    )


def test_a_message_is_named_by_its_id() -> None:
    parsed = to_inbound(message_new(4242, 7001, 3), {})

    assert parsed is not None and parsed.network_message_id == "4242"


def test_messages_without_an_id_are_named_by_their_peer_and_number_there() -> None:
    """VK sends `id` 0 for messages in chats: two customers' first messages must not be one."""
    first = to_inbound(message_new(0, 7001, 1), {})
    second = to_inbound(message_new(0, 7002, 1), {})

    assert first is not None and second is not None
    assert (first.network_message_id, second.network_message_id) == ("7001_1", "7002_1")
