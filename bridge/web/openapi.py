"""A small registry that keeps the REST API and its OpenAPI 3 document in step: each endpoint is
declared once, with pydantic models for its body and answer, and the document is built from the
declarations (schemas by pydantic), so it cannot drift from what the handlers accept."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_ID = 2**31 - 1  # the store's integer keys


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


@dataclass
class Api:
    title: str
    version: str
    endpoints: list[Endpoint] = field(default_factory=list)

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
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.endpoints.append(
                Endpoint(method, path, summary, handler, body, answer, admin, query, file_type)
            )
            return handler

        return register

    def routes(self) -> list[web.RouteDef]:
        return [web.route(e.method, e.path, e.handler) for e in self.endpoints]

    def document(self) -> dict[str, Any]:
        models: set[type[BaseModel]] = {ErrorOut}
        for e in self.endpoints:
            models.update(m for m in (e.body, e.answer) if m is not None)
        keyed, schemas = models_json_schema(
            [(model, "validation") for model in sorted(models, key=lambda m: m.__name__)],
            ref_template="#/components/schemas/{model}",
        )
        refs = {model: keyed[(model, "validation")] for model in models}
        paths: dict[str, dict[str, Any]] = {}
        for e in self.endpoints:
            operation: dict[str, Any] = {
                "summary": e.summary + (" (admins only)" if e.admin else ""),
                "operationId": e.handler.__name__,
                "responses": _responses(e, refs),
            }
            parameters = [
                {
                    "name": name,
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
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
                    "content": {"application/json": {"schema": refs[e.body]}},
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


def _responses(e: Endpoint, refs: dict[type[BaseModel], Any]) -> dict[str, Any]:
    error = {"content": {"application/json": {"schema": refs[ErrorOut]}}}
    ok: dict[str, Any] = {"description": "done"}
    if e.answer is not None:
        ok["content"] = {"application/json": {"schema": refs[e.answer]}}
    if e.file_type is not None:
        ok["content"] = {e.file_type: {"schema": {"type": "string", "format": "binary"}}}
    responses: dict[str, Any] = {
        "200": ok,
        "401": {"description": "not signed in", **error},
        "403": {"description": "not allowed (role, CSRF)", **error},
    }
    if e.body is not None or e.query:
        responses["400"] = {"description": "bad input", **error}
    if "{" in e.path:
        responses["404"] = {"description": "not found", **error}
    if e.method != "GET":
        responses["409"] = {"description": "refused in this state", **error}
    if e.file_type is not None:
        responses["502"] = {"description": "the network did not hand the file over", **error}
    return responses
