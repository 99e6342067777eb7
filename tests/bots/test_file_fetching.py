"""Fetching customers' files from the addresses events name: only under the network's configured
API base, or over https from hosts whose every address is public; redirects checked; size and
time limited. And end to end: a signed Messenger event naming a loopback address fetches nothing,
and the agent opening the file is told why."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import re
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.test_utils import TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.downloads import Downloads, PublicOnly, not_public
from bridge.domain import Direction, Network
from bridge.inbox.attachments import AttachmentUnavailable, open_attachment
from bridge.pipeline.responder import Responder
from bridge.settings import Settings
from bridge.store.models import messages
from emulators.facebook import SIGNATURE_HEADER, sign
from tests.network_harness import JSON_BODY, EmulatedFacebook, WebhookRequest, open_bridge, post

FILE = b"%PDF-1.4 the contract"
LOOPBACK = re.escape("127.0.0.1 is loopback")
Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Host:
    """A local HTTP server: what it answers per path, and every path it was asked for."""

    base: str
    asked: list[str] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serving(answers: dict[str, Answer]) -> AsyncIterator[Host]:
    host = Host("")

    async def answer(request: web.Request) -> web.StreamResponse:
        host.asked.append(request.path)
        found = answers.get(request.path)
        return await found(request) if found else web.Response(text="# metrics of a neighbour")

    app = web.Application()
    app.router.add_route("GET", "/{path:.*}", answer)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    host.base = f"http://127.0.0.1:{server.port}"
    try:
        yield host
    finally:
        await server.close()


async def the_file(_request: web.Request) -> web.Response:
    return web.Response(body=FILE, content_type="application/pdf")


def redirect_to(location: str) -> Answer:
    async def answer(_request: web.Request) -> web.Response:
        raise web.HTTPFound(location)

    return answer


class Names(AbstractResolver):
    """A resolver that knows the given names only (no DNS in tests)."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
            for address in self.names[host]
        ]

    async def close(self) -> None:
        pass


async def fetch(
    url: str,
    api_url: str | None = None,
    *,
    timeout_s: float = 5.0,
    max_bytes: int = 1_000_000,
    resolver: AbstractResolver | None = None,
) -> bytes:
    downloads = Downloads(api_url, timeout_s=timeout_s, max_bytes=max_bytes, resolver=resolver)
    try:
        return await downloads.fetch(url)
    finally:
        await downloads.close()


async def test_a_file_under_the_configured_api_base_is_fetched_as_configured() -> None:
    async with serving({"/sandbox/facebook/_files/a": the_file}) as emulator:
        content = await fetch(
            f"{emulator.base}/sandbox/facebook/_files/a", f"{emulator.base}/sandbox/facebook"
        )

    assert content == FILE


@pytest.mark.parametrize(
    "path",
    [
        "/metrics",
        "/sandbox/facebookx/_files/a",
        "/sandbox/facebook/..%2F..%2Fmetrics",
        "/sandbox/facebook/%2e%2e/%2e%2e/metrics",
    ],
    ids=["beside", "longer-name", "encoded-slashes", "encoded-dots"],
)
async def test_the_api_bases_host_outside_its_path_is_not_fetched(path: str) -> None:
    async with serving({}) as product:
        with pytest.raises(LookupError, match=f"not fetched: {LOOPBACK}"):
            await fetch(product.base + path, f"{product.base}/sandbox/facebook")

    assert product.asked == []


async def test_a_loopback_address_other_than_the_api_base_is_not_fetched() -> None:
    async with serving({}) as emulator, serving({}) as neighbour:
        with pytest.raises(LookupError, match=LOOPBACK):
            await fetch(f"{neighbour.base}/metrics", emulator.base)

    assert neighbour.asked == []


@pytest.mark.parametrize(
    ("address", "why"),
    [
        ("[::1]", "loopback"),
        ("10.0.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "not global"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("[64:ff9b::a00:1]", "private"),
        ("[2002:7f00:1::]", "loopback"),
        ("[fd00::1]", "private"),
    ],
)
async def test_an_address_that_is_not_public_is_not_fetched(address: str, why: str) -> None:
    with pytest.raises(LookupError, match=f"is {why}"):
        await fetch(f"https://{address}/latest/meta-data", timeout_s=1.0)


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2001:4860:4860::8888"])
def test_a_public_address_is_public(address: str) -> None:
    assert not_public(ipaddress.ip_address(address)) is None


async def test_localhost_by_name_is_not_fetched() -> None:
    async with serving({}) as neighbour:
        port = neighbour.base.rsplit(":", 1)[1]
        with pytest.raises(LookupError, match=r"localhost resolves to .* \(loopback\)"):
            await fetch(f"https://localhost:{port}/metrics")

    assert neighbour.asked == []


async def test_a_name_that_resolves_to_a_private_address_is_not_fetched() -> None:
    names = Names({"files.example.com": ["10.1.2.3"]})

    with pytest.raises(LookupError, match=r"files.example.com resolves to 10.1.2.3 \(private\)"):
        await fetch("https://files.example.com/a.pdf", resolver=names)


async def test_a_name_with_one_loopback_address_among_public_ones_is_not_fetched() -> None:
    names = Names({"cdn.example.com": ["93.184.216.34", "127.0.0.1"]})

    with pytest.raises(LookupError, match=r"resolves to 127.0.0.1 \(loopback\)"):
        await fetch("https://cdn.example.com/a.pdf", resolver=names)


async def test_a_name_whose_every_address_is_public_resolves() -> None:
    names = Names({"cdn.example.com": ["93.184.216.34", "2606:2800:220:1::1"]})

    found = await PublicOnly(names).resolve("cdn.example.com", 443)

    assert [result["host"] for result in found] == ["93.184.216.34", "2606:2800:220:1::1"]


async def test_plain_http_from_a_public_host_is_not_fetched() -> None:
    names = Names({"cdn.example.com": ["93.184.216.34"]})

    with pytest.raises(LookupError, match=re.escape("http://cdn.example.com is not https")):
        await fetch("http://cdn.example.com/a.pdf", resolver=names)


async def test_a_redirect_to_a_loopback_address_is_not_followed() -> None:
    async with serving({}) as neighbour:
        answers = {"/_files/a": redirect_to(f"{neighbour.base}/metrics")}
        async with serving(answers) as emulator:
            with pytest.raises(LookupError, match=LOOPBACK):
                await fetch(f"{emulator.base}/_files/a", emulator.base)

    assert emulator.asked == ["/_files/a"]
    assert neighbour.asked == []


async def test_a_redirect_within_the_api_base_is_followed() -> None:
    answers = {"/_files/a": redirect_to("/_files/b"), "/_files/b": the_file}
    async with serving(answers) as emulator:
        content = await fetch(f"{emulator.base}/_files/a", emulator.base)

    assert content == FILE


async def sized(_request: web.Request) -> web.Response:
    return web.Response(body=bytes(5000))


async def streamed(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()  # no Content-Length: the size shows as it comes
    await response.prepare(request)
    for _ in range(5):
        await response.write(bytes(1000))
    await response.write_eof()
    return response


@pytest.mark.parametrize("answer", [sized, streamed], ids=["announced", "streamed"])
async def test_a_file_larger_than_the_limit_is_refused(answer: Answer) -> None:
    async with serving({"/_files/a": answer}) as emulator:
        with pytest.raises(LookupError, match="larger than 1000 bytes"):
            await fetch(f"{emulator.base}/_files/a", emulator.base, max_bytes=1000)


async def test_a_server_slower_than_the_time_limit_is_given_up() -> None:
    async def stalled(_request: web.Request) -> web.Response:
        await asyncio.sleep(10)
        return web.Response(body=FILE)

    async with serving({"/_files/a": stalled}) as emulator:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await fetch(f"{emulator.base}/_files/a", emulator.base, timeout_s=0.3)

    assert time.monotonic() - started < 2


async def test_a_signed_messenger_event_naming_a_loopback_url_fetches_nothing_tells_why(
    engine: AsyncEngine, settings: Settings, responder: Responder | None
) -> None:
    async with (
        serving({}) as neighbour,
        open_bridge(EmulatedFacebook(), engine, settings, responder, None) as bridge,
    ):
        now_ms = int(time.time() * 1000)
        attachment = {"type": "file", "payload": {"url": f"{neighbour.base}/metrics"}}
        event = {
            "sender": {"id": "7801"},
            "recipient": {"id": "1000000000001"},
            "timestamp": now_ms,
            "message": {"mid": "m_7801", "attachments": [attachment]},
        }
        entry = {"id": "1000000000001", "time": now_ms, "messaging": [event]}
        body = json.dumps({"object": "page", "entry": [entry]}).encode()
        signed = JSON_BODY | {SIGNATURE_HEADER: sign(body, EmulatedFacebook.APP_SECRET)}

        status, _ = await post(WebhookRequest(body, signed), bridge.webhook_url)
        await bridge.wait_stored(1)
        [(message_id, conversation_id)] = await bridge.rows(
            sa.select(messages.c.id, messages.c.conversation_id).where(
                messages.c.direction == Direction.INBOUND
            )
        )
        files = {Network.FACEBOOK: bridge.net.channel.fetch_file}
        with pytest.raises(AttachmentUnavailable, match=LOOPBACK) as refused:
            await open_attachment(bridge.engine, files, conversation_id, message_id, 1)

    assert status == 200
    assert neighbour.asked == []
    assert "not downloaded when it came" in str(refused.value)
