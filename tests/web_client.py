"""Signing in to the inbox as a browser does (the form and its CSRF token), for tests that drive
its pages over HTTP; calling its REST API with an agent's token."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbox.agents import AgentInfo
from bridge.web.auth import issue_api_token

PASSWORD = "correct horse battery"
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


async def sign_in(client: TestClient[web.Request, web.Application], who: AgentInfo) -> str:
    """Sign in as `who` (whose password is PASSWORD) through the form; returns the CSRF token
    of the session."""
    page = await client.get("/login")
    csrf = CSRF_FIELD.search(await page.text())
    assert csrf is not None
    response = await client.post(
        "/login",
        data={"login": who.login, "password": PASSWORD, "csrf": csrf[1], "next": "/"},
        allow_redirects=False,
    )
    assert response.status == 303, await response.text()
    inbox = await client.get("/")
    token = CSRF_FIELD.search(await inbox.text())
    assert token is not None
    return token[1]


async def bearer(engine: AsyncEngine, who: AgentInfo) -> dict[str, str]:
    """The header of a new API token of `who`."""
    return {"Authorization": f"Bearer {await issue_api_token(engine, who.id, 'test')}"}


async def call_api(
    client: TestClient[web.Request, web.Application],
    method: str,
    path: str,
    who: dict[str, str],
    body: object = None,
) -> tuple[int, Any]:
    """The status and the JSON body of one API request, with `who`'s header."""
    response = await client.request(method, path, json=body, headers=who)
    return response.status, await response.json()
