"""The Messenger Platform emulator, driven with raw HTTP so it is not shaped around our channel:
the Send API's envelope, codes and windows, signed webhook pushes, the customer API, faults."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from emulators.facebook import SIGNATURE_HEADER, FacebookEmulator, sign
from emulators.faults import Fault, FaultKind

TOKEN = "EAAB-test-page-token"
SECRET = "test-app-secret"
VERIFY = "verify-me"
PSID = "7001"
DAY = 24 * 3600


@contextlib.asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/")
    finally:
        await server.close()


class Receiver:
    """A webhook receiver that records raw bodies and signatures; refuses the next `refuse`."""

    def __init__(self) -> None:
        self.bodies: list[tuple[bytes, str]] = []
        self.refuse = 0
        self.arrived = asyncio.Event()
        self.app = web.Application()
        self.app.add_routes([web.get("/hook", self.verify), web.post("/hook", self.receive)])

    async def verify(self, request: web.Request) -> web.Response:
        if request.query.get("hub.verify_token") != VERIFY:
            return web.Response(status=403)
        return web.Response(text=request.query["hub.challenge"])

    async def receive(self, request: web.Request) -> web.Response:
        if self.refuse:
            self.refuse -= 1
            return web.Response(status=500)
        self.bodies.append((await request.read(), request.headers.get(SIGNATURE_HEADER, "")))
        self.arrived.set()
        return web.Response(text="EVENT_RECEIVED")

    async def events(self, count: int) -> list[dict[str, Any]]:
        """The first `count` events pushed, however the emulator batched them into POSTs."""
        async with asyncio.timeout(5):
            while len(self.received()) < count:
                self.arrived.clear()
                await self.arrived.wait()
        return self.received()

    def received(self) -> list[dict[str, Any]]:
        found = []
        for body, _ in self.bodies:
            payload = json.loads(body)
            found += [e for entry in payload["entry"] for e in entry["messaging"]]
        return found


@pytest.fixture
async def world() -> AsyncIterator[tuple[FacebookEmulator, str, Receiver, aiohttp.ClientSession]]:
    emulator = FacebookEmulator(TOKEN, app_secret=SECRET, seed=3, webhook_retry_delay=0.05)
    receiver = Receiver()
    async with (
        serve(emulator.app) as api,
        serve(receiver.app) as hook,
        aiohttp.ClientSession() as http,
    ):
        await emulator.subscribe(f"{hook}/hook", VERIFY)
        yield emulator, api, receiver, http


async def send(
    http: aiohttp.ClientSession, api: str, body: dict[str, Any], token: str = TOKEN
) -> tuple[int, dict[str, Any]]:
    async with http.post(
        f"{api}/v19.0/me/messages", params={"access_token": token}, json=body
    ) as r:
        return r.status, await r.json()


def text(psid: str, value: str, **routing: str) -> dict[str, Any]:
    return {
        "recipient": {"id": psid},
        "messaging_type": "RESPONSE",
        **routing,
        "message": {"text": value},
    }


World = tuple[FacebookEmulator, str, Receiver, aiohttp.ClientSession]


async def test_customer_message_is_pushed_signed_and_the_page_reply_is_recorded(
    world: World,
) -> None:
    emulator, api, receiver, http = world
    mid = emulator.write_text(PSID, "hello")
    events = await receiver.events(1)
    body, signature = receiver.bodies[0]
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert signature == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["object"] == "page"
    assert events[0]["sender"] == {"id": PSID}
    assert events[0]["message"] == {"mid": mid, "text": "hello"}

    status, answer = await send(http, api, text(PSID, "hi there"))

    assert status == 200
    assert answer["recipient_id"] == PSID and answer["message_id"].startswith("m_")
    assert [m.text for m in emulator.page_messages(PSID)] == ["hi there"]
    # an echo of the page's message, then its delivery receipt
    echo, delivery = (await receiver.events(3))[1:]
    assert echo["message"]["is_echo"] is True and echo["sender"]["id"] == emulator.page_id
    assert delivery["delivery"]["mids"] == [answer["message_id"]]


async def test_graph_errors_use_the_documented_envelope(world: World) -> None:
    emulator, api, _, http = world
    emulator.write_text(PSID, "hello")

    status, answer = await send(http, api, text(PSID, "x"), token="wrong")
    assert status == 400
    assert answer["error"]["code"] == 190
    assert set(answer["error"]) >= {"message", "type", "code", "fbtrace_id"}

    status, answer = await send(http, api, text("999", "x"))
    assert (answer["error"]["code"], answer["error"]["error_subcode"]) == (100, 2018001)

    status, answer = await send(http, api, text(PSID, "x" * 2001))
    assert (status, answer["error"]["code"]) == (400, 100)

    quick = [{"content_type": "text", "title": f"t{n}", "payload": f"p{n}"} for n in range(14)]
    body = text(PSID, "pick")
    body["message"]["quick_replies"] = quick
    assert (await send(http, api, body))[1]["error"]["code"] == 100

    emulator.set_unavailable(PSID)
    status, answer = await send(http, api, text(PSID, "x"))
    assert (answer["error"]["code"], answer["error"]["error_subcode"]) == (551, 1545041)


async def test_windows_24_hours_standard_and_7_days_human_agent(world: World) -> None:
    emulator, api, _, http = world
    emulator.write_text(PSID, "hello")
    emulator.age_last_message(PSID, 2 * DAY)

    _, answer = await send(http, api, text(PSID, "late"))
    assert (answer["error"]["code"], answer["error"]["error_subcode"]) == (10, 2018278)
    status, _ = await send(http, api, text(PSID, "agent", messaging_type="MESSAGE_TAG"))
    assert status == 400, "MESSAGE_TAG needs a tag"
    tagged = text(PSID, "agent", messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
    status, _ = await send(http, api, tagged)
    assert status == 200
    assert emulator.page_messages(PSID)[-1].tag == "HUMAN_AGENT"

    emulator.age_last_message(PSID, 6 * DAY)
    _, answer = await send(http, api, tagged)
    assert answer["error"]["error_subcode"] == 2018278


async def test_quick_reply_postback_and_read_events(world: World) -> None:
    emulator, api, receiver, http = world
    emulator.write_text(PSID, "hello")
    body = text(PSID, "Did this help?")
    body["message"]["quick_replies"] = [
        {"content_type": "text", "title": "Yes", "payload": "helped:yes"}
    ]
    assert (await send(http, api, body))[0] == 200
    with pytest.raises(ValueError):
        emulator.press_quick_reply(PSID, "helped:maybe")

    emulator.press_quick_reply(PSID, "helped:yes")
    emulator.postback(PSID, "GET_STARTED", title="Get Started")
    emulator.read(PSID)
    events = await receiver.events(6)

    tap, postback, read = events[3:]
    assert tap["message"]["text"] == "Yes"
    assert tap["message"]["quick_reply"] == {"payload": "helped:yes"}
    assert postback["postback"]["payload"] == "GET_STARTED"
    assert "watermark" in read["read"]


async def test_a_refused_push_is_retried_in_order(world: World) -> None:
    emulator, _, receiver, _ = world
    receiver.refuse = 2
    emulator.write_text(PSID, "one")
    emulator.write_text(PSID, "two")

    events = await receiver.events(2)

    assert [e["message"]["text"] for e in events] == ["one", "two"]
    assert emulator.pushes_failed == 2


async def test_verification_handshake_needs_the_right_token(world: World) -> None:
    emulator, _, _, _ = world
    async with serve(Receiver().app) as hook:
        assert await emulator.verify_webhook(f"{hook}/hook", VERIFY)
        assert not await emulator.verify_webhook(f"{hook}/hook", "wrong")
        with pytest.raises(ValueError):
            await emulator.subscribe(f"{hook}/hook", "wrong")


async def test_faults_and_injected_codes(world: World) -> None:
    emulator, api, _, http = world
    emulator.write_text(PSID, "hello")
    emulator.faults.add(Fault(FaultKind.RATE_LIMIT), methods="messages", times=1)
    emulator.faults.add(Fault(FaultKind.SERVER_ERROR, status=503), methods="messages", times=1)
    emulator.fail_next(32, times=1)

    assert (await send(http, api, text(PSID, "a")))[1]["error"]["code"] == 613
    status, answer = await send(http, api, text(PSID, "a"))
    assert status == 503 and answer["error"]["code"] == 2
    assert (await send(http, api, text(PSID, "a")))[1]["error"]["code"] == 32
    assert (await send(http, api, text(PSID, "a")))[0] == 200
    assert len(emulator.page_messages(PSID)) == 1


async def test_customer_http_api(world: World) -> None:
    _, api, receiver, http = world
    async with http.post(f"{api}/_emulator/users/{PSID}/messages", json={"text": "hi"}) as r:
        assert r.status == 200
    await receiver.events(1)
    async with http.post(f"{api}/_emulator/users/{PSID}/age", json={"seconds": 2 * DAY}) as r:
        assert r.status == 200
    assert (await send(http, api, text(PSID, "late")))[0] == 400
    async with http.get(f"{api}/_emulator/users/{PSID}/page-messages") as r:
        assert (await r.json())["result"] == []
    async with http.post(f"{api}/_emulator/users/{PSID}/quick-replies", json={"payload": "x"}) as r:
        assert r.status == 400


def test_sign_matches_hmac_sha256() -> None:
    body = b'{"object":"page"}'
    assert sign(body, "k") == "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()


async def test_events_that_wait_together_are_pushed_in_one_post(world: World) -> None:
    emulator, _, receiver, _ = world
    for n in range(3):
        emulator.write_text(PSID, f"message {n}")

    events = await receiver.events(3)

    assert [e["message"]["text"] for e in events] == ["message 0", "message 1", "message 2"]
    assert len(receiver.bodies) == 1
