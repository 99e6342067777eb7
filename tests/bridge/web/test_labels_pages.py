"""Labels in the pages: the admin's page keeps them, the conversation's header shows and changes
them, the list shows them on each row and filters by them, and /labels.css colours them."""

from __future__ import annotations

import html
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import sqlalchemy as sa
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.inbox.agents import AgentInfo, Role, add_agent
from bridge.inbox.labels import Label, add_label, create_label, delete_label, list_labels
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations
from bridge.web.app import add_inbox
from bridge.web.server import make_app
from tests.bridge.reports.test_label_figures import labelled_week
from tests.factories import entries, inbound
from tests.web_client import PASSWORD, sign_in

# The pages on one backend: the labels' store functions are tested on both (tests/bridge/inbox).
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    bus: MemoryBus
    admin: AgentInfo
    agent: AgentInfo
    conversations: list[int]

    async def page(self, path: str) -> str:
        response = await self.client.get(path)
        assert response.status == 200, await response.text()
        return html.unescape(await response.text())


@pytest.fixture
async def site(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Site]:
    """Two agents (one an admin) and three conversations waiting, oldest first."""
    app = make_app()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin = await add_agent(engine, "boss", PASSWORD, display_name="Boss", role=Role.ADMIN)
    agent = await add_agent(engine, "anna", PASSWORD, display_name="Anna")
    pipeline = Pipeline(engine, memory_bus, settings, responder=None)
    # chats past those of tests/known_week.py, which the dashboard's test adds
    for chat in (101, 102, 103):
        await pipeline.handle(entries(inbound(chat, 1, f"question {chat}")))
    async with engine.connect() as conn:
        ids = list(await conn.scalars(sa.select(conversations.c.id).order_by(conversations.c.id)))
    yield Site(client, engine, memory_bus, admin, agent, ids)
    await client.close()


def chips(page: str) -> list[str]:
    """The names on the label chips of a page, in order."""
    return re.findall(
        r'class="label-chip label-\d+"[^>]*>(?:\s*<[^>]+>)*\s*(?:<span>)?([^<]+)<', page
    )


async def test_an_admin_adds_a_label_with_its_colour_on_the_labels_page(site: Site) -> None:
    csrf = await sign_in(site.client, site.admin)

    response = await site.client.post(
        "/admin/labels", data={"csrf": csrf, "name": "Refund", "colour": "#FFAA00"}
    )

    assert response.status == 200  # back on the page
    page = html.unescape(await response.text())
    (label,) = await list_labels(site.engine)
    assert (label.name, label.colour) == ("Refund", "#ffaa00")
    assert 'value="#ffaa00"' in page
    assert chips(page) == ["Refund"]


async def test_a_name_taken_goes_back_to_the_page_with_the_reason(site: Site) -> None:
    await create_label(site.engine, "Refund", "#ffaa00")
    csrf = await sign_in(site.client, site.admin)

    response = await site.client.post(
        "/admin/labels", data={"csrf": csrf, "name": "refund", "colour": "#000000"}
    )

    assert "“refund” exists already" in html.unescape(await response.text())


async def test_an_admin_renames_and_recolours_a_label(site: Site) -> None:
    label = await create_label(site.engine, "Refund", "#ffaa00")
    csrf = await sign_in(site.client, site.admin)

    await site.client.post(
        f"/admin/labels/{label.id}", data={"csrf": csrf, "name": "Refunds", "colour": "#112233"}
    )

    assert await list_labels(site.engine) == [Label(label.id, "Refunds", "#112233")]


async def test_deleting_a_label_asks_first_and_takes_it_off_its_conversations(
    site: Site,
) -> None:
    label = await create_label(site.engine, "Refund", "#ffaa00")
    await add_label(site.engine, site.bus, site.conversations[0], label.id, None)
    csrf = await sign_in(site.client, site.admin)

    page = await site.page("/admin/labels")
    await site.client.post(f"/admin/labels/{label.id}/delete", data={"csrf": csrf})

    assert "Delete the label “Refund”? The conversations that carry it (1) lose it." in page
    assert await list_labels(site.engine) == []
    assert chips(await site.page(f"/c/{site.conversations[0]}")) == []


async def test_deleting_a_label_that_is_gone_is_not_found(site: Site) -> None:
    csrf = await sign_in(site.client, site.admin)

    response = await site.client.post("/admin/labels/999/delete", data={"csrf": csrf})

    assert response.status == 404


async def test_only_admins_see_and_open_the_labels_page(site: Site) -> None:
    await sign_in(site.client, site.agent)

    response = await site.client.get("/admin/labels")
    inbox = await site.page("/")

    assert response.status == 403
    assert 'href="/admin/labels"' not in inbox


async def test_the_admin_navigation_links_the_labels_page(site: Site) -> None:
    await sign_in(site.client, site.admin)

    assert 'href="/admin/labels"' in await site.page("/")


async def test_an_agent_adds_a_label_on_the_conversation_page_and_removes_it(
    site: Site,
) -> None:
    bug = await create_label(site.engine, "Bug", "#d93b3b")
    vip = await create_label(site.engine, "VIP", "#ffeb3b")
    cid = site.conversations[0]
    csrf = await sign_in(site.client, site.agent)

    await site.client.post(f"/c/{cid}/label", data={"csrf": csrf, "label_id": str(vip.id)})
    with_vip = await site.page(f"/c/{cid}")
    await site.client.post(f"/c/{cid}/unlabel", data={"csrf": csrf, "label_id": str(vip.id)})
    without = await site.page(f"/c/{cid}")

    assert chips(with_vip) == ["VIP"]
    picker = with_vip.split('class="add-label"')[1].split("</form>")[0]
    assert f'value="{bug.id}">Bug<' in picker and f'value="{vip.id}"' not in picker
    assert chips(without) == []


async def test_adding_a_label_deleted_meanwhile_says_so_on_the_page(site: Site) -> None:
    label = await create_label(site.engine, "Bug", "#d93b3b")
    await delete_label(site.engine, label.id)
    csrf = await sign_in(site.client, site.agent)

    response = await site.client.post(
        f"/c/{site.conversations[0]}/label", data={"csrf": csrf, "label_id": str(label.id)}
    )

    assert "That label no longer exists." in html.unescape(await response.text())


async def test_the_list_shows_each_rows_labels_and_filters_by_one(site: Site) -> None:
    bug = await create_label(site.engine, "Bug", "#d93b3b")
    vip = await create_label(site.engine, "VIP", "#ffeb3b")
    first, second, _third = site.conversations
    await add_label(site.engine, site.bus, first, bug.id, None)
    await add_label(site.engine, site.bus, first, vip.id, None)
    await add_label(site.engine, site.bus, second, vip.id, None)
    await sign_in(site.client, site.agent)

    everything = await site.page("/")
    filtered = await site.page(f"/?view=waiting&label={vip.id}")

    assert chips(everything) == ["Bug", "VIP", "VIP"]
    assert re.findall(r'data-conversation="(\d+)"', filtered) == [str(first), str(second)]
    assert f'<option value="{vip.id}" selected>VIP (2)</option>' in filtered
    assert f'<option value="{bug.id}" >Bug (1)</option>' in filtered
    # the views' links and the search keep the label chosen
    assert f'href="?view=resolved&label={vip.id}"' in filtered
    assert f'<input type="hidden" name="label" value="{vip.id}">' in filtered


async def test_a_label_filter_that_is_not_an_id_is_a_bad_request(site: Site) -> None:
    await sign_in(site.client, site.agent)

    response = await site.client.get("/?label=bug")

    assert response.status == 400


async def test_the_labels_stylesheet_writes_each_name_in_the_ink_its_colour_needs(
    site: Site,
) -> None:
    dark = await create_label(site.engine, "Bug", "#d93b3b")
    light = await create_label(site.engine, "VIP", "#ffeb3b")
    await sign_in(site.client, site.agent)
    link = re.search(r'href="(/labels\.css\?v=\w+)"', await site.page("/"))
    assert link is not None

    response = await site.client.get(link[1])

    assert response.content_type == "text/css"
    assert (await response.text()).splitlines() == [
        f".label-{dark.id}{{background:#d93b3b;color:#ffffff}}",
        f".label-{light.id}{{background:#ffeb3b;color:#111827}}",
    ]


async def test_the_stylesheets_address_changes_with_a_colour(site: Site) -> None:
    label = await create_label(site.engine, "Bug", "#d93b3b")
    await sign_in(site.client, site.agent)
    before = re.findall(r"/labels\.css\?v=\w+", await site.page("/"))
    await site.client.post("/admin/labels", data={})  # an agent: refused, changes nothing
    await delete_label(site.engine, label.id)
    await create_label(site.engine, "Bug", "#000000")

    after = re.findall(r"/labels\.css\?v=\w+", await site.page("/"))

    assert before and after and before != after


async def test_the_dashboard_counts_conversations_per_label_with_a_csv(site: Site) -> None:
    await labelled_week(site.engine)  # bug: 3 started, 2 resolved; vip: 2 and 1
    await sign_in(site.client, site.admin)
    week = "from=2026-11-02&to=2026-11-08"

    page = await site.page(f"/admin/dashboard?{week}")
    csv = await site.client.get(f"/admin/dashboard.csv?table=labels&{week}")

    figures = page.split('id="labels-figures"')[1].split("</table>")[0]
    assert re.findall(r"<tr><td>(\w+)</td><td>(\d+)</td><td>([^<]+)</td></tr>", figures) == [
        ("bug", "3", "66% (2)"),
        ("vip", "2", "50% (1)"),
    ]
    assert f"/admin/dashboard.csv?table=labels&{week}" in page
    assert (await csv.text()).splitlines() == [
        "label,conversations,resolved,resolved_rate",
        "bug,3,2,0.6667",
        "vip,2,1,0.5",
    ]
