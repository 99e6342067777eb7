"""The community's public places, as the VK emulator serves them (emulators.vk): wall posts,
photos, videos, market items and board topics, the users' comments under them and the
community's replies. Facts and sources: docs/networks.md 2.7.

What it does as VK documents: each comment, edit and delete is an event (`wall_reply_new`,
`photo_comment_edit`, `board_post_delete`, ...) with the object VK describes for it; the
community comments with `wall.createComment`, `photos.createComment`, `video.createComment`,
`market.createComment` and `board.createComment`; `wall.getById` gives posts. Unconfirmed and
chosen here: a comment's `guid` deduplicates the community's comments on every method (VK
documents it for wall and photos); the community's own comments produce events too (with a
negative `from_id`); a comment by a community token without `from_group` is refused with error
100; comment ids are numbered per place kind, walls sharing their posts' sequence.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

JSON = dict[str, Any]
Kind = Literal["wall", "photo", "video", "market", "topic"]
Method = Callable[[JSON, web.Request], Awaitable[Any]]
MAX_COMMENT_CHARS = 16_384  # unconfirmed: VK documents no limit for a comment's text

# Per kind: the events' prefix, the field naming the item, the field naming its owner in a new
# comment, and the method the community comments with (docs/networks.md 2.7).
PLACES: dict[str, tuple[str, str, str, str]] = {
    "wall": ("wall_reply", "post_id", "post_owner_id", "wall.createComment"),
    "photo": ("photo_comment", "photo_id", "photo_owner_id", "photos.createComment"),
    "video": ("video_comment", "video_id", "video_owner_id", "video.createComment"),
    "market": ("market_comment", "item_id", "market_owner_id", "market.createComment"),
    "topic": ("board_post", "topic_id", "topic_owner_id", "board.createComment"),
}


def kind_of(value: str) -> Kind:
    """A place kind named in a request; ValueError for any other word."""
    for kind in ("wall", "photo", "video", "market", "topic"):
        if value == kind:
            return kind
    raise ValueError(f"no place kind {value!r}: wall, photo, video, market or topic")


class WallError(Exception):
    """A call VK would refuse: the emulator answers the error `code`."""

    def __init__(self, code: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code


@dataclass(slots=True)
class Comment:
    id: int
    kind: str
    item_id: int
    from_id: int
    text: str
    date: int
    reply_to_comment: int | None = None
    deleted: bool = False

    def as_dict(self) -> JSON:
        return {
            "id": self.id,
            "kind": self.kind,
            "item_id": self.item_id,
            "from_id": self.from_id,
            "text": self.text,
            "date": self.date,
            "reply_to_comment": self.reply_to_comment,
            "deleted": self.deleted,
        }


@dataclass(slots=True)
class Place:
    """A post, photo, video, item or topic of the community."""

    kind: str
    id: int
    text: str
    date: int
    comments: list[Comment] = field(default_factory=list)


AddEvent = Callable[[str, JSON], None]


class VkWall:
    def __init__(self, group_id: int, add_event: AddEvent, first_id: int) -> None:
        self.group_id = group_id
        self._add_event = add_event
        self._places: dict[tuple[str, int], Place] = {}
        # walls number posts and comments in one sequence; other kinds their comments apart
        self._ids = {kind: itertools.count(first_id) for kind in PLACES}
        self._by_guid: dict[str, Comment] = {}

    @property
    def owner_id(self) -> int:
        return -self.group_id

    def methods(self) -> dict[str, Method]:
        return {
            "wall.getById": self._get_by_id,
            **{method: self._method(kind) for kind, (*_, method) in PLACES.items()},
        }

    # ---- the community and its customers (tests and the sandbox) ------------------------------

    def add_place(self, text: str, kind: Kind = "wall") -> Place:
        """The community publishes a post (or a photo, video, item, topic) with `text`."""
        place = Place(kind, next(self._ids[kind]), text, int(time.time()))
        self._places[(kind, place.id)] = place
        return place

    def places(self) -> list[Place]:
        return list(self._places.values())

    def place(self, kind: str, item_id: int) -> Place:
        found = self._places.get((kind, item_id))
        if found is None:
            raise KeyError(f"no {kind} {item_id}")
        return found

    def comment(
        self,
        user_id: int,
        item_id: int,
        text: str,
        *,
        kind: Kind = "wall",
        reply_to: int | None = None,
    ) -> Comment:
        """User `user_id` comments under the place, perhaps answering the comment `reply_to`."""
        return self._add_comment(self.place(kind, item_id), user_id, text, reply_to)

    def edit_comment(self, user_id: int, kind: str, comment_id: int, text: str) -> Comment:
        place, comment = self._find(kind, comment_id)
        if comment.from_id != user_id or comment.deleted:
            raise KeyError(f"comment {comment_id} of user {user_id}")
        comment.text = text
        self._add_event(f"{PLACES[kind][0]}_edit", self._comment_object(place, comment))
        return comment

    def delete_comment(self, user_id: int, kind: str, comment_id: int) -> Comment:
        place, comment = self._find(kind, comment_id)
        if comment.from_id != user_id or comment.deleted:
            raise KeyError(f"comment {comment_id} of user {user_id}")
        comment.deleted = True
        prefix, id_field, owner_field, _ = PLACES[kind]
        gone: JSON
        if kind == "topic":
            gone = {owner_field: self.owner_id, id_field: place.id, "id": comment.id}
        else:
            gone = {
                "owner_id": self.owner_id,
                "id": comment.id,
                "user_id": user_id,
                "deleter_id": user_id,
                id_field: place.id,
            }
        self._add_event(f"{prefix}_delete", gone)
        return comment

    def community_comments(self) -> list[Comment]:
        """What the community posted, oldest first."""
        return sorted(
            (c for p in self._places.values() for c in p.comments if c.from_id == self.owner_id),
            key=lambda c: c.date,
        )

    # ---- methods --------------------------------------------------------------------------------

    async def _get_by_id(self, params: JSON, _request: web.Request) -> JSON:
        items = []
        for name in str(params.get("posts", "")).split(","):
            owner, _, post = name.strip().partition("_")
            found = self._places.get(("wall", int(post))) if post.isdigit() else None
            if found is not None and owner == str(self.owner_id):
                items.append(
                    {
                        "id": found.id,
                        "owner_id": self.owner_id,
                        "from_id": self.owner_id,
                        "date": found.date,
                        "text": found.text,
                        "comments": {"count": len(found.comments)},
                    }
                )
        return {"items": items}

    def _method(self, kind: str) -> Method:
        async def create(params: JSON, _request: web.Request) -> Any:
            _, id_field, _, _ = PLACES[kind]
            if kind == "topic":
                if _int(params, "group_id") != self.group_id:
                    raise WallError(100, "group_id is invalid")
            elif _int(params, "owner_id") != self.owner_id:
                raise WallError(100, "owner_id is invalid")
            # wall.createComment takes the community's id, the other methods 1
            as_community = str(self.group_id) if kind == "wall" else "1"
            if str(params.get("from_group", "")) != as_community:
                raise WallError(100, "from_group: a community token comments as the community")
            text = str(params.get("message", ""))
            if not text.strip():
                raise WallError(100, "message is empty")
            if len(text) > MAX_COMMENT_CHARS:
                raise WallError(100, "message is too long")
            guid = str(params["guid"]) if params.get("guid") else None
            if guid is not None and (repeat := self._by_guid.get(f"{kind}:{guid}")) is not None:
                return self._created(kind, repeat)
            place = self._places.get((kind, _int(params, id_field)))
            if place is None:
                raise WallError(100, f"{id_field} is invalid")
            reply_to = _int(params, "reply_to_comment") if params.get("reply_to_comment") else None
            comment = self._add_comment(place, self.owner_id, text, reply_to)
            if guid is not None:
                self._by_guid[f"{kind}:{guid}"] = comment
            return self._created(kind, comment)

        return create

    @staticmethod
    def _created(kind: str, comment: Comment) -> Any:
        # wall.createComment answers an object, the other methods the id itself
        return {"comment_id": comment.id, "parents_stack": []} if kind == "wall" else comment.id

    # ---- inside ---------------------------------------------------------------------------------

    def _add_comment(self, place: Place, from_id: int, text: str, reply_to: int | None) -> Comment:
        if reply_to is not None and not any(
            c.id == reply_to and not c.deleted for c in place.comments
        ):
            raise WallError(100, f"reply_to_comment {reply_to} is not under this {place.kind}")
        comment = Comment(
            next(self._ids[place.kind]),
            place.kind,
            place.id,
            from_id,
            text,
            int(time.time()),
            reply_to,
        )
        place.comments.append(comment)
        self._add_event(f"{PLACES[place.kind][0]}_new", self._comment_object(place, comment))
        return comment

    def _find(self, kind: str, comment_id: int) -> tuple[Place, Comment]:
        for place in self._places.values():
            for comment in place.comments:
                if place.kind == kind and comment.id == comment_id:
                    return place, comment
        raise KeyError(f"no {kind} comment {comment_id}")

    def _comment_object(self, place: Place, comment: Comment) -> JSON:
        """VK's comment object with the id and owner of what it is under."""
        _, id_field, owner_field, _ = PLACES[place.kind]
        found: JSON = {
            "id": comment.id,
            "from_id": comment.from_id,
            "date": comment.date,
            "text": comment.text,
            "attachments": [],
            id_field: place.id,
            owner_field: self.owner_id,
        }
        if place.kind == "wall":
            found["owner_id"] = self.owner_id
            found["parents_stack"] = [comment.reply_to_comment] if comment.reply_to_comment else []
            found["thread"] = {"count": 0, "items": [], "can_post": True}
        if comment.reply_to_comment is not None:
            parent = next(c for c in place.comments if c.id == comment.reply_to_comment)
            found["reply_to_comment"] = parent.id
            found["reply_to_user"] = parent.from_id
        return found


def _int(params: JSON, name: str) -> int:
    try:
        return int(str(params[name]))
    except (KeyError, ValueError):
        raise WallError(100, f"{name} is undefined or not a number") from None
