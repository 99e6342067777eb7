"""The inbox list's choices as URL parameters, read alike by the page and by the API, and written
back for the links to other views and to the next page."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from urllib.parse import urlencode
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bridge.domain import Network
from bridge.inbox.paging import Cursor, page_size
from bridge.inbox.search import search_words
from bridge.inbox.views import NOBODY, InboxQuery, View
from bridge.web.i18n import LANGUAGES
from bridge.web.openapi import MAX_ID, row_id

NONE = "none"  # as an assignee or a team: the conversations of nobody, of no team
UTC = "UTC"
MAX_TIME_ZONE = 64  # the longest name in the IANA database has 32 characters


def inbox_query(params: Mapping[str, str]) -> InboxQuery:
    """Raises ValueError, saying which parameter is wrong and why."""
    try:
        view = View(params.get("view") or View.WAITING.value)
    except ValueError:
        raise ValueError(f"view: one of {', '.join(View)}") from None
    try:
        network = Network(params["network"]) if params.get("network") else None
    except ValueError:
        raise ValueError(f"network: one of {', '.join(Network)}") from None
    language = params.get("language") or None
    if language is not None and language not in LANGUAGES:
        raise ValueError(f"language: one of {', '.join(LANGUAGES)}")
    cursor = params.get("cursor")
    return InboxQuery(
        view=view,
        network=network,
        language=language,
        limit=page_size(params.get("limit")),
        after=Cursor.decode(cursor) if cursor else None,
        search=search_words(params.get("q")),
        label=_id("label", params.get("label"), "a label's id"),
        assignee=_id("assignee", params.get("assignee"), "an agent's id", none=True),
        team=_id("team", params.get("team"), "a team's id", none=True),
        since=_day("since", params.get("since")),
        until=_day("until", params.get("until")),
        time_zone=_time_zone(params.get("tz")),
    )


def _id(name: str, text: str | None, what: str, *, none: bool = False) -> int | None:
    if not text:
        return None
    if none and text == NONE:
        return NOBODY
    found = row_id(text)
    if found is None:
        alternative = f" or {NONE}" if none else ""
        raise ValueError(f"{name}: {what} (1 to {MAX_ID}){alternative}")
    return found


def _day(name: str, text: str | None) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{name}: a day written YYYY-MM-DD") from None


def _time_zone(text: str | None) -> str:
    """The time zone whose days `since` and `until` are (the page sends the browser's)."""
    if not text:
        return UTC
    try:
        # the length first: a key is looked up as a file name
        if len(text) <= MAX_TIME_ZONE:
            return ZoneInfo(text).key
    except (ValueError, ZoneInfoNotFoundError):
        pass
    raise ValueError("tz: a time zone of the IANA database, such as Europe/Moscow")


def filter_params(query: InboxQuery) -> str:
    """Every choice but the view and the page, as URL parameters."""
    return urlencode(chosen_filters(query))


def chosen_filters(query: InboxQuery) -> dict[str, str]:
    """Every choice but the view and the page, by parameter name."""

    def written(value: int | None) -> str | None:
        return None if value is None else NONE if value == NOBODY else str(value)

    chosen = {
        "network": query.network.value if query.network else None,
        "language": query.language,
        "label": written(query.label),
        "assignee": written(query.assignee),
        "team": written(query.team),
        "since": query.since.isoformat() if query.since else None,
        "until": query.until.isoformat() if query.until else None,
        "tz": query.time_zone if query.time_zone != UTC else None,
        "q": query.search,
    }
    return {name: value for name, value in chosen.items() if value}
