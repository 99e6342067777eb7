"""How VK's comment events become public threads, and message_allow / message_deny permissions
(docs/networks.md 2.7)."""

from __future__ import annotations

from typing import Any

import pytest

from bots.vk.events import VkUpdate, comment_id, parse_thread, to_inbound

GROUP = 7


def event(kind: str, obj: dict[str, Any]) -> VkUpdate:
    return VkUpdate.model_validate(
        {"type": kind, "object": obj, "group_id": GROUP, "event_id": "e1", "v": "5.199"}
    )


def wall_reply(kind: str = "wall_reply_new", **fields: Any) -> VkUpdate:
    comment = {
        "id": 31,
        "from_id": 501,
        "date": 1_700_000_000,
        "text": "Где мой заказ?",
        "post_id": 12,
        "post_owner_id": -GROUP,
        "owner_id": -GROUP,
        "parents_stack": [],
    }
    return event(kind, comment | fields)


def test_a_wall_comment_is_a_message_in_the_thread_of_its_post() -> None:
    parsed = to_inbound(wall_reply(), {501: "Анна Петрова"}, {"wall-7_12": "Новая коллекция"})

    assert parsed is not None
    assert (parsed.kind, parsed.chat_id, parsed.user_id) == ("message", "wall-7_12", "501")
    assert parsed.network_message_id == "wall-7_12:31"
    assert parsed.display_name == "Анна Петрова"
    assert parsed.public is not None
    assert parsed.public.post_text == "Новая коллекция"
    assert parsed.public.post_url == "https://vk.com/wall-7_12"


def test_a_reply_to_a_comment_names_the_comment_it_answers() -> None:
    parsed = to_inbound(wall_reply(reply_to_comment=30, reply_to_user=502), {})

    assert parsed is not None and parsed.public is not None
    assert parsed.public.reply_to == "wall-7_12:30"


def test_two_authors_under_one_post_share_its_thread() -> None:
    first = to_inbound(wall_reply(id=31, from_id=501), {})
    second = to_inbound(wall_reply(id=32, from_id=502), {})

    assert first is not None and second is not None
    assert first.conversation_key == second.conversation_key
    assert (first.user_id, second.user_id) == ("501", "502")


def test_an_edited_comment_is_an_edit_of_the_same_message() -> None:
    parsed = to_inbound(wall_reply("wall_reply_edit", text="Уже нашёл"), {})

    assert parsed is not None
    assert (parsed.kind, parsed.network_message_id, parsed.text) == (
        "edit",
        "wall-7_12:31",
        "Уже нашёл",
    )


def test_a_deleted_comment_names_the_message_to_mark_deleted() -> None:
    gone = event(
        "wall_reply_delete", {"owner_id": -GROUP, "id": 31, "deleter_id": 501, "post_id": 12}
    )

    parsed = to_inbound(gone, {})

    assert parsed is not None
    assert (parsed.kind, parsed.network_message_id, parsed.chat_id) == (
        "delete",
        "wall-7_12:31",
        "wall-7_12",
    )


def test_a_restored_comment_is_an_edit_that_brings_it_back() -> None:
    parsed = to_inbound(wall_reply("wall_reply_restore", text="Где мой заказ?"), {})

    assert parsed is not None
    assert (parsed.kind, parsed.network_message_id, parsed.text) == (
        "edit",
        "wall-7_12:31",
        "Где мой заказ?",
    )


def test_the_communitys_own_comment_is_not_a_customer_message() -> None:
    assert to_inbound(wall_reply(from_id=-GROUP), {}) is None


@pytest.mark.parametrize(
    ("kind", "fields", "thread", "url"),
    [
        (
            "photo_comment_new",
            {"photo_id": 4, "photo_owner_id": -GROUP},
            "photo-7_4",
            "https://vk.com/photo-7_4",
        ),
        (
            "video_comment_new",
            {"video_id": 5, "video_owner_id": -GROUP},
            "video-7_5",
            "https://vk.com/video-7_5",
        ),
        (
            "market_comment_new",
            {"item_id": 6, "market_owner_id": -GROUP},
            "market-7_6",
            "https://vk.com/product-7_6",
        ),
        (
            "board_post_new",
            {"topic_id": 8, "topic_owner_id": -GROUP},
            "topic-7_8",
            "https://vk.com/topic-7_8",
        ),
    ],
)
def test_comments_on_photos_videos_items_and_boards_are_threads_of_their_own(
    kind: str, fields: dict[str, Any], thread: str, url: str
) -> None:
    comment = {"id": 40, "from_id": 501, "date": 1_700_000_000, "text": "Есть размер M?"}

    parsed = to_inbound(event(kind, comment | fields), {})

    assert parsed is not None and parsed.public is not None
    assert (parsed.chat_id, parsed.network_message_id) == (thread, f"{thread}:40")
    assert parsed.public.post_url == url


@pytest.mark.parametrize(
    ("kind", "fields"),
    [
        ("photo_comment_delete", {"owner_id": -GROUP, "id": 40, "user_id": 501, "photo_id": 4}),
        ("video_comment_delete", {"owner_id": -GROUP, "id": 40, "user_id": 501, "video_id": 4}),
        ("market_comment_delete", {"owner_id": -GROUP, "id": 40, "user_id": 501, "item_id": 4}),
        ("board_post_delete", {"topic_owner_id": GROUP, "topic_id": 4, "id": 40}),
    ],
)
def test_every_kind_of_comment_can_be_deleted(kind: str, fields: dict[str, Any]) -> None:
    parsed = to_inbound(event(kind, fields), {})

    assert parsed is not None and parsed.kind == "delete"
    assert comment_id(parsed.network_message_id) == 40


def test_message_allow_says_the_community_may_write_privately() -> None:
    parsed = to_inbound(event("message_allow", {"user_id": 501, "key": ""}), {})

    assert parsed is not None
    assert (parsed.kind, parsed.user_id, parsed.allows_private) == ("permission", "501", True)


def test_message_deny_says_it_may_not() -> None:
    parsed = to_inbound(event("message_deny", {"user_id": 501}), {})

    assert parsed is not None and parsed.allows_private is False


def test_a_comment_without_what_it_is_under_is_refused_with_the_reason() -> None:
    broken = event("wall_reply_new", {"id": 31, "from_id": 501, "date": 1, "text": "?"})

    with pytest.raises(ValueError, match="post_id"):
        to_inbound(broken, {})


def test_a_private_chat_is_no_thread() -> None:
    assert parse_thread("501") is None
    assert parse_thread("wall-7_12") == ("wall", -7, 12)
