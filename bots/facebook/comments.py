"""Comments on a Facebook Page's posts and on an Instagram account's media -> public-thread
messages (docs/networks.md 3.4).

They come as webhook changes beside the messaging events: on a Page, field `feed` with `item`
"comment" and `verb` add, edited or remove; on Instagram, field `comments` (or `live_comments`,
the same shape) for each new comment. A post (a media) is one public thread; each comment is a
message of its author, answering its parent comment when it has one. The account's own
comments (an agent's reply coming back) and the feed's other items (posts, reactions, shares)
are no customer's and are dropped.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bots.facebook.ids import GraphId
from bridge.domain import MAX_TEXT_CHARS, InboundMessage, Network, PublicPlace

log = logging.getLogger(__name__)

COMMENT_PREFIX = "comment:"
"""Before a comment's id in its message id: what tells a private reply to a comment from a
reply to a private message (whose ids are mids)."""
POST_PREFIX = "post:"
MEDIA_PREFIX = "media:"
INSTAGRAM_FIELDS = frozenset({"comments", "live_comments"})
VERBS: dict[str, Literal["message", "edit", "delete"]] = {
    "add": "message",
    "edited": "edit",
    "remove": "delete",
}


class _Model(BaseModel):
    # the platform adds fields over time; what we do not read must not break a webhook
    model_config = ConfigDict(extra="ignore", frozen=True)


class Author(_Model):
    id: GraphId
    name: str | None = None  # a Page change names the person
    username: str | None = None  # an Instagram change gives their username


class PostInfo(_Model):
    permalink_url: str | None = None


class FeedComment(_Model):
    """A Page `feed` change about a comment."""

    # a removed comment may name no author: the thread is all a delete needs
    author: Author | None = Field(default=None, alias="from")
    item: str
    verb: str
    post_id: GraphId
    comment_id: GraphId
    parent_id: GraphId | None = None
    message: str | None = None  # a comment of a photo or sticker alone has none
    post: PostInfo | None = None


class InstagramMedia(_Model):
    id: GraphId


class InstagramComment(_Model):
    id: GraphId
    author: Author = Field(alias="from")
    media: InstagramMedia
    text: str | None = None
    parent_id: GraphId | None = None


def comment_key(comment_id: str) -> str:
    return COMMENT_PREFIX + comment_id


def commented(message_id: str | None) -> str | None:
    """The platform's id of the comment a message id names, or None for any other message."""
    if message_id is None or not message_id.startswith(COMMENT_PREFIX):
        return None
    return message_id.removeprefix(COMMENT_PREFIX)


def thread_object(chat_id: str) -> str | None:
    """The post's (media's) own id of a public thread's chat id, or None for a private chat."""
    for prefix in (POST_PREFIX, MEDIA_PREFIX):
        if chat_id.startswith(prefix):
            return chat_id.removeprefix(prefix)
    return None


def from_change(raw: Any, account_id: str, network: Network) -> InboundMessage | None:
    """The comment a change of `account_id`'s webhook carries, or None for a change that is no
    customer's comment. A malformed change raises a ValueError (pydantic's ValidationError is
    one) saying what is wrong."""
    if not isinstance(raw, dict) or not isinstance(raw.get("field"), str):
        raise ValueError("a change without a field name")
    value = raw.get("value")
    if network is Network.INSTAGRAM and raw["field"] in INSTAGRAM_FIELDS:
        return _instagram(_object(value), account_id)
    if network is Network.FACEBOOK and raw["field"] == "feed":
        return _feed(_object(value), account_id)
    log.debug("%s: change of field %r ignored", network.value, raw["field"])
    return None


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"a change's value is no object: {value!r}"[:300])
    return value


def _feed(value: dict[str, Any], page_id: str) -> InboundMessage | None:
    if value.get("item") != "comment":
        return None  # a post, a reaction, a share...: no comment to answer
    change = FeedComment.model_validate(value)
    kind = VERBS.get(change.verb)
    if kind is None:
        # hide / unhide: the page's own moderation, nothing a customer said
        log.info("facebook: comment %s %s ignored", change.comment_id, change.verb)
        return None
    author = change.author
    if author is None and kind != "delete":
        raise ValueError(f"a {change.verb} comment change without its author (from)")
    if author is not None and author.id == page_id:
        log.info("facebook: the page's own comment %s ignored", change.comment_id)
        return None
    thread = POST_PREFIX + change.post_id
    if kind == "delete":
        return InboundMessage(
            network=Network.FACEBOOK,
            network_message_id=comment_key(change.comment_id),
            kind="delete",
            chat_id=thread,
            user_id=author.id if author is not None else page_id,
        )
    assert author is not None
    # a top-level comment's parent is the post itself: it answers no comment
    parent = change.parent_id if change.parent_id not in (None, change.post_id) else None
    permalink = change.post.permalink_url if change.post is not None else None
    return InboundMessage(
        network=Network.FACEBOOK,
        network_message_id=comment_key(change.comment_id),
        kind=kind,
        chat_id=thread,
        user_id=author.id,
        text=(change.message or "[comment without text]")[:MAX_TEXT_CHARS],
        display_name=author.name,
        public=PublicPlace(
            post_url=permalink or f"https://www.facebook.com/{change.post_id}",
            reply_to=comment_key(parent) if parent is not None else None,
        ),
    )


def _instagram(value: dict[str, Any], account_id: str) -> InboundMessage | None:
    comment = InstagramComment.model_validate(value)
    author, media = comment.author, comment.media
    if author.id == account_id:
        log.info("instagram: the account's own comment %s ignored", comment.id)
        return None
    return InboundMessage(
        network=Network.INSTAGRAM,
        network_message_id=comment_key(comment.id),
        chat_id=MEDIA_PREFIX + media.id,
        user_id=author.id,
        text=(comment.text or "[comment without text]")[:MAX_TEXT_CHARS],
        display_name=author.username,
        public=PublicPlace(
            reply_to=comment_key(comment.parent_id) if comment.parent_id is not None else None
        ),
    )
