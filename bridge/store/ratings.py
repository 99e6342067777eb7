"""Customers' ratings of resolved conversations (`csat_ratings`): the data of the rating buttons,
and the rows as routing reads and changes them. Here, on the ground floor, because the inbox
asks (when an agent resolves) and the pipeline hears the answer (the press)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.models import csat_ratings

SCORES = range(1, 6)
SATISFIED = 4  # a rating of 4 or 5 counts as a satisfied customer
_PREFIX = "csat"


def rating_data(request_message_id: int, score: int) -> str:
    """A rating button's data: the request it answers and the score (Telegram allows 64 bytes)."""
    return f"{_PREFIX}:{request_message_id}:{score}"


def is_rating_data(button_data: str | None) -> bool:
    """Data of a rating button, well formed or not (a malformed one is ignored, not routed)."""
    return (button_data or "").partition(":")[0] == _PREFIX


@dataclass(frozen=True, slots=True)
class RatingPress:
    request_message_id: int
    score: int


def parse_rating(button_data: str | None) -> RatingPress | None:
    """The press a rating button's data stands for, else None (the data comes from a device)."""
    parts = (button_data or "").split(":")
    if len(parts) != 3 or parts[0] != _PREFIX or not all(map(_is_number, parts[1:])):
        return None
    request, score = int(parts[1]), int(parts[2])
    return RatingPress(request, score) if score in SCORES else None


def _is_number(text: str) -> bool:
    return text.isascii() and text.isdigit()


@dataclass(slots=True)
class RatingAsk:
    """One request for a rating, changed in memory by routing and written back once."""

    id: int
    conversation_id: int
    request_message_id: int
    rating: int | None
    rated_at: dt.datetime | None
    comment: str | None
    commented_at: dt.datetime | None
    changed: bool = False


async def load_asks(
    conn: AsyncConnection, conversation_ids: Iterable[int]
) -> dict[int, list[RatingAsk]]:
    """The requests for a rating sent in these conversations, by conversation, oldest first."""
    ids = sorted(set(conversation_ids))
    if not ids:
        return {}
    r = csat_ratings.c
    rows = await conn.execute(
        sa.select(
            r.id,
            r.conversation_id,
            r.request_message_id,
            r.rating,
            r.rated_at,
            r.comment,
            r.commented_at,
        )
        .where(r.conversation_id.in_(ids))
        .order_by(r.id)
    )
    asks: dict[int, list[RatingAsk]] = {}
    for row in rows:
        asks.setdefault(row.conversation_id, []).append(RatingAsk(*row))
    return asks


async def write_back(conn: AsyncConnection, asks: Iterable[RatingAsk]) -> None:
    changed = [ask for ask in asks if ask.changed]
    if not changed:
        return
    r = csat_ratings.c
    await conn.execute(
        sa.update(csat_ratings)
        .where(r.id == sa.bindparam("row_id"))
        .values(
            rating=sa.bindparam("rating"),
            rated_at=sa.bindparam("rated_at"),
            comment=sa.bindparam("comment"),
            commented_at=sa.bindparam("commented_at"),
        ),
        [
            {
                "row_id": ask.id,
                "rating": ask.rating,
                "rated_at": ask.rated_at,
                "comment": ask.comment,
                "commented_at": ask.commented_at,
            }
            for ask in changed
        ],
    )
