"""How the Bot API answers a call: `{"ok": true, "result": ...}` on success, and an `ApiError`
(HTTP status = error_code) on failure, which is also how an injected fault is told."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from aiohttp import web

from emulators.faults import Fault, FaultKind


class ApiError(Exception):
    """A Bot API error answer: HTTP status = error_code, as the real server does."""

    def __init__(self, code: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def response(self) -> web.Response:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.code,
            "description": self.description,
        }
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
            headers["Retry-After"] = str(self.retry_after)
        return web.json_response(body, status=self.code, headers=headers)


@dataclass(slots=True)
class Answer:
    """A method result with the `description` the real server adds to some successes."""

    result: Any
    description: str


def ok_response(result: Any) -> web.Response:
    if isinstance(result, Answer):
        return web.json_response(
            {"ok": True, "result": result.result, "description": result.description}
        )
    return web.json_response({"ok": True, "result": result})


def fault_error(fault: Fault) -> ApiError:
    """An injected rate limit or server error, the Telegram way."""
    if fault.kind is FaultKind.RATE_LIMIT:
        return ApiError(
            429,
            f"Too Many Requests: retry after {fault.retry_after}",
            retry_after=fault.retry_after,
        )
    try:
        phrase = HTTPStatus(fault.status).phrase
    except ValueError:
        phrase = "Server Error"
    return ApiError(fault.status, phrase)
