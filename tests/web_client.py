"""Signing in to the inbox as a browser does (the form and its CSRF token), for tests that drive
its pages over HTTP."""

from __future__ import annotations

import re

from aiohttp import web
from aiohttp.test_utils import TestClient

from bridge.inbox.agents import AgentInfo

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
