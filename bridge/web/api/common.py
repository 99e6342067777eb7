"""What the API's resources share: reading a JSON body and a path's id, answering JSON, the
pieces of bodies and answers several of them use, and `json_errors`, which makes every refusal
under /api/ a JSON answer."""

from __future__ import annotations

from typing import Annotated, TypeVar

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bridge.web.openapi import MAX_ID, ErrorOut, row_id

LANGUAGE_PARAM = {"type": "string", "enum": ["ru", "en"]}
# "Not only whitespace" as a pattern that means the same to clients' regular expressions
# (JavaScript's \s leaves out U+001C..U+001F and U+0085) and to Python, whose strip takes them.
NOT_ONLY_WHITESPACE = r"[^\s\x1c-\x1f\x85]"
RowId = Annotated[int, Field(ge=1, le=MAX_ID)]
Model = TypeVar("Model", bound=BaseModel)


class Body(BaseModel):
    """A request's body: a field the endpoint does not know is refused, not ignored."""

    model_config = ConfigDict(extra="forbid")


class Done(BaseModel):
    ok: bool = True


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    return web.json_response(text=model.model_dump_json(), status=status)


async def read_body(request: web.Request, model: type[Model]) -> Model:
    try:
        return model.model_validate_json(await request.read())
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise web.HTTPBadRequest(text=f"{where}: {first['msg']}") from None


def path_id(request: web.Request, name: str) -> int:
    value = row_id(request.match_info[name])
    if value is None:
        raise web.HTTPNotFound(text=f"no such {name}")
    return value


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Under /api/, every refusal is `{"error": reason}` with its status."""
    if not request.path.startswith("/api/"):
        return await handler(request)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        reason = exc.text if exc.text and not exc.text.startswith(str(exc.status)) else exc.reason
        return json_response(ErrorOut(error=reason or "error"), status=exc.status)
