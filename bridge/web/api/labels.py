"""Labels: every agent reads the list (for pickers), admins create, rename, recolour and delete
them. Putting them on a conversation is `conversation_actions`. Refusals: 404 no such label,
409 a name taken, 400 a body that is not one."""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StringConstraints

from bridge.inbox.labels import (
    COLOUR_PATTERN,
    MAX_NAME_CHARS,
    LabelError,
    LabelNotFound,
    change_label,
    create_label,
    delete_label,
    list_labels,
)
from bridge.web.api.common import NOT_ONLY_WHITESPACE, Body, Done, json_response, path_id, read_body
from bridge.web.keys import ENGINE
from bridge.web.openapi import Endpoints

endpoints = Endpoints()

# the pattern documents "not only whitespace"; the label's own rules refuse the rest (409)
Name = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME_CHARS, pattern=NOT_ONLY_WHITESPACE),
]
Colour = Annotated[str, StringConstraints(pattern=COLOUR_PATTERN)]


class LabelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    colour: str


class LabelList(BaseModel):
    labels: list[LabelOut]


class LabelIn(Body):
    name: Name
    colour: Colour


class LabelPatch(Body):
    """What to change; a field left out stays as it is."""

    name: Name | None = None
    colour: Colour | None = None


@endpoints.route("GET", "/api/labels", "Every label, by name", answer=LabelList)
async def labels_list(request: web.Request) -> web.Response:
    known = await list_labels(request.app[ENGINE])
    return json_response(LabelList(labels=[LabelOut.model_validate(label) for label in known]))


@endpoints.route(
    "POST",
    "/api/admin/labels",
    "Add a label (a name is taken whatever its case)",
    body=LabelIn,
    answer=LabelOut,
    admin=True,
)
async def label_add(request: web.Request) -> web.Response:
    body = await read_body(request, LabelIn)
    try:
        label = await create_label(request.app[ENGINE], body.name, body.colour)
    except LabelError as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    return json_response(LabelOut.model_validate(label))


@endpoints.route(
    "PATCH",
    "/api/admin/labels/{label_id}",
    "Rename or recolour a label; the conversations keep it",
    body=LabelPatch,
    answer=LabelOut,
    admin=True,
)
async def label_change(request: web.Request) -> web.Response:
    body = await read_body(request, LabelPatch)
    try:
        label = await change_label(
            request.app[ENGINE], path_id(request, "label_id"), name=body.name, colour=body.colour
        )
    except LabelNotFound:
        raise web.HTTPNotFound(text="no such label") from None
    except LabelError as exc:
        raise web.HTTPConflict(text=str(exc)) from None
    return json_response(LabelOut.model_validate(label))


@endpoints.route(
    "DELETE",
    "/api/admin/labels/{label_id}",
    "Delete a label; the conversations lose it",
    answer=Done,
    admin=True,
)
async def label_delete(request: web.Request) -> web.Response:
    try:
        await delete_label(request.app[ENGINE], path_id(request, "label_id"))
    except LabelNotFound:
        raise web.HTTPNotFound(text="no such label") from None
    return json_response(Done())
