"""A Bot API call's parameters: reading them as the server takes them (query string and a
urlencoded, multipart or JSON body), and checking the ones `sendMessage` and
`editMessageText` share (chat, text, parse mode, reply markup)."""

from __future__ import annotations

import html
import itertools
import json
import re
from typing import Any

from aiohttp import web

from emulators.telegram.answers import ApiError

Params = dict[str, Any]

MAX_TEXT_LENGTH = 4096
MAX_CALLBACK_DATA_BYTES = 64

_HTML_TAG_RE = re.compile(r"<[^>]*>")
_MARKDOWN_LINK_RE = re.compile(r"\[([^\]]*)\]\([^)]*\)")


async def read_params(request: web.Request) -> Params:
    """Parameters from the query string and a urlencoded, multipart or JSON body, as TBA takes."""
    params: Params = dict(request.query)
    if request.method != "POST" or not request.body_exists:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError:
            raise ApiError(400, "Bad Request: can't parse JSON encoded request") from None
        if not isinstance(body, dict):
            raise ApiError(400, "Bad Request: JSON request must be an Object")
        params.update(body)
    elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        params.update((await request.post()).items())
    return params


def arg_str(params: Params, name: str) -> str:
    value = params.get(name)
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value)  # an object given natively in a JSON body


def arg_int(
    params: Params, name: str, default: int, low: int | None = None, high: int | None = None
) -> int:
    raw = arg_str(params, name).strip()
    if not raw:
        value = default
    else:
        # like TBA's to_integer: the leading number, 0 for garbage
        match = re.match(r"[+-]?[0-9]+", raw)
        value = int(match.group()) if match else 0
    if low is not None:
        value = max(value, low)
    if high is not None:
        value = min(value, high)
    return value


def arg_bool(params: Params, name: str) -> bool:
    return arg_str(params, name).strip().lower() in ("true", "yes", "1")


def arg_json(params: Params, name: str, error: str) -> Any:
    """A JSON-serialised parameter (aiogram and PTB send objects as JSON strings in forms)."""
    value = params.get(name)
    if not isinstance(value, str):
        return value
    if not value:
        return None
    try:
        return json.loads(value)
    except ValueError:
        raise ApiError(400, error) from None


def chat_id(params: Params) -> int:
    raw = arg_str(params, "chat_id").strip()
    if not raw:
        raise ApiError(400, "Bad Request: chat_id is empty")
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, "Bad Request: chat not found") from None  # no public @chats here


def message_text(params: Params) -> str:
    text = _visible_text(arg_str(params, "text"), arg_str(params, "parse_mode"))
    if not text.strip():
        raise ApiError(400, "Bad Request: message text is empty")
    # counted in code points; whether the server counts UTF-16 units is unconfirmed
    if len(text) > MAX_TEXT_LENGTH:
        raise ApiError(400, "Bad Request: message is too long")
    return text


def _visible_text(text: str, parse_mode: str) -> str:
    """The text left after entity parsing, which the 1-4096 limit applies to."""
    mode = parse_mode.lower()
    if not mode:
        return text
    if mode == "html":
        return html.unescape(_HTML_TAG_RE.sub("", text))
    if mode not in ("markdown", "markdownv2"):
        raise ApiError(400, "Bad Request: unsupported parse_mode")
    text = _MARKDOWN_LINK_RE.sub(r"\1", text)
    markup_chars = "*_`~|" if mode == "markdownv2" else "*_`["
    visible: list[str] = []
    escaped = False
    for char in text:
        if escaped:
            visible.append(char)
            escaped = False
        elif char == "\\" and mode == "markdownv2":
            escaped = True
        elif char not in markup_chars:
            visible.append(char)
    return "".join(visible)


def reply_markup(params: Params) -> dict[str, Any] | None:
    markup = arg_json(params, "reply_markup", "Bad Request: can't parse reply keyboard markup JSON")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise ApiError(400, "Bad Request: object expected as reply markup")
    if "inline_keyboard" in markup:
        _check_inline_keyboard(markup["inline_keyboard"])
    return markup


def _check_inline_keyboard(rows: Any) -> None:
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise ApiError(
            400, 'Bad Request: field "inline_keyboard" of the InlineKeyboardMarkup must be an Array'
        )
    for button in itertools.chain.from_iterable(rows):
        if not isinstance(button, dict) or not isinstance(button.get("text"), str):
            raise ApiError(400, "Bad Request: InlineKeyboardButton must have a text")
        if len(button) == 1:
            raise ApiError(400, "Bad Request: text buttons are unallowed in the inline keyboard")
        data = button.get("callback_data")
        if data is not None and not (
            isinstance(data, str) and 1 <= len(data.encode()) <= MAX_CALLBACK_DATA_BYTES
        ):
            raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
