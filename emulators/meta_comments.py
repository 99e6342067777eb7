"""A Facebook Page's posts or an Instagram account's media, as the Messenger emulators
(emulators.facebook, emulators.instagram) serve them: the people's comments under them, the
account's public replies, and the one private reply a comment may get. Facts and sources:
docs/networks.md 3.4.

What it does as Meta documents: a comment is a webhook change (Page: field `feed`, `item`
"comment", `verb` add / edited / remove; Instagram: field `comments`, new comments only); the
account answers a comment in public with `POST /{comment-id}/comments` (Page) or
`POST /{ig-comment-id}/replies` (Instagram), under the post itself with
`POST /{post-id}/comments` / `POST /{ig-media-id}/comments`, and reads the comments there with
`GET` on the same edges; `GET /{post-id}` gives a post's text and address; a private reply
(Send API with `recipient: {"comment_id": ...}`) goes once per comment, within 7 days of it, to
the commenter's private conversation, and its answer's `recipient_id` names that conversation's
person.

A person is known by the id their private conversation has (a PSID, an IGSID: what tests and
the sandbox write as). A Page's `feed` change names its commenter by another id, not their PSID
(the platform scopes the two apart), which only the private reply's `recipient_id` maps to the
PSID; an Instagram change names them by their IGSID, the id of their direct messages.
Unconfirmed and chosen here: the codes and wording of the private-reply refusals (10900
"Activity already replied to" for a second one; 10/2018278, the window error, for one after 7
days); the form of a Page commenter's id (`AUTHOR_ID_BASE` on, one per person, never a PSID
of this emulator); that the account's own comments come back as changes too; the post's
`permalink_url` in a Page change; that the comments read come back with the text as it was
posted.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

JSON = dict[str, Any]
PRIVATE_REPLY_WINDOW_S = 7 * 24 * 3600
MAX_COMMENT_CHARS = 8000  # unconfirmed: the longest comment the platform takes
# A Page commenter's id in a change: numbered from here, far above the PSIDs people write as.
AUTHOR_ID_BASE = 880_000_000_000_000


class CommentError(ValueError):
    """A call the platform would refuse: the emulator answers Graph error `code`."""

    def __init__(self, code: int, message: str, subcode: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode


@dataclass(slots=True)
class PostComment:
    id: str
    post_id: str
    person: str  # the id of the person's private conversation (PSID, IGSID), or the account's
    from_id: str  # the id the webhook change names the author by
    from_name: str
    text: str
    created_at: float
    parent_id: str | None = None
    deleted: bool = False
    privately_replied: bool = False

    def as_dict(self) -> JSON:
        return {
            "id": self.id,
            "post_id": self.post_id,
            "person": self.person,
            "from_id": self.from_id,
            "from_name": self.from_name,
            "text": self.text,
            "created_at": self.created_at,
            "parent_id": self.parent_id,
            "deleted": self.deleted,
            "privately_replied": self.privately_replied,
        }


@dataclass(slots=True)
class Post:
    """A Page post or an Instagram media of the account."""

    id: str
    text: str
    permalink: str
    comments: list[PostComment] = field(default_factory=list)

    def as_dict(self, account_id: str) -> JSON:
        """The post and its comments (which are the account's), as the sandbox's page shows
        them."""
        return {
            "id": self.id,
            "text": self.text,
            "permalink": self.permalink,
            "comments": [
                c.as_dict() | {"from_account": c.from_id == account_id} for c in self.comments
            ],
        }


# (field, value) of one webhook change, queued by the emulator that owns the comments
PushChange = Callable[[str, JSON], None]


class PostComments:
    """The posts of one account (`instagram`: media of an Instagram account) and their comments;
    `push_change` queues a webhook change."""

    def __init__(
        self, account_id: str, push_change: PushChange, *, instagram: bool, first_number: int = 1
    ) -> None:
        self.account_id = account_id
        self.instagram = instagram
        self._push_change = push_change
        self._posts: dict[str, Post] = {}
        self._comments: dict[str, PostComment] = {}
        self._numbers = itertools.count(first_number)
        self._author_ids: dict[str, str] = {}  # person -> their id in a Page's changes

    # ---- the account and its customers (tests and the sandbox) --------------------------------

    def add_post(self, text: str) -> Post:
        number = next(self._numbers)
        if self.instagram:
            post_id = f"1790000000{number:07d}"
            link = f"https://www.instagram.com/p/emulated{number}/"
        else:  # a Page post's id is the page's id and the post's own number
            post_id = f"{self.account_id}_{number}"
            link = f"https://www.facebook.com/{self.account_id}/posts/{number}"
        post = Post(post_id, text, link)
        self._posts[post_id] = post
        return post

    def posts(self) -> list[Post]:
        return list(self._posts.values())

    def comment(
        self,
        user_id: str,
        post_id: str,
        text: str,
        *,
        name: str = "",
        reply_to: str | None = None,
    ) -> PostComment:
        """Person `user_id` (their PSID or IGSID) comments under the post, perhaps answering the
        comment `reply_to`."""
        post = self._posts.get(post_id)
        if post is None:
            raise KeyError(f"no post {post_id}")
        if not text.strip():
            raise ValueError("a comment has text")
        return self._add(post, user_id, name, text, reply_to)

    def edit_comment(self, user_id: str, comment_id: str, text: str) -> PostComment:
        comment = self._own(user_id, comment_id)
        comment.text = text
        self._change(comment, "edited")
        return comment

    def delete_comment(self, user_id: str, comment_id: str) -> PostComment:
        comment = self._own(user_id, comment_id)
        comment.deleted = True
        self._change(comment, "remove")
        return comment

    def age_comment(self, comment_id: str, seconds: float) -> None:
        """Move the comment `seconds` into the past (tests of the 7-day rule)."""
        self.find(comment_id).created_at -= seconds

    def account_comments(self) -> list[PostComment]:
        """What the account posted in public, oldest first."""
        return [c for c in self._comments.values() if c.from_id == self.account_id]

    def author_id(self, person: str) -> str:
        """The id a webhook change names `person` by: on a Page an id of its own, not the PSID;
        on Instagram their IGSID."""
        if self.instagram or person == self.account_id:
            return person
        if person not in self._author_ids:
            self._author_ids[person] = str(AUTHOR_ID_BASE + len(self._author_ids) + 1)
        return self._author_ids[person]

    def find(self, comment_id: str) -> PostComment:
        found = self._comments.get(comment_id)
        if found is None:
            raise KeyError(f"no comment {comment_id}")
        return found

    # ---- the Graph API --------------------------------------------------------------------------

    def reply(self, object_id: str, edge: str, text: str) -> str:
        """`POST /{object_id}/{edge}` as the account: a public comment under a post, or a reply
        to a comment. The new comment's id."""
        if not text.strip():
            raise CommentError(100, "(#100) param message must be non-empty")
        if len(text) > MAX_COMMENT_CHARS:
            raise CommentError(100, f"(#100) param message must be at most {MAX_COMMENT_CHARS}")
        # Instagram answers a comment on /replies and a media on /comments; a Page both on
        # /comments
        post, parent = self._posts.get(object_id), self._comments.get(object_id)
        if self.instagram and (edge == "replies") != (parent is not None):
            raise CommentError(100, f"(#100) Unsupported post request: /{object_id}/{edge}")
        if parent is not None and not parent.deleted:
            post = self._posts[parent.post_id]
        elif post is None:
            raise CommentError(100, f"(#100) Unsupported post request: /{object_id}/{edge}")
        return self._add(post, self.account_id, "", text, parent.id if parent else None).id

    def read_comments(self, object_id: str, edge: str, *, newest_first: bool) -> list[JSON]:
        """`GET /{object_id}/{edge}`: the replies to a comment, or the comments directly under
        a post, oldest first unless `newest_first` (Page: `order=reverse_chronological`)."""
        post, parent = self._posts.get(object_id), self._comments.get(object_id)
        if (self.instagram and (edge == "replies") != (parent is not None)) or not (post or parent):
            raise CommentError(100, f"(#100) Unsupported get request: /{object_id}/{edge}")
        found = [
            self._graph_comment(c)
            for c in self._comments.values()
            if not c.deleted
            and (c.parent_id == object_id if parent else c.post_id == object_id and not c.parent_id)
        ]
        return found[::-1] if newest_first else found

    def read_post(self, object_id: str) -> JSON:
        """`GET /{object_id}`: a Page post's text (`message`, `permalink_url`), an Instagram
        media's (`caption`, `permalink`)."""
        post = self._posts.get(object_id)
        if post is None:
            raise CommentError(100, f"(#100) Unsupported get request: /{object_id}")
        if self.instagram:
            return {"id": post.id, "caption": post.text, "permalink": post.permalink}
        return {"id": post.id, "message": post.text, "permalink_url": post.permalink}

    def take_private_reply(self, comment_id: str) -> PostComment:
        """The comment a private reply answers (its `person` is whom the reply reaches), which it
        may no longer get after this one."""
        comment = self._comments.get(comment_id)
        if comment is None or comment.deleted or comment.from_id == self.account_id:
            raise CommentError(100, "(#100) No matching comment found", 2018001)
        if comment.privately_replied:
            raise CommentError(10900, "Activity already replied to")
        if time.time() - comment.created_at > PRIVATE_REPLY_WINDOW_S:
            raise CommentError(10, "(#10) This message is sent outside of allowed window.", 2018278)
        comment.privately_replied = True
        return comment

    # ---- inside ---------------------------------------------------------------------------------

    def _add(
        self, post: Post, user_id: str, name: str, text: str, reply_to: str | None
    ) -> PostComment:
        if reply_to is not None and reply_to not in {c.id for c in post.comments if not c.deleted}:
            raise CommentError(100, f"(#100) comment {reply_to} is not under this post")
        number = next(self._numbers)
        comment_id = f"1800000000{number:07d}" if self.instagram else f"{post.id}_{number}"
        comment = PostComment(
            comment_id, post.id, user_id, self.author_id(user_id), name, text, time.time(), reply_to
        )
        post.comments.append(comment)
        self._comments[comment_id] = comment
        self._change(comment, "add")
        return comment

    def _graph_comment(self, comment: PostComment) -> JSON:
        """A comment as the Graph API reads it: a Page's `message`, `from.name` and
        `created_time`; an Instagram comment's `text`, `from.username` and `timestamp`."""
        when = time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(comment.created_at))
        if self.instagram:
            author = {"id": comment.from_id, "username": comment.from_name}
            return {"id": comment.id, "text": comment.text, "from": author, "timestamp": when}
        author = {"id": comment.from_id, "name": comment.from_name}
        return {"id": comment.id, "message": comment.text, "from": author, "created_time": when}

    def _own(self, user_id: str, comment_id: str) -> PostComment:
        comment = self.find(comment_id)
        if comment.person != user_id or comment.deleted:
            raise KeyError(f"comment {comment_id} of {user_id}")
        if self.instagram:
            raise ValueError("Instagram sends changes for new comments only")
        return comment

    def _change(self, comment: PostComment, verb: str) -> None:
        post = self._posts[comment.post_id]
        if self.instagram:
            value: JSON = {
                "id": comment.id,
                "from": {"id": comment.from_id, "username": comment.from_name},
                "text": comment.text,
                "media": {"id": post.id, "media_product_type": "FEED"},
            }
            if comment.parent_id is not None:
                value["parent_id"] = comment.parent_id
            self._push_change("comments", value)
            return
        value = {
            "from": {"id": comment.from_id, "name": comment.from_name},
            "post": {"id": post.id, "permalink_url": post.permalink, "status_type": "mobile"},
            "item": "comment",
            "verb": verb,
            "post_id": post.id,
            "comment_id": comment.id,
            # a top-level comment's parent is the post (docs/networks.md 3.4)
            "parent_id": comment.parent_id or post.id,
            "created_time": int(comment.created_at),
        }
        if verb != "remove":
            value["message"] = comment.text
        self._push_change("feed", value)
