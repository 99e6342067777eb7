"""Labels in the REST API: every agent lists them, admins keep them, an agent sets a
conversation's labels, and the conversations' list filters by one and carries them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.inbox.agents import Role, add_agent
from bridge.inbox.labels import Label, create_label, list_labels
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations
from bridge.web.app import add_inbox
from tests.factories import entries, inbound
from tests.web_client import PASSWORD, bearer, call_api

# The API on one backend: the labels' store functions are tested on both (tests/bridge/inbox).
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@dataclass
class Rest:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    agent: dict[str, str]
    admin: dict[str, str]
    conversations: list[int]

    async def call(
        self, method: str, path: str, who: dict[str, str], body: object = None
    ) -> tuple[int, Any]:
        return await call_api(self.client, method, path, who, body)


@pytest.fixture
async def rest(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Rest]:
    """An agent's and an admin's tokens, and two conversations waiting, oldest first."""
    app = web.Application()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin = await add_agent(engine, "boss", PASSWORD, role=Role.ADMIN)
    agent = await add_agent(engine, "anna", PASSWORD)
    pipeline = Pipeline(engine, memory_bus, settings, responder=None)
    await pipeline.handle(entries(inbound(1, 1, "first"), inbound(2, 1, "second")))
    async with engine.connect() as conn:
        ids = list(await conn.scalars(sa.select(conversations.c.id).order_by(conversations.c.id)))
    yield Rest(
        client,
        engine,
        await bearer(engine, agent),
        await bearer(engine, admin),
        ids,
    )
    await client.close()


def out(label: Label) -> dict[str, object]:
    return {"id": label.id, "name": label.name, "colour": label.colour}


async def test_any_agent_lists_the_labels_by_name(rest: Rest) -> None:
    vip = await create_label(rest.engine, "VIP", "#ffeb3b")
    bug = await create_label(rest.engine, "bug", "#d93b3b")

    assert await rest.call("GET", "/api/labels", rest.agent) == (
        200,
        {"labels": [out(bug), out(vip)]},
    )


async def test_an_admin_adds_a_label(rest: Rest) -> None:
    status, answer = await rest.call(
        "POST", "/api/admin/labels", rest.admin, {"name": "Refund", "colour": "#FFAA00"}
    )

    (label,) = await list_labels(rest.engine)
    assert (status, answer) == (200, out(label))
    assert label.colour == "#ffaa00"


async def test_a_name_taken_is_a_conflict_and_a_bad_colour_a_bad_request(rest: Rest) -> None:
    await create_label(rest.engine, "Refund", "#ffaa00")

    taken, _ = await rest.call(
        "POST", "/api/admin/labels", rest.admin, {"name": "REFUND", "colour": "#000000"}
    )
    bad, answer = await rest.call(
        "POST", "/api/admin/labels", rest.admin, {"name": "Bug", "colour": "red"}
    )

    assert (taken, bad) == (409, 400)
    assert answer["error"].startswith("colour:")


async def test_an_admin_renames_a_label_and_its_colour_stays(rest: Rest) -> None:
    label = await create_label(rest.engine, "Refund", "#ffaa00")

    status, answer = await rest.call(
        "PATCH", f"/api/admin/labels/{label.id}", rest.admin, {"name": "Refunds"}
    )

    assert (status, answer) == (200, {"id": label.id, "name": "Refunds", "colour": "#ffaa00"})


async def test_changing_or_deleting_a_label_that_does_not_exist_is_not_found(rest: Rest) -> None:
    changed, _ = await rest.call("PATCH", "/api/admin/labels/999", rest.admin, {"name": "x"})
    deleted, _ = await rest.call("DELETE", "/api/admin/labels/999", rest.admin)

    assert (changed, deleted) == (404, 404)


async def test_an_admin_deletes_a_label(rest: Rest) -> None:
    label = await create_label(rest.engine, "Refund", "#ffaa00")

    status, _ = await rest.call("DELETE", f"/api/admin/labels/{label.id}", rest.admin)

    assert status == 200
    assert await list_labels(rest.engine) == []


async def test_an_agent_is_refused_on_the_admins_label_endpoints(rest: Rest) -> None:
    label = await create_label(rest.engine, "Refund", "#ffaa00")
    path = f"/api/admin/labels/{label.id}"

    statuses = [
        (
            await rest.call(
                "POST", "/api/admin/labels", rest.agent, {"name": "x", "colour": "#000000"}
            )
        )[0],
        (await rest.call("PATCH", path, rest.agent, {"name": "x"}))[0],
        (await rest.call("DELETE", path, rest.agent))[0],
    ]

    assert statuses == [403, 403, 403]
    assert await list_labels(rest.engine) == [label]


async def test_an_agent_sets_a_conversations_labels_and_gets_them_back(rest: Rest) -> None:
    bug = await create_label(rest.engine, "bug", "#d93b3b")
    vip = await create_label(rest.engine, "VIP", "#ffeb3b")
    cid = rest.conversations[0]
    path = f"/api/conversations/{cid}/labels"

    await rest.call("PUT", path, rest.agent, {"label_ids": [bug.id]})
    status, answer = await rest.call("PUT", path, rest.agent, {"label_ids": [vip.id, bug.id]})
    _, detail = await rest.call("GET", f"/api/conversations/{cid}", rest.agent)

    assert (status, answer) == (200, {"labels": [out(bug), out(vip)]})
    assert detail["labels"] == [out(bug), out(vip)]


async def test_setting_a_label_that_does_not_exist_is_refused_and_changes_nothing(
    rest: Rest,
) -> None:
    bug = await create_label(rest.engine, "bug", "#d93b3b")
    path = f"/api/conversations/{rest.conversations[0]}/labels"

    status, answer = await rest.call("PUT", path, rest.agent, {"label_ids": [bug.id, 999]})
    _, detail = await rest.call("GET", f"/api/conversations/{rest.conversations[0]}", rest.agent)

    assert (status, answer) == (409, {"error": "label_ids: no label 999"})
    assert detail["labels"] == []


async def test_labelling_a_conversation_that_does_not_exist_is_not_found(rest: Rest) -> None:
    status, _ = await rest.call(
        "PUT", "/api/conversations/999/labels", rest.agent, {"label_ids": []}
    )

    assert status == 404


async def test_the_list_filters_by_label_and_each_row_carries_its_labels(rest: Rest) -> None:
    bug = await create_label(rest.engine, "bug", "#d93b3b")
    first, second = rest.conversations
    await rest.call(
        "PUT", f"/api/conversations/{second}/labels", rest.agent, {"label_ids": [bug.id]}
    )

    _, everything = await rest.call("GET", "/api/conversations", rest.agent)
    _, filtered = await rest.call("GET", f"/api/conversations?label={bug.id}", rest.agent)

    assert [(row["id"], row["labels"]) for row in everything["conversations"]] == [
        (first, []),
        (second, [out(bug)]),
    ]
    assert [row["id"] for row in filtered["conversations"]] == [second]
    assert filtered["counts"]["waiting"] == 1
    assert filtered["label_counts"] == {str(bug.id): 1}


async def test_a_label_filter_that_is_not_an_id_is_a_bad_request(rest: Rest) -> None:
    status, answer = await rest.call("GET", "/api/conversations?label=0", rest.agent)

    assert status == 400
    assert answer["error"].startswith("label:")
