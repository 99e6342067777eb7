"""Signing in: throttled per login and per client address (a delay that grows, then 429, even for
the right password), the password checked off the event loop, and a new password or disabling
ending the agent's sessions."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from argon2.exceptions import VerifyMismatchError
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.inbox import passwords
from bridge.inbox.agents import AgentInfo, Role, add_agent, update_agent
from bridge.settings import Settings
from bridge.web import throttle
from bridge.web.app import add_inbox
from bridge.web.health import add_health_routes
from bridge.web.server import make_app
from bridge.web.throttle import Rule
from tests.web_client import CSRF_FIELD, PASSWORD

Client = TestClient[web.Request, web.Application]


@dataclass
class Site:
    client: Client
    engine: AsyncEngine
    agent: AgentInfo
    admin: AgentInfo

    async def sign_in(self, login: str, password: str) -> aiohttp.ClientResponse:
        """The form as a browser fills it in (its CSRF token first)."""
        page = await self.client.get("/login")
        csrf = CSRF_FIELD.search(await page.text())
        assert csrf is not None
        return await self.client.post(
            "/login",
            data={"login": login, "password": password, "csrf": csrf[1], "next": "/"},
            allow_redirects=False,
        )

    async def api_me(self, token: str) -> aiohttp.ClientResponse:
        return await self.client.get("/api/me", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
async def start(
    engine: AsyncEngine, memory_bus: MemoryBus, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[Site]]]:
    """Starts the product's HTTP app with these throttle settings (by default, so generous that
    only the setting a test is about can throttle it)."""
    agent = await add_agent(engine, "anna", PASSWORD)
    admin = await add_agent(engine, "boss", PASSWORD, role=Role.ADMIN)
    clients: list[Client] = []

    async def start_site(**throttle: Any) -> Site:
        defaults = {
            "sign_in_free_attempts": 1000,
            "sign_in_free_attempts_per_address": 1000,
            "sign_in_first_delay_seconds": 60.0,
        }
        app = make_app()
        add_health_routes(app, engine, memory_bus)
        add_inbox(app, engine, memory_bus, Settings(data_dir=tmp_path, **(defaults | throttle)))
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return Site(client, engine, agent, admin)

    yield start_site
    for client in clients:
        await client.close()


async def test_the_right_password_after_too_many_wrong_ones_is_refused_while_throttled(
    start: Callable[..., Awaitable[Site]],
) -> None:
    site = await start(sign_in_free_attempts=3)
    for _ in range(3):
        assert (await site.sign_in("anna", "wrong wrong wrong")).status == 401

    right = await site.sign_in("anna", PASSWORD)

    assert right.status == 429
    assert (await site.client.get("/", allow_redirects=False)).status == 303  # not signed in


async def test_a_throttled_sign_in_says_how_long_to_wait(
    start: Callable[..., Awaitable[Site]],
) -> None:
    site = await start(sign_in_free_attempts=1, sign_in_first_delay_seconds=90.0)
    await site.sign_in("anna", "wrong wrong wrong")

    refused = await site.sign_in("anna", "wrong wrong wrong")

    assert refused.status == 429
    assert 85 <= int(refused.headers["Retry-After"]) <= 90
    page = await refused.text()
    assert "Too many attempts to sign in. Try again in 2 min." in page
    assert CSRF_FIELD.search(page) is not None  # the form, to try again later


def test_the_wait_doubles_with_each_attempt_up_to_the_ceiling() -> None:
    rule = Rule(free=3, first_delay=1.0, max_delay=60.0, forget_after=3600.0)
    last = 1000.0

    waits = [rule.wait(attempts, last, last) for attempts in range(1, 12)]

    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]


def test_attempts_are_forgotten_after_a_quiet_spell() -> None:
    rule = Rule(free=3, first_delay=1.0, max_delay=60.0, forget_after=3600.0)

    assert rule.counted(50, 1000.0, 1000.0 + 3599.0) == 50
    assert rule.counted(50, 1000.0, 1000.0 + 3600.0) == 0


async def test_once_the_wait_is_over_the_right_password_signs_in(
    start: Callable[..., Awaitable[Site]], monkeypatch: pytest.MonkeyPatch
) -> None:
    # the throttle's clock, moved by hand: a slow password check must not end the wait early
    clock = [1_000_000.0]
    monkeypatch.setattr(throttle, "time", SimpleNamespace(time=lambda: clock[0]))
    site = await start(sign_in_free_attempts=1, sign_in_first_delay_seconds=30)
    await site.sign_in("anna", "wrong wrong wrong")
    assert (await site.sign_in("anna", PASSWORD)).status == 429

    clock[0] += 31

    assert (await site.sign_in("anna", PASSWORD)).status == 303


async def test_wrong_passwords_for_many_logins_from_one_address_throttle_that_address(
    start: Callable[..., Awaitable[Site]],
) -> None:
    site = await start(sign_in_free_attempts_per_address=3)
    for login in ("ivan", "olga", "petr"):
        assert (await site.sign_in(login, "wrong wrong wrong")).status == 401

    assert (await site.sign_in("anna", PASSWORD)).status == 429


async def test_a_throttled_login_leaves_the_other_logins_alone(
    start: Callable[..., Awaitable[Site]],
) -> None:
    site = await start(sign_in_free_attempts=2)
    for _ in range(2):
        await site.sign_in("anna", "wrong wrong wrong")
    assert (await site.sign_in("anna", PASSWORD)).status == 429

    assert (await site.sign_in("boss", PASSWORD)).status == 303


async def test_parallel_wrong_passwords_get_no_more_tries_than_one_after_another(
    start: Callable[..., Awaitable[Site]],
) -> None:
    site = await start(sign_in_free_attempts=3)

    answers = await asyncio.gather(*(site.sign_in("anna", f"guess number {n}") for n in range(20)))

    statuses = sorted(answer.status for answer in answers)
    assert statuses == [401] * 3 + [429] * 17


async def test_signing_in_forgets_the_logins_wrong_passwords(
    start: Callable[..., Awaitable[Site]],
) -> None:
    site = await start(sign_in_free_attempts=3)
    for _ in range(2):
        await site.sign_in("anna", "wrong wrong wrong")
    assert (await site.sign_in("anna", PASSWORD)).status == 303
    site.client.session.cookie_jar.clear()

    answers = [await site.sign_in("anna", "wrong wrong wrong") for _ in range(3)]

    assert [answer.status for answer in answers] == [401, 401, 401]


def guessed_token(n: int) -> str:
    """Shaped like the tokens the product issues, but not one of them."""
    return f"sb_{n:043d}"


async def test_wrong_api_tokens_from_one_address_get_429_with_retry_after(
    start: Callable[..., Awaitable[Site]],
) -> None:
    site = await start(sign_in_free_attempts_per_address=3)
    for n in range(3):
        assert (await site.api_me(guessed_token(n))).status == 401

    refused = await site.api_me(guessed_token(3))

    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 0
    assert "too many failed sign-ins" in (await refused.json())["error"]


async def test_a_value_not_shaped_like_a_token_is_refused_without_counting(
    start: Callable[..., Awaitable[Site]],
) -> None:
    site = await start(sign_in_free_attempts_per_address=1)

    answers = [await site.api_me(f"not-a-token-{n}") for n in range(3)]

    assert [answer.status for answer in answers] == [401, 401, 401]


async def test_a_revoked_token_used_again_is_refused_without_counting(
    start: Callable[..., Awaitable[Site]],
) -> None:
    """An integration nobody told of the revocation is no guesser: its address is not slowed."""
    from bridge.web.auth import issue_api_token, revoke_api_token, token_id

    site = await start(sign_in_free_attempts_per_address=1)
    token = await issue_api_token(site.engine, site.agent.id, "crm")
    await revoke_api_token(site.engine, site.agent.id, token_id(token))

    answers = [await site.api_me(token) for _ in range(3)]

    assert [answer.status for answer in answers] == [401, 401, 401]


async def test_a_valid_api_token_works_while_its_address_is_throttled(
    start: Callable[..., Awaitable[Site]],
) -> None:
    from bridge.web.auth import issue_api_token

    site = await start(sign_in_free_attempts_per_address=1)
    token = await issue_api_token(site.engine, site.agent.id, "crm")
    for n in range(2):
        await site.api_me(guessed_token(n))

    assert (await site.api_me(token)).status == 200


async def test_checking_a_password_leaves_the_event_loop_free(
    start: Callable[..., Awaitable[Site]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """While argon2 works on a sign-in, /healthz answers: the check runs in another thread.
    (Were it on the event loop, the loop would stand still until the check gave up waiting.)"""
    site = await start()
    checking, release = threading.Event(), threading.Event()

    class SlowHasher:
        def verify(self, stored: str, password: str) -> bool:
            checking.set()
            release.wait(timeout=10)
            raise VerifyMismatchError

    monkeypatch.setattr(passwords, "_hasher", SlowHasher())
    finished: list[str] = []
    sign_in = asyncio.create_task(site.sign_in("anna", "wrong wrong wrong"))
    sign_in.add_done_callback(lambda _: finished.append("sign-in"))
    await asyncio.to_thread(checking.wait, 10)

    health = await site.client.get("/healthz")
    finished.append("healthz")
    release.set()

    assert health.status == 200
    assert (await sign_in).status == 401
    assert finished == ["healthz", "sign-in"]


async def test_a_new_password_ends_the_agents_sessions(
    start: Callable[..., Awaitable[Site]],
) -> None:
    site = await start()
    assert (await site.sign_in("anna", PASSWORD)).status == 303

    await update_agent(site.engine, site.agent.id, password="a brand new passphrase")

    assert (await site.client.get("/", allow_redirects=False)).status == 303


async def test_re_enabling_an_agent_does_not_bring_back_their_sessions(
    start: Callable[..., Awaitable[Site]],
) -> None:
    site = await start()
    assert (await site.sign_in("anna", PASSWORD)).status == 303

    await update_agent(site.engine, site.agent.id, active=False)
    await update_agent(site.engine, site.agent.id, active=True)

    assert (await site.client.get("/", allow_redirects=False)).status == 303
