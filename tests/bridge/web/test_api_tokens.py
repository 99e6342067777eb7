"""API tokens: listed (never shown again) and revoked through the REST API, the command line and
the admin page; optionally expiring; full or read-only; ended by a new password or by disabling
the agent, for good."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner, Result
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import Network
from bridge.inbox.agents import AgentInfo, Role, add_agent, find_agent, update_agent
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.migrate import downgrade, upgrade
from bridge.store.models import agents, api_tokens, conversations, utcnow
from bridge.web.app import add_inbox
from bridge.web.auth import TokenInfo, TokenScope, issue_api_token, list_api_tokens, token_id
from supportbridge.cli import main
from tests.factories import drain_outbound, entries, inbound
from tests.web_client import CSRF_FIELD, PASSWORD, sign_in


@dataclass
class Rest:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    bus: MemoryBus
    agent: AgentInfo
    admin: AgentInfo
    agent_token: str
    admin_token: str

    async def call(
        self, method: str, path: str, token: str, json: object = None
    ) -> aiohttp.ClientResponse:
        headers = {"Authorization": f"Bearer {token}"}
        return await self.client.request(method, path, headers=headers, json=json)

    async def works(self, token: str) -> bool:
        response = await self.call("GET", "/api/me", token)
        assert response.status in (200, 401)
        return response.status == 200


@pytest.fixture
async def rest(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Rest]:
    app = web.Application()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    agent = await add_agent(engine, "anna", PASSWORD)
    admin = await add_agent(engine, "boss", PASSWORD, role=Role.ADMIN)
    yield Rest(
        client,
        engine,
        memory_bus,
        agent,
        admin,
        await issue_api_token(engine, agent.id, "crm"),
        await issue_api_token(engine, admin.id, "ops"),
    )
    await client.close()


# --- the REST API ----------------------------------------------------------------------------


async def test_an_agent_lists_their_tokens_without_the_tokens_themselves(rest: Rest) -> None:
    await issue_api_token(rest.engine, rest.agent.id, "reports", scope=TokenScope.READ_ONLY)

    response = await rest.call("GET", "/api/me/tokens", rest.agent_token)

    listed = (await response.json())["tokens"]
    assert sorted((t["name"], t["scope"]) for t in listed) == [
        ("crm", "full"),
        ("reports", "read-only"),
    ]
    assert token_id(rest.agent_token) in {t["id"] for t in listed}
    assert rest.agent_token not in await response.text()


async def test_an_agent_revokes_their_own_token(rest: Rest) -> None:
    other = await issue_api_token(rest.engine, rest.agent.id, "old crm")

    response = await rest.call("DELETE", f"/api/me/tokens/{token_id(other)}", rest.agent_token)

    assert response.status == 200
    assert not await rest.works(other)
    assert await rest.works(rest.agent_token)


async def test_an_agent_cannot_revoke_someone_elses_token(rest: Rest) -> None:
    response = await rest.call(
        "DELETE", f"/api/me/tokens/{token_id(rest.admin_token)}", rest.agent_token
    )

    assert response.status == 404
    assert await rest.works(rest.admin_token)


async def test_an_admin_lists_an_agents_tokens(rest: Rest) -> None:
    response = await rest.call("GET", f"/api/admin/agents/{rest.agent.id}/tokens", rest.admin_token)

    assert [t["name"] for t in (await response.json())["tokens"]] == ["crm"]


async def test_an_admin_issues_an_expiring_token_that_works(rest: Rest) -> None:
    response = await rest.call(
        "POST",
        f"/api/admin/agents/{rest.agent.id}/tokens",
        rest.admin_token,
        json={"name": "zapier", "expires_in_days": 30},
    )

    issued = await response.json()
    assert response.status == 200, issued
    expires = dt.datetime.fromisoformat(issued["expires_at"])
    assert abs(expires - (utcnow() + dt.timedelta(days=30))) < dt.timedelta(minutes=1)
    assert (issued["scope"], issued["expired"]) == ("full", False)
    assert await rest.works(issued["token"])


async def test_an_admin_revokes_an_agents_token(rest: Rest) -> None:
    response = await rest.call(
        "DELETE",
        f"/api/admin/agents/{rest.agent.id}/tokens/{token_id(rest.agent_token)}",
        rest.admin_token,
    )

    assert response.status == 200
    assert not await rest.works(rest.agent_token)


async def test_no_token_is_issued_for_a_disabled_agent(rest: Rest) -> None:
    await update_agent(rest.engine, rest.agent.id, active=False)

    response = await rest.call(
        "POST", f"/api/admin/agents/{rest.agent.id}/tokens", rest.admin_token, json={"name": "x"}
    )

    assert response.status == 409
    assert await list_api_tokens(rest.engine, rest.agent.id) == []


# --- scope and expiry ------------------------------------------------------------------------


async def conversation(rest: Rest) -> int:
    await Pipeline(rest.engine, rest.bus, Settings(), responder=None).handle(
        entries(inbound(1, 1, "hello"))
    )
    async with rest.engine.connect() as conn:
        return int((await conn.execute(sa.select(conversations.c.id))).scalar_one())


async def test_a_read_only_token_is_refused_any_change(rest: Rest) -> None:
    cid = await conversation(rest)
    reader = await issue_api_token(rest.engine, rest.agent.id, "bi", scope=TokenScope.READ_ONLY)

    response = await rest.call(
        "POST", f"/api/conversations/{cid}/reply", reader, json={"text": "not from a reader"}
    )

    assert response.status == 403
    assert "read-only" in (await response.json())["error"]
    assert all(m.author_kind != "agent" for m in drain_outbound(rest.bus, Network.TELEGRAM))


async def test_a_read_only_token_reads(rest: Rest) -> None:
    await conversation(rest)
    reader = await issue_api_token(rest.engine, rest.agent.id, "bi", scope=TokenScope.READ_ONLY)

    response = await rest.call("GET", "/api/conversations?view=waiting", reader)

    assert response.status == 200
    assert len((await response.json())["conversations"]) == 1


async def test_an_expired_token_is_refused(rest: Rest) -> None:
    short = await issue_api_token(
        rest.engine, rest.agent.id, "trial", valid_for=dt.timedelta(days=1)
    )
    async with rest.engine.begin() as conn:  # a day later
        await conn.execute(
            sa.update(api_tokens)
            .where(api_tokens.c.name == "trial")
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )

    assert not await rest.works(short)


# --- what ends them ------------------------------------------------------------------------


async def test_a_new_password_ends_the_agents_tokens(rest: Rest) -> None:
    await update_agent(rest.engine, rest.agent.id, password="a brand new passphrase")

    assert not await rest.works(rest.agent_token)
    assert await list_api_tokens(rest.engine, rest.agent.id) == []


async def test_re_enabling_an_agent_does_not_bring_back_their_tokens(rest: Rest) -> None:
    response = await rest.call(
        "PATCH", f"/api/admin/agents/{rest.agent.id}", rest.admin_token, json={"active": False}
    )
    assert response.status == 200

    await update_agent(rest.engine, rest.agent.id, active=True)

    assert not await rest.works(rest.agent_token)


async def test_upgrading_revokes_the_tokens_of_agents_disabled_before(emptied_url: str) -> None:
    await upgrade(emptied_url, "0009")
    engine = make_engine(emptied_url)
    try:
        async with engine.begin() as conn:
            for login, active in (("gone", False), ("here", True)):
                agent_id = (
                    await conn.execute(
                        sa.insert(agents)
                        .values(
                            login=login,
                            display_name=login,
                            role="agent",
                            language="en",
                            active=active,
                            created_at=utcnow(),
                        )
                        .returning(agents.c.id)
                    )
                ).scalar_one()
                await conn.execute(
                    sa.text(
                        "INSERT INTO api_tokens (id, agent_id, name, created_at) "
                        "VALUES (:id, :agent_id, 'crm', :now)"
                    ),
                    {"id": f"digest-of-{login}", "agent_id": agent_id, "now": utcnow()},
                )

        await upgrade(emptied_url)

        async with engine.connect() as conn:
            revoked = await conn.execute(sa.select(api_tokens.c.id, api_tokens.c.revoked_at))
            assert {digest: when is not None for digest, when in revoked} == {
                "digest-of-gone": True,
                "digest-of-here": False,
            }
    finally:
        await engine.dispose()


@pytest.fixture
async def emptied_url(database_url: str) -> AsyncIterator[str]:
    yield database_url
    await downgrade(database_url, "base")


# --- the admin page ------------------------------------------------------------------------


async def test_the_admin_page_shows_a_new_token_once(rest: Rest) -> None:
    csrf = await sign_in(rest.client, rest.admin)

    issued = await rest.client.post(
        f"/admin/agents/{rest.agent.id}/tokens",
        data={"name": "helpdesk", "scope": "read-only", "expires_in_days": "90", "csrf": csrf},
    )
    token = re.search(r'<code id="issued-token">(sb_[^<]+)</code>', await issued.text())
    assert token is not None
    later = await (await rest.client.get(f"/admin/agents/{rest.agent.id}/tokens")).text()

    assert token[1] not in later and "helpdesk" in later
    (info,) = [t for t in await list_api_tokens(rest.engine, rest.agent.id) if t.name == "helpdesk"]
    assert info.scope is TokenScope.READ_ONLY and info.expires_at is not None
    assert await rest.works(token[1])


async def test_the_admin_page_revokes_a_token(rest: Rest) -> None:
    csrf = await sign_in(rest.client, rest.admin)
    page = await (await rest.client.get(f"/admin/agents/{rest.agent.id}/tokens")).text()
    assert f"/tokens/{token_id(rest.agent_token)}/revoke" in page

    await rest.client.post(
        f"/admin/agents/{rest.agent.id}/tokens/{token_id(rest.agent_token)}/revoke",
        data={"csrf": csrf},
    )

    assert not await rest.works(rest.agent_token)


async def test_the_agents_page_links_each_agents_tokens(rest: Rest) -> None:
    await sign_in(rest.client, rest.admin)

    page = await (await rest.client.get("/admin/agents")).text()

    assert f'href="/admin/agents/{rest.agent.id}/tokens"' in page
    assert CSRF_FIELD.search(page) is not None


# --- the command line --------------------------------------------------------------------


def user_command(url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("SB_CONFIG", "/dev/null")
    monkeypatch.setenv("SB_DATABASE_URL", url)
    return CliRunner().invoke(main, ["user", *args], catch_exceptions=False)


def on_store(
    url: str, work: Callable[[AsyncEngine], Awaitable[list[TokenInfo]]]
) -> list[TokenInfo]:
    async def run() -> list[TokenInfo]:
        engine = make_engine(url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def cli_agent(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    added = user_command(url, monkeypatch, "add", "anna", "--password", PASSWORD)
    assert added.exit_code == 0, added.output


def test_the_cli_issues_a_read_only_token_with_an_expiry(
    emptied_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_agent(emptied_url, monkeypatch)

    issued = user_command(
        emptied_url, monkeypatch, "token", "anna", "--name", "bi", "--read-only", "--days", "7"
    )

    assert issued.exit_code == 0, issued.output

    async def tokens(engine: AsyncEngine) -> list[TokenInfo]:
        return await list_api_tokens(engine, (await find_agent(engine, "anna")).id)

    (info,) = on_store(emptied_url, tokens)
    assert info.id == token_id(issued.stdout.strip())
    assert info.scope is TokenScope.READ_ONLY
    assert info.expires_at is not None
    assert info.expires_at - utcnow() > dt.timedelta(days=6, hours=23)


def test_the_cli_lists_an_agents_tokens(emptied_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cli_agent(emptied_url, monkeypatch)
    token = user_command(emptied_url, monkeypatch, "token", "anna", "--name", "crm").stdout.strip()

    listed = user_command(emptied_url, monkeypatch, "tokens", "anna")

    assert listed.exit_code == 0, listed.output
    (line,) = listed.stdout.splitlines()
    assert line.split()[0] == str(token_id(token))
    assert "full" in line and "never" in line and line.endswith("crm")
    assert token not in listed.stdout


def test_the_cli_revokes_a_token(emptied_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    cli_agent(emptied_url, monkeypatch)
    kept = user_command(emptied_url, monkeypatch, "token", "anna", "--name", "a").stdout.strip()
    gone = user_command(emptied_url, monkeypatch, "token", "anna", "--name", "b").stdout.strip()

    revoked = user_command(emptied_url, monkeypatch, "revoke", "anna", str(token_id(gone)))

    assert revoked.exit_code == 0, revoked.output
    listed = user_command(emptied_url, monkeypatch, "tokens", "anna").stdout
    assert str(token_id(kept)) in listed and str(token_id(gone)) not in listed


def test_the_cli_revokes_every_token_of_an_agent(
    emptied_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_agent(emptied_url, monkeypatch)
    for name in ("a", "b"):
        user_command(emptied_url, monkeypatch, "token", "anna", "--name", name)

    revoked = user_command(emptied_url, monkeypatch, "revoke", "anna", "--all")

    assert revoked.exit_code == 0, revoked.output
    assert "has no API token" in user_command(emptied_url, monkeypatch, "tokens", "anna").stdout


def test_the_cli_says_when_there_is_no_such_token(
    emptied_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_agent(emptied_url, monkeypatch)

    revoked = user_command(emptied_url, monkeypatch, "revoke", "anna", "12345")

    assert revoked.exit_code == 1
    assert "anna has no token 12345" in revoked.output
