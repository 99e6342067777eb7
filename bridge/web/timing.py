"""How long the product takes to answer each HTTP request, template included: a `Server-Timing`
header on the response (a browser's developer tools show it; `bench` reads it) and a Prometheus
histogram per route, for an operator watching the inbox while messages flow."""

from __future__ import annotations

import time
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler

from bridge.util.metrics import HTTP_REQUEST_DURATION

STARTED = web.RequestKey("timing_started", float)
# What a request matched no route by: one series, however many paths strangers try.
UNMATCHED = "unmatched"


@web.middleware
async def request_timing(request: web.Request, handler: Handler) -> web.StreamResponse:
    began = time.perf_counter()
    request[STARTED] = began
    try:
        response = await handler(request)
    except Exception:  # redirects and refusals are answers too (aiohttp raises them)
        _observe(request, began)
        raise
    # a live socket's time is how long the agent kept the page open, not how fast it answered
    if not isinstance(response, web.WebSocketResponse):
        _observe(request, began)
    return response


async def server_timing_header(request: web.Request, response: web.StreamResponse) -> None:
    began = request.get(STARTED)
    if began is not None:
        response.headers["Server-Timing"] = f"app;dur={(time.perf_counter() - began) * 1000:.1f}"


def server_time_ms(headers: Mapping[str, str]) -> float | None:
    """The `app` duration of a response's `Server-Timing` header, in ms; None without one."""
    header = headers.get("Server-Timing")
    if header is None:
        return None
    for metric in header.split(","):
        name, *params = (part.strip() for part in metric.split(";"))
        if name == "app":
            for param in params:
                key, _, value = param.partition("=")
                if key == "dur":
                    return float(value)
    return None


def _observe(request: web.Request, began: float) -> None:
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else UNMATCHED
    HTTP_REQUEST_DURATION.labels(request.method, route).observe(time.perf_counter() - began)
