"""The web chat's limits on strangers, over real sockets: new visitors, messages and file bytes
per client address and for everyone, the day's storage quota for files; the client's address
behind a proxy; the limits shared by the processes on one Redis; and the widget showing why it
was refused."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.sync_api import Browser
from sqlalchemy.ext.asyncio import AsyncEngine

from bots.webchat.channel import SOCKET_PATH
from bots.webchat.limits import BURST_SHARE
from bridge.backends import Backend
from bridge.backends.local import LocalBackend
from bridge.backends.redis import RedisBackend
from bridge.bus.memory import MemoryBus
from bridge.bus.redis import RedisBus
from bridge.domain import Direction
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.customer_history import customer_history
from bridge.store.kept_files import StoredFiles
from bridge.store.models import conversations, kept_files, messages
from supportbridge.networks import make_webchat
from tests.conftest import running_sandbox

JSON = dict[str, Any]
KB = 1024


@dataclass
class Tab:
    """One socket of a browser tab and the first frame it got for its hello."""

    socket: aiohttp.ClientWebSocketResponse
    first: JSON

    @property
    def welcomed(self) -> bool:
        return self.first["type"] == "welcome"

    async def say(self, text: str) -> JSON:
        """The server's answer to the message: its ack, or the error refusing it."""
        client_id = uuid.uuid4().hex
        await self.socket.send_json({"type": "message", "id": client_id, "text": text})
        return await self._answer(client_id)

    async def send_file(self, size: int) -> JSON:
        client_id = uuid.uuid4().hex
        data = base64.b64encode(bytes(size)).decode()
        await self.socket.send_json(
            {"type": "file", "id": client_id, "name": "a.bin", "data": data}
        )
        return await self._answer(client_id)

    async def _answer(self, client_id: str) -> JSON:
        async with asyncio.timeout(10):
            while True:
                frame = await self.socket.receive_json()
                if frame["type"] in ("ack", "error") and frame.get("id") == client_id:
                    return dict(frame)


@dataclass
class Site:
    """The web chat as the product serves it, with the pipeline storing what it takes."""

    server: TestServer
    session: aiohttp.ClientSession
    engine: AsyncEngine

    async def greet(self, token: str | None = None, *, forwarded_for: str = "") -> Tab:
        headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
        socket = await self.session.ws_connect(self.server.make_url(SOCKET_PATH), headers=headers)
        await socket.send_json({"type": "hello", "token": token, "language": "ru"})
        return Tab(socket, await socket.receive_json(timeout=10))

    async def count(self, table: sa.Table, expected: int) -> int:
        """The rows of `table` once there are `expected` (or after a while, however many)."""
        query = sa.select(sa.func.count()).select_from(table)
        if table is messages:
            query = query.where(messages.c.direction == Direction.INBOUND)
        for _ in range(100):
            async with self.engine.connect() as conn:
                found = int((await conn.execute(query)).scalar_one())
            if found >= expected:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)  # and nothing more comes
        async with self.engine.connect() as conn:
            return int((await conn.execute(query)).scalar_one())


@contextlib.asynccontextmanager
async def open_site(
    engine: AsyncEngine, settings: Settings, bus: MemoryBus, backend: Backend, **limits: object
) -> AsyncIterator[Site]:
    """The embedded product's web chat with `limits` (settings) over the defaults."""
    limited = settings.model_copy(update=limits)
    channel = await make_webchat(limited, backend, customer_history(engine), StoredFiles(engine))
    app = web.Application()
    app.add_routes(channel.webhook_routes(bus.publish_inbound))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    stop = asyncio.Event()
    pipeline = Pipeline(engine, bus, limited, None)
    worker = asyncio.ensure_future(
        bus.consume_inbound("core", pipeline.handle, batch_size=50, stop=stop)
    )
    try:
        async with aiohttp.ClientSession() as session:
            yield Site(server, session, engine)
    finally:
        stop.set()
        await asyncio.wait_for(worker, 10)
        await channel.close()
        await server.close()


@pytest.fixture
def site(
    engine: AsyncEngine, settings: Settings, memory_bus: MemoryBus, local_backend: LocalBackend
) -> Any:
    """`site(**limits)`: the web chat with those settings."""

    def opened(**limits: object) -> contextlib.AbstractAsyncContextManager[Site]:
        return open_site(engine, settings, memory_bus, local_backend, **limits)

    return opened


async def test_sockets_from_one_address_past_the_new_visitor_limit_are_refused_with_a_reason(
    site: Any, settings: Settings
) -> None:
    burst = settings.webchat_new_visitors_per_address_per_hour // BURST_SHARE
    async with site() as chat:
        tabs = [await chat.greet() for _ in range(30)]
        welcomed = [tab for tab in tabs if tab.welcomed]
        for tab in welcomed:
            assert (await tab.say("Здравствуйте"))["type"] == "ack"
        made = await chat.count(conversations, len(welcomed))

    refused = [tab.first for tab in tabs if not tab.welcomed]
    assert burst < 30  # the defaults stop thirty sockets of one address
    assert len(welcomed) == made == burst
    assert {(frame["type"], frame["code"]) for frame in refused} == {("error", "too_many_visitors")}
    assert all(frame["retry_after"] >= 1 for frame in refused)
    assert all(frame["message"].startswith("too many new chats from your") for frame in refused)


async def test_a_returning_visitor_is_welcomed_while_new_ones_from_the_address_are_refused(
    site: Any,
) -> None:
    async with site(webchat_new_visitors_per_address_per_hour=6) as chat:
        first = await chat.greet()
        stranger = await chat.greet()
        again = await chat.greet(first.first["token"])

    assert (first.welcomed, stranger.first.get("code"), again.welcomed) == (
        True,
        "too_many_visitors",
        True,
    )
    assert again.first["token"].split(".")[1] == first.first["token"].split(".")[1]


async def test_new_visitors_past_the_overall_limit_are_refused_as_busy(site: Any) -> None:
    async with site(webchat_new_visitors_per_hour=60) as chat:
        tabs = [await chat.greet() for _ in range(12)]

    assert [tab.first.get("code") for tab in tabs] == [None] * 10 + ["busy"] * 2


async def tabs_of_one_visitor(chat: Site, count: int) -> list[Tab]:
    first = await chat.greet()
    return [first] + [await chat.greet(first.first["token"]) for _ in range(count - 1)]


async def test_messages_from_one_address_past_its_limit_are_refused_with_a_reason_and_not_stored(
    site: Any,
) -> None:
    async with site(webchat_messages_per_address_per_hour=60) as chat:
        tabs = await tabs_of_one_visitor(chat, 3)  # each tab under its own limit of 10
        answers = [await tab.say(f"сообщение {n}") for n in range(5) for tab in tabs]
        stored = await chat.count(messages, 10)

    refused = [answer for answer in answers if answer["type"] == "error"]
    assert [answer["type"] for answer in answers] == ["ack"] * 10 + ["error"] * 5
    assert stored == 10
    assert {answer["code"] for answer in refused} == {"too_fast"}
    assert all(answer["retry_after"] >= 1 for answer in refused)
    assert all(
        answer["message"].startswith("too many messages from your network; send it again in")
        for answer in refused
    )


async def test_messages_past_the_overall_limit_are_refused_as_busy(site: Any) -> None:
    async with site(webchat_messages_per_hour=60) as chat:
        tabs = await tabs_of_one_visitor(chat, 3)
        answers = [await tab.say(f"сообщение {n}") for n in range(5) for tab in tabs]
        stored = await chat.count(messages, 10)

    assert stored == 10
    assert [answer.get("code") for answer in answers] == [None] * 10 + ["busy"] * 5


async def test_files_from_one_address_past_the_byte_limit_are_refused_and_not_kept(
    site: Any,
) -> None:
    async with site(webchat_file_mb_per_address_per_hour=6) as chat:  # 1 MB at once
        tab = await chat.greet()
        answers = [await tab.send_file(400 * KB) for _ in range(3)]
        kept = await chat.count(kept_files, 2)

    assert [a["type"] for a in answers] == ["ack", "ack", "error"]
    assert answers[2]["code"] == "too_many_files" and answers[2]["retry_after"] >= 1
    assert kept == 2


async def test_a_file_past_the_days_storage_quota_is_refused_with_its_reason_and_not_kept(
    site: Any,
) -> None:
    async with site(webchat_file_mb_per_day=1) as chat:
        first, second = await chat.greet(), await chat.greet()
        answers = [await first.send_file(400 * KB), await second.send_file(400 * KB)]
        over = await second.send_file(400 * KB)
        kept = await chat.count(kept_files, 2)

    assert [a["type"] for a in answers] == ["ack", "ack"]
    assert (over["type"], over["code"]) == ("error", "file_quota")
    assert over["message"].startswith("today's room for visitors' files (1 MB) is used up")
    assert over["retry_after"] > 3600  # a day's quota comes back over hours
    assert kept == 2


async def test_a_file_past_the_storage_quota_of_all_visitors_files_is_refused_and_not_kept(
    site: Any,
) -> None:
    async with site(webchat_file_storage_mb=1) as chat:
        first, second = await chat.greet(), await chat.greet()
        answers = [await first.send_file(400 * KB), await second.send_file(400 * KB)]
        over = await second.send_file(400 * KB)
        kept = await chat.count(kept_files, 2)

    assert [a["type"] for a in answers] == ["ack", "ack"]
    assert (over["type"], over["code"]) == ("error", "storage_full")
    assert "keeps no more files" in over["message"]
    assert kept == 2


async def test_x_forwarded_for_is_not_believed_without_trusted_proxies(site: Any) -> None:
    async with site(webchat_new_visitors_per_address_per_hour=6) as chat:
        first = await chat.greet(forwarded_for="203.0.113.1")
        second = await chat.greet(forwarded_for="203.0.113.2")

    assert first.welcomed
    assert second.first.get("code") == "too_many_visitors"


async def test_behind_a_trusted_proxy_each_forwarded_address_has_its_own_limit(site: Any) -> None:
    limits = {
        "webchat_trusted_proxies": ["127.0.0.1"],
        "webchat_new_visitors_per_address_per_hour": 6,
    }
    async with site(**limits) as chat:
        first = await chat.greet(forwarded_for="203.0.113.1")
        again = await chat.greet(forwarded_for="203.0.113.1")
        other = await chat.greet(forwarded_for="203.0.113.2")

    assert (first.welcomed, again.first.get("code"), other.welcomed) == (
        True,
        "too_many_visitors",
        True,
    )


async def test_an_address_the_client_puts_before_the_proxys_is_not_believed(site: Any) -> None:
    limits = {
        "webchat_trusted_proxies": ["127.0.0.0/8"],
        "webchat_new_visitors_per_address_per_hour": 6,
    }
    async with site(**limits) as chat:
        first = await chat.greet(forwarded_for="203.0.113.1")
        forged = await chat.greet(forwarded_for="198.51.100.7, 203.0.113.1")

    assert first.welcomed
    assert forged.first.get("code") == "too_many_visitors"


async def test_ipv6_addresses_of_one_64_network_count_as_one_client(site: Any) -> None:
    limits = {
        "webchat_trusted_proxies": ["127.0.0.1"],
        "webchat_new_visitors_per_address_per_hour": 6,
    }
    async with site(**limits) as chat:
        first = await chat.greet(forwarded_for="2001:db8:1:2::1")
        neighbour = await chat.greet(forwarded_for="2001:db8:1:2:ffff::9")
        elsewhere = await chat.greet(forwarded_for="2001:db8:1:3::1")

    assert (first.welcomed, neighbour.first.get("code"), elsewhere.welcomed) == (
        True,
        "too_many_visitors",
        True,
    )


@pytest.mark.redis
async def test_the_limits_are_shared_by_the_web_processes_on_one_redis(
    engine: AsyncEngine, settings: Settings, redis_url: str, redis_prefix: str
) -> None:
    distributed = settings.model_copy(
        update={
            "redis_url": redis_url,
            "redis_prefix": redis_prefix,
            "webchat_new_visitors_per_address_per_hour": 6,
        }
    )
    servers = []
    channels = []
    for _ in range(2):  # two `web` processes, each with its own connection to Redis
        bus = RedisBus(redis_url, 4, prefix=redis_prefix)
        channel = await make_webchat(
            distributed, RedisBackend(bus), customer_history(engine), StoredFiles(engine)
        )
        app = web.Application()
        app.add_routes(channel.webhook_routes(bus.publish_inbound))
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        channels.append(channel)
    try:
        async with aiohttp.ClientSession() as session:
            one = await Site(servers[0], session, engine).greet()
            other = await Site(servers[1], session, engine).greet()
    finally:
        for channel, server in zip(channels, servers, strict=True):
            await channel.close()
            await server.close()

    assert one.welcomed
    assert other.first.get("code") == "too_many_visitors"


@pytest.fixture
def strict_sandbox(tmp_path: Path) -> Iterator[str]:
    """`supportbridge run --sandbox` taking one new web-chat visitor per address at a time."""
    with running_sandbox(tmp_path, SB_WEBCHAT_NEW_VISITORS_PER_ADDRESS_PER_HOUR="6") as base:
        yield base


@pytest.mark.slow
def test_the_widget_shows_a_visitor_refused_by_a_limit_why(
    strict_sandbox: str, chromium: Browser
) -> None:
    shown = [
        "We usually answer within minutes",
        "Too many new chats from your network — we will reconnect shortly.",
    ]
    for status in shown:  # two browsers: two new visitors from one address
        page = chromium.new_context(locale="en-US").new_page()
        page.goto(f"{strict_sandbox}/sandbox/webchat/")
        chat = page.locator("#supportbridge-chat")
        chat.locator(".launcher").click()
        chat.locator(".status", has_text=status).wait_for(timeout=10_000)
