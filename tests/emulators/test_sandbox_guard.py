"""The sandbox lends the product's origin to its emulators: what they serve never runs there as a
page, and the routes that play customers or list every reply answer this machine only."""

from __future__ import annotations

from unittest import mock

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from bridge.domain import Network
from emulators.sandbox.app import SANDBOX_TOKEN, lent_origin_guard, mount_sandbox


async def test_a_file_a_customer_sends_is_never_a_page_of_the_products_origin() -> None:
    app = web.Application()
    sandbox = mount_sandbox(app, [Network.TELEGRAM])
    assert sandbox.telegram is not None
    page = b"<html><script>fetch('/api/admin/agents', {method: 'POST'})</script></html>"
    sent = sandbox.telegram.write_document(7, page, file_name="x.html", mime_type="text/html")

    async with TestClient(TestServer(app)) as client:
        api = f"/sandbox/telegram/bot{SANDBOX_TOKEN}"
        found = await (
            await client.get(f"{api}/getFile", params={"file_id": sent["document"]["file_id"]})
        ).json()
        served = await client.get(
            f"/sandbox/telegram/file/bot{SANDBOX_TOKEN}/{found['result']['file_path']}"
        )

    assert served.status == 200
    assert served.headers["Content-Disposition"] == "attachment"
    assert served.headers["Content-Security-Policy"].startswith("sandbox")
    assert served.headers["X-Content-Type-Options"] == "nosniff"


async def test_the_customers_routes_refuse_another_machine() -> None:
    stranger = mock.Mock()
    stranger.get_extra_info.return_value = ("203.0.113.5", 40000)
    request = make_mocked_request(
        "GET", "/sandbox/telegram/_emulator/bot-messages", transport=stranger
    )

    async def everyones_replies(_request: web.Request) -> web.StreamResponse:
        raise AssertionError("a stranger read the replies")

    response = await lent_origin_guard(request, everyones_replies)

    assert response.status == 403


async def test_the_customers_routes_answer_this_machine() -> None:
    app = web.Application()
    mount_sandbox(app, [Network.TELEGRAM])

    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        answered = await client.get("/sandbox/telegram/_emulator/users/7/bot-messages")

    assert answered.status in (200, 404)  # the route's own answer, not the guard's 403
