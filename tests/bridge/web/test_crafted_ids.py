"""Crafted ids (0, negative, unknown, past the store's integer range, not a number) in every
form and API route that takes an id, on SQLite and PostgreSQL: refused with 400 or 404, never a
server error (PostgreSQL raises on integers out of int4/int8 range, SQLite past int8)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.inbox.agents import AgentInfo, Role, add_agent
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations
from bridge.web.app import add_inbox
from bridge.web.auth import issue_api_token
from bridge.web.server import make_app
from tests.factories import entries, inbound
from tests.web_client import PASSWORD, sign_in

# Ids no row can have: the store's keys run from 1 to 2**31 - 1.
OUT_OF_RANGE = ["0", "-1", str(2**31), str(2**63), "abc"]
UNKNOWN = "9999"


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    admin: AgentInfo
    conversation_id: int
    csrf: str = ""

    async def as_agent(self, who: AgentInfo) -> None:
        self.csrf = await sign_in(self.client, who)

    async def assignee(self) -> int | None:
        async with self.engine.connect() as conn:
            query = sa.select(conversations.c.assignee_id)
            return (await conn.execute(query)).scalar_one_or_none()


@pytest.fixture
async def site(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Site]:
    app = make_app()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin = await add_agent(engine, "boss", PASSWORD, role=Role.ADMIN)
    await Pipeline(engine, memory_bus, settings, responder=None).handle(
        entries(inbound(1, 1, "hello"))
    )
    async with engine.connect() as conn:
        cid = int((await conn.execute(sa.select(conversations.c.id))).scalar_one())
    yield Site(client, engine, admin, cid)
    await client.close()


# (action, the form's id field, other fields): the conversation's forms that name a row.
FORM_ID_FIELDS = [
    ("transfer", "agent_id", {}),
    ("link", "customer_id", {}),
    ("unlink", "link_id", {}),
    ("retry", "message_id", {}),
    ("suggestion", "message_id", {"accepted": "1"}),
]


@pytest.mark.parametrize("crafted", OUT_OF_RANGE)
@pytest.mark.parametrize(
    ("action", "field", "fields"), FORM_ID_FIELDS, ids=[f[0] for f in FORM_ID_FIELDS]
)
async def test_a_form_field_no_row_can_have_is_a_bad_request(
    site: Site, action: str, field: str, fields: dict[str, str], crafted: str
) -> None:
    await site.as_agent(site.admin)

    response = await site.client.post(
        f"/c/{site.conversation_id}/{action}",
        data={field: crafted, "csrf": site.csrf, **fields},
        allow_redirects=False,
    )

    assert response.status == 400, await response.text()


@pytest.mark.parametrize("crafted", [*OUT_OF_RANGE, UNKNOWN])
async def test_the_form_transfers_to_no_agent_that_does_not_exist(site: Site, crafted: str) -> None:
    await site.as_agent(site.admin)

    response = await site.client.post(
        f"/c/{site.conversation_id}/transfer",
        data={"agent_id": crafted, "csrf": site.csrf},
        allow_redirects=False,
    )

    assert response.status in (400, 404), await response.text()
    assert await site.assignee() is None


# Pages and forms with ids in the path; {id} is the crafted one, {cid} the real conversation.
PATH_ROUTES = [
    ("GET", "/c/{id}", {}),
    ("POST", "/c/{id}/claim", {}),
    ("POST", "/c/{id}/reply", {"text": "hi"}),
    ("POST", "/c/{cid}/retry", {"message_id": "{id}"}),
    ("GET", "/c/{id}/messages/1/attachments/1", {}),
    ("GET", "/c/{cid}/messages/{id}/attachments/1", {}),
    ("GET", "/c/{cid}/messages/1/attachments/{id}", {}),
]


@pytest.mark.parametrize("crafted", [*OUT_OF_RANGE, UNKNOWN])
@pytest.mark.parametrize(("method", "path", "fields"), PATH_ROUTES, ids=[p[1] for p in PATH_ROUTES])
async def test_a_page_of_a_crafted_id_is_refused_not_a_server_error(
    site: Site, method: str, path: str, fields: dict[str, str], crafted: str
) -> None:
    await site.as_agent(site.admin)

    def concrete(text: str) -> str:
        return text.replace("{id}", crafted).replace("{cid}", str(site.conversation_id))

    response = await site.client.request(
        method,
        concrete(path),
        data={key: concrete(value) for key, value in fields.items()} | {"csrf": site.csrf},
        allow_redirects=False,
    )

    assert response.status in (400, 404), await response.text()


# The admin pages that name a row in the path or the query.
ADMIN_ROUTES = [
    ("POST", "/admin/agents/{id}", {"role": "agent"}),
    ("POST", "/admin/canned/{id}/delete", {}),
    ("GET", "/admin/kb/new?message_id={id}", {}),
    ("GET", "/admin/agents/{id}/tokens", {}),
    ("POST", "/admin/agents/{id}/tokens/1/revoke", {}),
    ("POST", "/admin/agents/1/tokens/{id}/revoke", {}),
    ("GET", "/admin/teams/{id}", {}),
    ("POST", "/admin/teams/{id}", {"name": "Billing", "capacity": "5"}),
    ("POST", "/admin/teams/{id}/delete", {}),
    ("POST", "/admin/routing/{id}/delete", {}),
    ("POST", "/admin/routing/{id}/move", {"direction": "earlier"}),
]


@pytest.mark.parametrize("crafted", OUT_OF_RANGE)
@pytest.mark.parametrize(
    ("method", "path", "fields"), ADMIN_ROUTES, ids=[a[1] for a in ADMIN_ROUTES]
)
async def test_an_admin_page_of_a_crafted_id_is_refused_not_a_server_error(
    site: Site, method: str, path: str, fields: dict[str, str], crafted: str
) -> None:
    await site.as_agent(site.admin)

    response = await site.client.request(
        method,
        path.replace("{id}", crafted),
        data=fields | {"csrf": site.csrf},
        allow_redirects=False,
    )

    assert response.status in (400, 404), await response.text()


# The API's routes with ids in the path, each with a body it accepts.
API_PATH_ROUTES = [
    ("GET", "/api/conversations/{id}", None),
    ("POST", "/api/conversations/{id}/reply", {"text": "hi"}),
    ("POST", "/api/conversations/{id}/notes", {"text": "hi"}),
    ("POST", "/api/conversations/{id}/claim", None),
    ("POST", "/api/conversations/{id}/transfer", {"agent_id": 1}),
    ("POST", "/api/conversations/{id}/resolve", None),
    ("POST", "/api/conversations/{id}/reopen", None),
    ("POST", "/api/conversations/{cid}/messages/{id}/retry", None),
    ("POST", "/api/conversations/{id}/messages/1/retry", None),
    ("POST", "/api/conversations/{cid}/suggestions/{id}", {"accepted": True}),
    ("POST", "/api/conversations/{id}/link", {"customer_id": 1}),
    ("POST", "/api/links/{id}/undo", None),
    ("GET", "/api/conversations/{id}/messages/1/attachments/1", None),
    ("PATCH", "/api/admin/agents/{id}", {"active": True}),
    ("GET", "/api/admin/agents/{id}/tokens", None),
    ("DELETE", "/api/admin/agents/{id}/tokens/1", None),
    ("DELETE", "/api/admin/agents/1/tokens/{id}", None),
    ("DELETE", "/api/me/tokens/{id}", None),
    ("PUT", "/api/admin/teams/{id}", {"name": "Billing"}),
    ("DELETE", "/api/admin/teams/{id}", None),
    ("DELETE", "/api/admin/routing-rules/{id}", None),
    ("POST", "/api/admin/routing-rules/{id}/move", {"earlier": True}),
]


@pytest.fixture
async def token(site: Site) -> str:
    return await issue_api_token(site.engine, site.admin.id, "crafted")


@pytest.mark.parametrize("crafted", OUT_OF_RANGE)
@pytest.mark.parametrize(
    ("method", "path", "body"), API_PATH_ROUTES, ids=[a[1] for a in API_PATH_ROUTES]
)
async def test_an_api_path_of_a_crafted_id_is_not_found(
    site: Site, token: str, method: str, path: str, body: object, crafted: str
) -> None:
    response = await site.client.request(
        method,
        path.replace("{id}", crafted).replace("{cid}", str(site.conversation_id)),
        json=body,
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status == 404, await response.text()


@pytest.mark.parametrize("crafted", [0, -1, 2**31, 2**63, "abc"])
@pytest.mark.parametrize(("action", "field"), [("transfer", "agent_id"), ("link", "customer_id")])
async def test_an_api_body_id_no_row_can_have_is_a_bad_request(
    site: Site, token: str, action: str, field: str, crafted: object
) -> None:
    response = await site.client.post(
        f"/api/conversations/{site.conversation_id}/{action}",
        json={field: crafted},
        headers={"Authorization": f"Bearer {token}"},
    )

    assert response.status == 400, await response.text()
