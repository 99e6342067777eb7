"""A small registry that keeps the REST API and its OpenAPI 3 document in step: each endpoint is
declared once, with pydantic models for its body and answer, and the document is built from the
declarations (schemas by pydantic), so it cannot drift from what the handlers accept and answer."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, JsonSchemaValue, models_json_schema

MAX_ID = 2**31 - 1  # the store's integer keys
ADMIN_API = "/api/admin/"


def row_id(text: str) -> int | None:
    """A path's id, or None when it cannot name a stored row (so: not found, not an error)."""
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 1 <= value <= MAX_ID else None


class ErrorOut(BaseModel):
    error: str


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    summary: str
    handler: Handler
    body: type[BaseModel] | None
    answer: type[BaseModel] | None
    admin: bool
    query: tuple[tuple[str, dict[str, Any]], ...]
    # A file fetched from elsewhere (not JSON): its type, and a 502 when it cannot be had.
    file_type: str | None = None
    # a path parameter that is not a row's id (those are integers), with its schema
    path_params: tuple[tuple[str, dict[str, Any]], ...] = ()
    # a body sent as a multipart form (files), instead of JSON: its fields
    form: type[BaseModel] | None = None


@dataclass
class Endpoints:
    """The endpoints of one resource: each handler declares itself with `route`."""

    declared: list[Endpoint] = field(default_factory=list)

    def route(
        self,
        method: str,
        path: str,
        summary: str,
        *,
        body: type[BaseModel] | None = None,
        answer: type[BaseModel] | None = None,
        admin: bool = False,
        query: tuple[tuple[str, dict[str, Any]], ...] = (),
        file_type: str | None = None,
        path_params: tuple[tuple[str, dict[str, Any]], ...] = (),
        form: type[BaseModel] | None = None,
    ) -> Callable[[Handler], Handler]:
        if admin != path.startswith(ADMIN_API):
            # `auth` lets only admins under this prefix: the document must say what it does
            raise ValueError(f"{path}: admin endpoints, and only they, are under {ADMIN_API}")

        def register(handler: Handler) -> Handler:
            self.declared.append(
                Endpoint(
                    method,
                    path,
                    summary,
                    handler,
                    body,
                    answer,
                    admin,
                    query,
                    file_type,
                    path_params,
                    form,
                )
            )
            return handler

        return register


@dataclass(frozen=True)
class Api:
    """The whole API, put together from its resources: the routes to serve, and the document."""

    title: str
    version: str
    resources: tuple[Endpoints, ...]

    @property
    def endpoints(self) -> list[Endpoint]:
        return [e for resource in self.resources for e in resource.declared]

    def routes(self) -> list[web.RouteDef]:
        return [web.route(e.method, e.path, e.handler) for e in self.endpoints]

    def document(self) -> dict[str, Any]:
        # a body as the endpoint accepts it, an answer as it is sent (without excluded fields)
        models: set[tuple[type[BaseModel], JsonSchemaMode]] = {(ErrorOut, "serialization")}
        for e in self.endpoints:
            if e.body is not None:
                models.add((e.body, "validation"))
            if e.form is not None:
                models.add((e.form, "validation"))
            if e.answer is not None:
                models.add((e.answer, "serialization"))
        refs, schemas = models_json_schema(
            sorted(models, key=lambda pair: (pair[0].__name__, pair[1])),
            ref_template="#/components/schemas/{model}",
        )
        paths: dict[str, dict[str, Any]] = {}
        for e in self.endpoints:
            operation: dict[str, Any] = {
                "summary": e.summary + (" (admins only)" if e.admin else ""),
                "operationId": e.handler.__name__,
                "responses": _responses(
                    e,
                    refs[(ErrorOut, "serialization")],
                    refs[(e.answer, "serialization")] if e.answer is not None else None,
                ),
            }
            texts = dict(e.path_params)
            parameters = [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": texts.get(name, {"type": "integer", "minimum": 1, "maximum": MAX_ID}),
                }
                for name in re.findall(r"{(\w+)}", e.path)
            ] + [
                {"name": name, "in": "query", "required": False, "schema": schema}
                for name, schema in e.query
            ]
            if parameters:
                operation["parameters"] = parameters
            if e.body is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"application/json": {"schema": refs[(e.body, "validation")]}},
                }
            if e.form is not None:
                operation["requestBody"] = {
                    "required": True,
                    "content": {"multipart/form-data": {"schema": refs[(e.form, "validation")]}},
                }
            paths.setdefault(e.path, {})[e.method.lower()] = operation
        return {
            "openapi": "3.1.0",
            "info": {"title": self.title, "version": self.version},
            "paths": paths,
            "components": {
                "schemas": schemas.get("$defs", {}),
                "securitySchemes": {
                    "token": {"type": "http", "scheme": "bearer"},
                    "session": {"type": "apiKey", "in": "cookie", "name": "sb_session"},
                },
            },
            "security": [{"token": []}, {"session": []}],
        }


def _responses(
    e: Endpoint, error_ref: JsonSchemaValue, answer_ref: JsonSchemaValue | None
) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": error_ref}}}
    ok: dict[str, Any] = {"description": "done"}
    if answer_ref is not None:
        ok["content"] = {"application/json": {"schema": answer_ref}}
    if e.file_type is not None:
        ok["content"] = {e.file_type: {"schema": {"type": "string", "format": "binary"}}}
    responses: dict[str, Any] = {
        "200": ok,
        "401": {"description": "not signed in", **error},
        "403": {"description": "not allowed (role, CSRF)", **error},
    }
    if e.body is not None or e.form is not None or e.query:
        responses["400"] = {"description": "bad input", **error}
    if e.form is not None:
        responses["413"] = {"description": "too large (the reason says for what)", **error}
    if "{" in e.path:
        responses["404"] = {"description": "not found", **error}
    if e.method != "GET":
        responses["409"] = {"description": "refused in this state", **error}
    if e.file_type is not None:
        responses["502"] = {"description": "the network did not hand the file over", **error}
    return responses
