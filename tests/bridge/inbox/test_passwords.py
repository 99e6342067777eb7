"""The password policy: the common and the trivial are refused, and the refusal says why (in the
store's functions, the REST API, the admin form and the command line)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import unquote_plus

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.inbox.agents import AgentInfo, Role, WeakPassword, add_agent, update_agent
from bridge.inbox.common_passwords import COMMON_PASSWORDS
from bridge.inbox.passwords import password_problem
from bridge.settings import Settings
from bridge.web.app import add_inbox
from bridge.web.auth import issue_api_token
from supportbridge.cli import main
from tests.web_client import PASSWORD, sign_in


def test_a_password_shorter_than_twelve_characters_is_refused() -> None:
    assert password_problem("Xq7#mP2!vL9", "anna") == "a password needs at least 12 characters"


def test_the_login_as_the_password_is_refused() -> None:
    assert password_problem("Supervisor01", "supervisor01") == "a password must not be the login"


def test_the_login_with_digits_and_symbols_added_is_refused() -> None:
    assert password_problem("Petrovich2024!", "petrovich") == "a password must not be the login"


def test_one_character_repeated_is_refused() -> None:
    assert password_problem(" " * 12, "anna") == "a password needs at least 5 different characters"


def test_a_short_password_repeated_is_refused() -> None:
    problem = password_problem("qwe1!qwe1!qwe1!", "anna")

    assert problem == "a password must not be a shorter one repeated"


def test_a_short_password_of_one_kind_of_character_is_refused() -> None:
    assert password_problem("839201746352", "anna") == (
        "a password of digits only needs at least 16 characters"
    )
    assert password_problem("horsebatterys", "anna") == (
        "a password of lowercase letters only needs at least 16 characters"
    )


def test_a_common_password_is_refused() -> None:
    assert password_problem("WinnieThePooh", "anna") == "this is one of the most common passwords"


def test_a_common_password_with_digits_and_symbols_added_is_refused() -> None:
    assert password_problem("Sunshine2024!!", "anna") == (
        "this is one of the most common passwords with digits or symbols added"
    )


@pytest.mark.parametrize(
    "password", [PASSWORD, "Tr0ub4dor&3-xyz", "пароль от роутера 42", "9 lives of Felix"]
)
def test_a_long_or_varied_password_is_accepted(password: str) -> None:
    assert password_problem(password, "anna") is None


def test_the_common_password_list_is_a_few_thousand_lower_case_words() -> None:
    assert 3000 < len(COMMON_PASSWORDS) < 5000
    assert {"password", "123456", "qwerty", "iloveyou"} <= COMMON_PASSWORDS
    assert all(word == word.lower() for word in COMMON_PASSWORDS)


async def test_a_new_agent_with_a_weak_password_is_refused_with_the_reason(
    engine: AsyncEngine,
) -> None:
    with pytest.raises(WeakPassword, match="must not be the login"):
        await add_agent(engine, "Supervisor01", "supervisor01")


async def test_a_new_password_is_held_to_the_policy(engine: AsyncEngine) -> None:
    agent = await add_agent(engine, "anna", PASSWORD)

    with pytest.raises(WeakPassword, match="at least 12 characters"):
        await update_agent(engine, agent.id, password="12345678")


@pytest.fixture
async def admin_client(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[tuple[TestClient[web.Request, web.Application], AgentInfo]]:
    app = web.Application()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, await add_agent(engine, "boss", PASSWORD, role=Role.ADMIN)
    await client.close()


async def test_the_api_says_why_a_password_is_refused(
    engine: AsyncEngine,
    admin_client: tuple[TestClient[web.Request, web.Application], AgentInfo],
) -> None:
    client, admin = admin_client
    token = await issue_api_token(engine, admin.id, "ops")

    response = await client.post(
        "/api/admin/agents",
        json={"login": "petr", "password": "Sunshine2024!!"},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status == 409
    assert (await response.json())["error"] == (
        "this is one of the most common passwords with digits or symbols added"
    )


async def test_the_admin_form_says_why_a_password_is_refused(
    admin_client: tuple[TestClient[web.Request, web.Application], AgentInfo],
) -> None:
    client, admin = admin_client
    csrf = await sign_in(client, admin)

    response = await client.post(
        "/admin/agents",
        data={"login": "petr", "password": "            ", "role": "agent", "csrf": csrf},
        allow_redirects=False,
    )

    assert "at least 5 different characters" in unquote_plus(response.headers["Location"])


def test_the_cli_says_why_a_password_is_refused(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SB_CONFIG", "/dev/null")
    monkeypatch.setenv("SB_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/store.db")

    added = CliRunner().invoke(main, ["user", "add", "anna", "--password", "anna12345678"])

    assert added.exit_code == 1
    assert "a password must not be the login" in added.output
