"""What every emulator serves beside its network's API: the `/_emulator/...` endpoints through
which a test, a benchmark or the sandbox plays the customers and steers the fault plan."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from emulators.faults import FaultPlan, fault_routes

PREFIX = "/_emulator"
# Beside an upload's file: the other fields of its form and the parts' headers.
FORM_OVERHEAD_BYTES = 1024 * 1024


def emulator_app(
    routes: Iterable[web.RouteDef],
    faults: FaultPlan,
    close: Callable[[], Awaitable[None]],
    *,
    max_upload_bytes: int = 0,
) -> web.Application:
    """An emulator's aiohttp app: its `routes` (its network's API and its customer endpoints),
    the fault plan at `/_emulator/faults`, and `close` run on shutdown. It takes request bodies
    as large as its network's largest upload (`max_upload_bytes`), and a larger one is refused
    with 413, also where it is mounted on an app of smaller bodies (the sandbox's)."""
    app = web.Application(middlewares=[_bodies_of(max_upload_bytes + FORM_OVERHEAD_BYTES)])
    app.add_routes([*routes, *fault_routes(faults, f"{PREFIX}/faults")])

    async def on_shutdown(_app: web.Application) -> None:
        await close()

    app.on_shutdown.append(on_shutdown)
    return app


def _bodies_of(max_bytes: int) -> Middleware:
    @web.middleware
    async def bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
        return await handler(request.clone(client_max_size=max_bytes))

    return bodies


def customer_route(
    method: str, path: str, action: Callable[[web.Request], Awaitable[Any]]
) -> web.RouteDef:
    """A customer endpoint: `{"ok": true, "result": ...}` out; a malformed call answers 400, an
    unknown user, message or query 404."""

    async def handle(request: web.Request) -> web.Response:
        try:
            result = await action(request)
        except (ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "description": str(exc)}, status=400)
        except KeyError as exc:
            return web.json_response({"ok": False, "description": f"unknown {exc}"}, status=404)
        return web.json_response({"ok": True, "result": result})

    return web.route(method, path, handle)


async def json_body(request: web.Request) -> dict[str, Any]:
    """A customer call's JSON object ({} without a body), with the path's parameters added."""
    body = await request.json() if request.body_exists else {}
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    body.update(request.match_info)
    return body
