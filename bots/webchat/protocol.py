"""The frames of `/ws/chat`, JSON text both ways.

Widget -> server: `hello` first (`token`: the stored one or null, `language`), then `message`
(`id`: the widget's own id of the message, `text`), `file` (`id`, `name`, `mime`, `data`: the
content in base64, at most MAX_UPLOAD_BYTES, `text`: an optional caption) and `button` (`id`,
`data`, `label`: a press of a button under a reply). The id makes a message sent again after a
reconnect a duplicate the store drops.

Server -> widget: `welcome` (`token` to keep, `history`), `message` (`id`, `author` visitor / bot
/ agent, `text`, `buttons`, `files`: the names of the files it carries, `links`: the files an
agent sent, each `name`, `photo` (shown as a picture) and `url` (a path on this server, which
only the visitor given it can open), `at` unix time), `ack`
(`id`: accepted, will not be lost) and `error` (`code`, `message`, the `id` of the refused
message when known, and `retry_after`, whole seconds, when a limit refused it and sending it again
later will do: `too_many_visitors` or `busy` for a hello, `too_fast`, `busy`, `too_many_files` or
`file_quota` for a message; see `bots.webchat.limits`). A refused frame changes nothing and the
socket stays open.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import math
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

from bridge.channel import SeenMessage
from bridge.domain import MAX_TEXT_CHARS, PHOTO, Attachment, AuthorKind, Button, OutboundMessage
from bridge.util import json_text

# Room for the longest text with every character escaped (\uXXXX), and the frame around it.
MAX_FRAME_BYTES = 64 * 1024
# A photo the widget has scaled down is a few hundred kB; a document may be larger.
MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_FILE_FRAME_BYTES = MAX_UPLOAD_BYTES * 4 // 3 + MAX_FRAME_BYTES
MAX_BUTTON_CHARS = 64

JSON = dict[str, Any]
ClientId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{8,64}$")]


class _Frame(BaseModel):
    # Fields a newer widget may add are ignored, not refused.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Hello(_Frame):
    type: Literal["hello"]
    token: str | None = None  # one that does not verify gives a new identity, not an error
    language: str | None = None

    @property
    def language_code(self) -> str | None:
        """Two lowercase letters, or None: a browser's odd value is no reason to refuse."""
        code = (self.language or "")[:2].lower()
        return code if len(code) == 2 and code.isalpha() and code.isascii() else None


class Say(_Frame):
    type: Literal["message"]
    id: ClientId
    text: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_TEXT_CHARS)
    ]


class SendFile(_Frame):
    type: Literal["file"]
    id: ClientId
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] | None = None
    # what the visitor's browser says it is: kept for the agent, never trusted to show it
    mime: Annotated[str, StringConstraints(max_length=127)] | None = None
    data: Annotated[str, StringConstraints(min_length=1, max_length=MAX_FILE_FRAME_BYTES)]
    text: Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_TEXT_CHARS)] = ""

    def content(self) -> bytes:
        try:
            content = base64.b64decode(self.data, validate=True)
        except binascii.Error:
            raise FrameError("invalid", "data: not base64", self.id) from None
        if len(content) > MAX_UPLOAD_BYTES:
            message = f"a file may have at most {MAX_UPLOAD_BYTES // (1024 * 1024)} MB"
            raise FrameError("too_large", message, self.id)
        return content


class Press(_Frame):
    type: Literal["button"]
    id: ClientId
    data: Annotated[str, StringConstraints(min_length=1, max_length=MAX_BUTTON_CHARS)]
    label: Annotated[str, StringConstraints(min_length=1, max_length=MAX_BUTTON_CHARS)]


ClientFrame = Hello | Say | SendFile | Press
_ADAPTER: TypeAdapter[ClientFrame] = TypeAdapter(
    Annotated[ClientFrame, Field(discriminator="type")]
)


class FrameError(Exception):
    """A frame refused: `code` for the widget, `message` for a person reading the socket,
    `retry_after` the seconds after which a limit allows it again."""

    def __init__(
        self,
        code: str,
        message: str,
        client_id: str | None = None,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_id = client_id
        self.retry_after = retry_after

    def frame(self) -> JSON:
        frame: JSON = {"type": "error", "code": self.code, "message": self.message}
        if self.client_id is not None:
            frame["id"] = self.client_id
        if self.retry_after is not None:
            frame["retry_after"] = math.ceil(self.retry_after)
        return frame


def parse(raw: str) -> ClientFrame:
    size = len(raw.encode())
    if size > MAX_FILE_FRAME_BYTES:
        raise FrameError("too_large", f"a frame may have at most {MAX_FILE_FRAME_BYTES} bytes")
    try:
        data = json_text.loads(raw)  # a browser may send a lone surrogate, as JS strings hold
    except ValueError as exc:
        raise FrameError("bad_json", f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise FrameError("bad_json", "a frame is a JSON object")
    kind = data.get("type")
    if kind not in ("hello", "message", "file", "button"):
        raise FrameError("unknown_type", f"unknown frame type {kind!r}")
    client_id = data.get("id") if isinstance(data.get("id"), str) else None
    if kind != "file" and size > MAX_FRAME_BYTES:
        raise FrameError("too_large", f"a frame may have at most {MAX_FRAME_BYTES} bytes")
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as exc:
        if any(e["type"] == "string_too_long" and e["loc"][-1] == "text" for e in exc.errors()):
            message = f"a message may have at most {MAX_TEXT_CHARS} characters"
            raise FrameError("too_long", message, client_id) from None
        reasons = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'][1:]) or 'frame'}: {e['msg']}" for e in exc.errors()
        )
        raise FrameError("invalid", reasons, client_id) from None


def welcome(token: str, history: list[JSON]) -> JSON:
    return {"type": "welcome", "token": token, "history": history}


def ack(client_id: str) -> JSON:
    return {"type": "ack", "id": client_id}


def visitor_message(client_id: str, text: str, at: float, files: Sequence[str] = ()) -> JSON:
    return _message(client_id, "visitor", text, [], at, files)


Link = Callable[[Attachment], str]
"""The address of a file an agent sent, for the visitor the frame goes to."""


def reply(message: OutboundMessage, at: float, link: Link) -> JSON:
    return _message(
        reply_id(message.message_id),
        _author(message.author_kind),
        message.text,
        message.buttons,
        at,
        [a.name or a.kind for a in message.attachments],
        _links(message.attachments, link),
    )


def from_history(seen: SeenMessage, link: Link) -> JSON:
    at = seen.created_at.astimezone(dt.UTC).timestamp()
    if seen.author_kind is AuthorKind.CUSTOMER:
        # stored as "<visitor>:<widget's id>": the widget knows its messages by the second part
        client_id = (seen.network_message_id or "").partition(":")[2] or reply_id(seen.id)
        return visitor_message(client_id, seen.text, at, seen.files)
    return _message(
        reply_id(seen.id),
        _author(seen.author_kind),
        seen.text,
        seen.buttons,
        at,
        seen.files,
        _links(seen.attachments, link),
    )


def _links(attachments: Sequence[Attachment], link: Link) -> list[JSON]:
    return [
        {"name": a.name or a.kind, "photo": a.kind == PHOTO, "url": link(a)} for a in attachments
    ]


def reply_id(message_id: int) -> str:
    """The frame id of a stored reply; ':' is outside the widget's ids, so they never meet."""
    return f"out:{message_id}"


def _author(kind: AuthorKind) -> str:
    return "agent" if kind is AuthorKind.AGENT else "bot"


def _message(
    id_: str,
    author: str,
    text: str,
    buttons: list[Button],
    at: float,
    files: Sequence[str] = (),
    links: Sequence[JSON] = (),
) -> JSON:
    return {
        "type": "message",
        "id": id_,
        "author": author,
        "text": text,
        "buttons": [{"label": b.label, "data": b.data} for b in buttons],
        "files": list(files),
        "links": list(links),
        "at": at,
    }
