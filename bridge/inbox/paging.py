"""Keyset cursors of the conversation list: a page starts after the last row of the one before
(its priority, sort key and id), not after a number of rows, so a page deep in the list costs
what the first one does and a conversation that leaves the view does not shift the next page."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from dataclasses import dataclass

import orjson

PAGE_SIZE = 100
MAX_PAGE_SIZE = 500
# ids past a 64-bit integer are refused before the database sees them
_MAX_ID = 2**63
MAX_PRIORITY = 2  # conversations.priority: urgent by a listening rule, and angry


class CursorError(ValueError):
    """A cursor the list did not give (edited, truncated, or of another version)."""


@dataclass(frozen=True, slots=True)
class Cursor:
    key: dt.datetime
    id: int
    priority: int = 0  # the urgency the open views sort by first

    def encode(self) -> str:
        raw = orjson.dumps([self.key.isoformat(), self.id, self.priority])
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    @classmethod
    def decode(cls, text: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            key, row_id, priority = orjson.loads(raw)
            found = cls(dt.datetime.fromisoformat(key), row_id, priority)
        except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError) as exc:
            raise CursorError("cursor: not one this list gave") from exc
        if (
            found.key.tzinfo is None
            or type(found.id) is not int
            or not 0 <= found.id < _MAX_ID
            or type(found.priority) is not int
            or not 0 <= found.priority <= MAX_PRIORITY
        ):
            raise CursorError("cursor: not one this list gave")
        return found


def page_size(text: str | None) -> int:
    """The `limit` asked for: 1 to MAX_PAGE_SIZE, PAGE_SIZE when not given."""
    if not text:
        return PAGE_SIZE
    try:
        size = int(text)
    except ValueError:
        raise ValueError(f"limit: a whole number from 1 to {MAX_PAGE_SIZE}") from None
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"limit: a whole number from 1 to {MAX_PAGE_SIZE}")
    return size
