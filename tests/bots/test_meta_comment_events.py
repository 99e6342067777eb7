"""Facebook Page feed changes and Instagram comment changes -> public-thread messages."""

from __future__ import annotations

from typing import Any

from bots.facebook.events import Inbound, WebhookPayload, to_inbound
from bridge.domain import InboundMessage, Network, PublicPlace, Unreadable

PAGE = "1000000000001"
ACCOUNT = "17841400000000001"
POST = f"{PAGE}_7"


def feed(verb: str = "add", **value: Any) -> WebhookPayload:
    change = {
        "from": {"id": "5001", "name": "Anna Petrova"},
        "post": {"id": POST, "permalink_url": "https://www.facebook.com/1/posts/7"},
        "item": "comment",
        "verb": verb,
        "post_id": POST,
        "comment_id": f"{POST}_11",
        "parent_id": POST,
        "created_time": 1_700_000_000,
        "message": "Is delivery to Kazan possible?",
    } | value
    # a value given as None is one the change leaves out
    return page([{"field": "feed", "value": {k: v for k, v in change.items() if v is not None}}])


def page(changes: list[Any], object_: str = "page", account: str = PAGE) -> WebhookPayload:
    entry = {"id": account, "time": 1_700_000_000, "changes": changes}
    return WebhookPayload.model_validate({"object": object_, "entry": [entry]})


def instagram(**value: Any) -> WebhookPayload:
    change = {
        "id": "17865799348089039",
        "from": {"id": "6001", "username": "anna.p"},
        "text": "Is this in size M?",
        "media": {"id": "17887498072083520", "media_product_type": "FEED"},
    } | value
    return page([{"field": "comments", "value": change}], "instagram", ACCOUNT)


def messages(payload: WebhookPayload, network: Network = Network.FACEBOOK) -> list[Any]:
    return [
        item.message if isinstance(item, Inbound) else item for item in to_inbound(payload, network)
    ]


def test_a_new_comment_is_a_public_message_in_its_posts_thread() -> None:
    (message,) = messages(feed())

    assert isinstance(message, InboundMessage)
    assert (message.kind, message.chat_id, message.network_message_id) == (
        "message",
        f"post:{POST}",
        f"comment:{POST}_11",
    )
    assert (message.user_id, message.display_name, message.text) == (
        "5001",
        "Anna Petrova",
        "Is delivery to Kazan possible?",
    )
    assert message.public == PublicPlace(post_url="https://www.facebook.com/1/posts/7")


def test_a_reply_to_a_comment_answers_its_parent() -> None:
    (message,) = messages(feed(comment_id=f"{POST}_12", parent_id=f"{POST}_11"))

    assert message.public.reply_to == f"comment:{POST}_11"


def test_an_edited_comment_is_an_edit_of_the_same_message() -> None:
    (message,) = messages(feed("edited", message="Delivery to Kazan and Samara?"))

    assert (message.kind, message.network_message_id, message.text) == (
        "edit",
        f"comment:{POST}_11",
        "Delivery to Kazan and Samara?",
    )


def test_a_removed_comment_is_a_delete_of_the_same_message() -> None:
    (message,) = messages(feed("remove", message=None))

    assert (message.kind, message.network_message_id, message.chat_id) == (
        "delete",
        f"comment:{POST}_11",
        f"post:{POST}",
    )


def test_a_comment_without_text_is_kept_with_a_note() -> None:
    (message,) = messages(feed(message=None))

    assert message.text == "[comment without text]"


def test_the_pages_own_comment_is_not_a_customers() -> None:
    assert messages(feed(**{"from": {"id": PAGE, "name": "The shop"}})) == []


def test_a_hidden_comment_and_the_feeds_other_items_are_ignored() -> None:
    assert messages(feed("hide")) == []
    assert messages(feed(item="reaction")) == []


def test_a_comment_change_without_its_comment_id_is_unreadable_with_the_reason() -> None:
    payload = page([{"field": "feed", "value": {"item": "comment", "verb": "add"}}])

    (unreadable,) = messages(payload)

    assert isinstance(unreadable, Unreadable)
    assert "comment_id" in unreadable.reason and '"verb": "add"' in unreadable.payload


def test_a_malformed_change_costs_its_neighbours_nothing() -> None:
    good = feed().entry[0].changes[0]
    (unreadable, message) = messages(page(["not a change", good]))

    assert isinstance(unreadable, Unreadable) and "field" in unreadable.reason
    assert message.text == "Is delivery to Kazan possible?"


def test_an_instagram_comment_is_a_public_message_under_its_media() -> None:
    (message,) = messages(instagram(), Network.INSTAGRAM)

    assert (message.network, message.chat_id, message.network_message_id) == (
        Network.INSTAGRAM,
        "media:17887498072083520",
        "comment:17865799348089039",
    )
    assert (message.user_id, message.display_name, message.text) == (
        "6001",
        "anna.p",
        "Is this in size M?",
    )
    assert message.public == PublicPlace()


def test_an_instagram_reply_answers_its_parent_comment() -> None:
    (message,) = messages(instagram(parent_id="17865799348000000"), Network.INSTAGRAM)

    assert message.public.reply_to == "comment:17865799348000000"


def test_the_instagram_accounts_own_comment_is_not_a_customers() -> None:
    payload = instagram(**{"from": {"id": ACCOUNT, "username": "shop"}})

    assert messages(payload, Network.INSTAGRAM) == []


def test_an_instagram_comment_without_its_media_is_unreadable_with_the_reason() -> None:
    (unreadable,) = messages(instagram(media=None), Network.INSTAGRAM)

    assert isinstance(unreadable, Unreadable) and "media" in unreadable.reason


def test_a_new_comment_without_its_author_is_unreadable_with_the_reason() -> None:
    (unreadable,) = messages(feed(**{"from": None}))

    assert isinstance(unreadable, Unreadable) and "author" in unreadable.reason


def test_a_page_feed_change_pushed_under_instagram_is_not_taken_for_a_comment() -> None:
    payload = page(feed().entry[0].changes, "instagram", ACCOUNT)

    assert messages(payload, Network.INSTAGRAM) == []
