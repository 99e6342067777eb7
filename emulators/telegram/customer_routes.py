"""The customer side over HTTP, for another process (a benchmark, the sandbox's page): under
`/_emulator/users/{user_id}/...` (in a chat of a business account connected to the bot:
`/_emulator/business/{connection_id}/users/{user_id}/...`), a JSON body (a file as
`data_base64`) or a multipart form (a file as `file`), the bot named by `?bot=<id>` (default: the
first). A body with `first_name` sets the user's profile first. A user comments on the brand's
channel posts at `/_emulator/users/{user_id}/comments`; `/_emulator/discussion` is the channel's
discussion group as everyone sees it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulators.control import customer_route
from emulators.files import uploaded
from emulators.telegram.customer_side import CustomerSide
from emulators.telegram.state import JSON

_Action = Callable[["_Body", int | None], Any]


def customer_routes(side: CustomerSide, prefix: str) -> list[web.RouteDef]:
    user = f"{prefix}/users/{{user_id:[0-9]+}}"
    business_user = f"{prefix}/business/{{connection_id}}/users/{{user_id:[0-9]+}}"

    def route(method: str, path: str, action: _Action) -> web.RouteDef:
        async def act(request: web.Request) -> Any:
            body = await _Body.read(request)
            bot = _bot_param(request)
            if (first_name := body.optional("first_name")) and body.user_id is not None:
                side.customer(
                    body.user_id,
                    first_name=first_name,
                    last_name=body.optional("last_name"),
                    username=body.optional("username"),
                    language_code=body.optional("language_code"),
                )
            return action(body, bot)

        return customer_route(method, path, act)

    def write_text(body: _Body, bot: int | None) -> JSON:
        return side.write_text(body.user(), body.text("text"), bot=bot)

    def write_photo(body: _Body, bot: int | None) -> JSON:
        return side.write_photo(
            body.user(),
            body.file(),
            caption=body.optional("caption"),
            width=int(body.optional("width") or 1280),
            height=int(body.optional("height") or 960),
            bot=bot,
        )

    def write_document(body: _Body, bot: int | None) -> JSON:
        return side.write_document(
            body.user(),
            body.file(),
            file_name=body.optional("file_name") or body.file_name or "document.bin",
            mime_type=body.optional("mime_type") or body.file_type or "application/octet-stream",
            caption=body.optional("caption"),
            bot=bot,
        )

    def edit_message(body: _Body, bot: int | None) -> JSON:
        message_id = int(body.text("message_id"))
        return side.edit_message(body.user(), message_id, body.text("text"), bot=bot)

    def press_button(body: _Body, bot: int | None) -> JSON:
        message_id = int(body.text("message_id"))
        query_id = side.press_button(body.user(), message_id, body.text("callback_data"), bot=bot)
        return {"callback_query_id": query_id}

    def block(body: _Body, bot: int | None) -> bool:
        side.block_bot(body.user(), bot=bot)
        return True

    def unblock(body: _Body, bot: int | None) -> bool:
        side.unblock_bot(body.user(), bot=bot)
        return True

    def bot_messages(body: _Body, bot: int | None) -> list[JSON]:
        return [message.as_dict() for message in side.bot_messages(body.user(), bot=bot)]

    def sent_messages(_body: _Body, bot: int | None) -> list[JSON]:
        return [message.as_dict() for message in side.sent_messages(bot=bot)]

    def callback_query(body: _Body, bot: int | None) -> JSON:
        return side.callback_query(body.text("query_id"), bot=bot).as_dict()

    def write_business(body: _Body, bot: int | None) -> JSON:
        connection = body.text("connection_id")
        return side.write_business(connection, body.user(), body.text("text"), bot=bot)

    def business_messages(body: _Body, bot: int | None) -> list[JSON]:
        connection = body.text("connection_id")
        sent = side.business_messages(connection, body.user(), bot=bot)
        return [message.as_dict() for message in sent]

    def press_business_button(body: _Body, bot: int | None) -> JSON:
        message_id, data = int(body.text("message_id")), body.text("callback_data")
        connection = body.text("connection_id")
        query_id = side.press_button(body.user(), message_id, data, bot=bot, business=connection)
        return {"callback_query_id": query_id}

    def write_comment(body: _Body, bot: int | None) -> JSON:
        reply_to = body.optional("reply_to")
        return side.comment(
            body.user(),
            int(body.text("post_id")),
            body.text("text"),
            reply_to=int(reply_to) if reply_to else None,
            bot=bot,
        )

    def discussion(_body: _Body, bot: int | None) -> list[JSON]:
        return side.group_messages(bot=bot)

    return [
        route("POST", f"{user}/messages", write_text),
        route("POST", f"{user}/comments", write_comment),
        route("GET", f"{prefix}/discussion", discussion),
        route("POST", f"{user}/photos", write_photo),
        route("POST", f"{user}/documents", write_document),
        route("POST", f"{user}/messages/{{message_id:[0-9]+}}/edit", edit_message),
        route("POST", f"{user}/button-presses", press_button),
        route("POST", f"{user}/block", block),
        route("POST", f"{user}/unblock", unblock),
        route("GET", f"{user}/bot-messages", bot_messages),
        route("GET", f"{prefix}/bot-messages", sent_messages),
        route("GET", f"{prefix}/callback-queries/{{query_id}}", callback_query),
        route("POST", f"{business_user}/messages", write_business),
        route("GET", f"{business_user}/bot-messages", business_messages),
        route("POST", f"{business_user}/button-presses", press_business_button),
    ]


@dataclass(slots=True)
class _Body:
    """A customer call: path parameters and a JSON body (a file as `data_base64`) or a multipart
    form (a file as `file`)."""

    fields: dict[str, Any]
    data: bytes | None = None
    file_name: str | None = None
    file_type: str | None = None

    @classmethod
    async def read(cls, request: web.Request) -> _Body:
        body = cls({})
        if request.content_type.startswith("multipart/"):
            for name, value in (await request.post()).items():
                if isinstance(value, web.FileField):
                    body.data = value.file.read()
                    body.file_name, body.file_type = value.filename, value.content_type
                else:
                    body.fields[name] = value
        elif request.body_exists:
            fields = await request.json()
            if not isinstance(fields, dict):
                raise ValueError("the body must be a JSON object")
            body.fields = fields
            if encoded := fields.get("data_base64"):
                body.data = uploaded(encoded)
        body.fields.update(request.match_info)  # the path names the user, message or query
        return body

    @property
    def user_id(self) -> int | None:
        raw = self.optional("user_id")
        return int(raw) if raw is not None else None

    def user(self) -> int:
        return int(self.text("user_id"))

    def text(self, name: str) -> str:
        value = self.optional(name)
        if value is None:
            raise ValueError(f"{name} is required")
        return value

    def optional(self, name: str) -> str | None:
        value = self.fields.get(name)
        return None if value is None else str(value)

    def file(self) -> bytes:
        if self.data is None:
            raise ValueError("a file is required (multipart field 'file' or JSON 'data_base64')")
        return self.data


def _bot_param(request: web.Request) -> int | None:
    raw = request.query.get("bot")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError("bot must be a bot id (the digits of its token)") from None
