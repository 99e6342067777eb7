"""Teams and routing rules in the admin's pages (forms that post and redirect, no script needed),
and the figures per team on the dashboard."""

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
from bridge.domain import HandoffReason, Network
from bridge.inbox.agents import AgentInfo, Role, add_agent, update_agent
from bridge.inbox.labels import create_label
from bridge.inbox.routing_rules import RuleDraft, add_rule, list_rules
from bridge.inbox.teams import Team, TeamDraft, create_team, get_team, list_teams, move_to_team
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import conversations
from bridge.web.app import add_inbox
from bridge.web.server import make_app
from tests.bridge.reports.test_team_figures import teamed_week
from tests.factories import entries, inbound
from tests.web_client import PASSWORD, sign_in

# The pages on one backend: the teams' and rules' store functions are tested on both.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])

Fields = list[tuple[str, str]]


@dataclass
class Site:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    bus: MemoryBus
    admin: AgentInfo
    anna: AgentInfo
    boris: AgentInfo

    async def page(self, path: str) -> str:
        response = await self.client.get(path)
        assert response.status == 200, await response.text()
        return html.unescape(await response.text())

    async def post(self, path: str, fields: Fields) -> tuple[int, str]:
        """Posts the form as a browser does: after the redirect, the page it lands on."""
        response = await self.client.post(path, data=fields)
        return response.status, html.unescape(await response.text())


@pytest.fixture
async def site(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Site]:
    """An admin and two agents, Anna and Boris."""
    app = make_app()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin = await add_agent(engine, "boss", PASSWORD, display_name="Boss", role=Role.ADMIN)
    anna = await add_agent(engine, "anna", PASSWORD, display_name="Anna")
    boris = await add_agent(engine, "boris", PASSWORD, display_name="Boris")
    yield Site(client, engine, memory_bus, admin, anna, boris)
    await client.close()


def team_form(csrf: str, name: str, *members: AgentInfo, **settings: str | None) -> Fields:
    """A team's form as a browser posts it: one "member" per box ticked, and "auto_assign" only
    when its box is."""
    fields: dict[str, str | None] = {
        "capacity": "5",
        "reassign_after_minutes": "",
        "auto_assign": "1",
    } | settings
    return [
        ("csrf", csrf),
        ("name", name),
        *(("member", str(agent.id)) for agent in members),
        *((key, value) for key, value in fields.items() if value is not None),
    ]


def row_of(page: str, table: str, text: str) -> list[str]:
    """The cells' texts of the row of `table` that holds `text`."""
    body = page.split(f'id="{table}"')[1].split("</table>")[0]
    row = next(tr for tr in body.split("<tr") if text in tr)
    return [plain(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]


def plain(markup: str) -> str:
    """The text of some markup, its spaces folded."""
    return " ".join(re.sub(r"<[^>]+>", " ", markup).split())


def checked(page: str) -> list[str]:
    """The values of the member boxes ticked on a page."""
    return re.findall(r'name="member" value="(\d+)" checked', page)


async def test_an_admin_adds_a_team_with_its_members_and_the_list_shows_it(site: Site) -> None:
    csrf = await sign_in(site.client, site.admin)

    status, page = await site.post(
        "/admin/teams",
        team_form(
            csrf, "Billing", site.boris, site.anna, capacity="3", reassign_after_minutes="20"
        ),
    )

    (team,) = await list_teams(site.engine)
    assert team == Team(
        team.id,
        "Billing",
        auto_assign=True,
        capacity=3,
        reassign_after_minutes=20,
        time_zone=None,  # no hours given: open around the clock
        hours=None,
        holidays=None,
        member_ids=(site.anna.id, site.boris.id),
    )
    assert status == 200  # back on the list
    assert row_of(page, "teams", "Billing")[:6] == [
        "Billing",
        "Anna, Boris",
        "3",
        "on",
        "20 min",
        "0",
    ]


async def test_a_team_without_its_boxes_ticked_assigns_nothing_and_never_reassigns(
    site: Site,
) -> None:
    csrf = await sign_in(site.client, site.admin)

    _, page = await site.post("/admin/teams", team_form(csrf, "Night", auto_assign=None))

    (team,) = await list_teams(site.engine)
    assert (team.member_ids, team.auto_assign, team.reassign_after_minutes) == ((), False, None)
    assert row_of(page, "teams", "Night")[1:5] == ["nobody", "5", "off", "never"]


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"capacity": "0"}, "a capacity is 1 to 100 open conversations an agent"),
        ({"capacity": "many"}, "a capacity is a whole number of open conversations an agent"),
        ({"capacity": "²"}, "a capacity is a whole number of open conversations an agent"),
        ({"capacity": "9" * 5000}, "a capacity is a whole number of open conversations an agent"),
        ({"reassign_after_minutes": "soon"}, "re-assignment comes after a whole number of minutes"),
    ],
    ids=[
        "capacity-0",
        "capacity-a-word",
        "capacity-a-superscript",
        "capacity-5000-digits",
        "minutes-a-word",
    ],
)
async def test_a_team_that_makes_no_sense_goes_back_to_the_page_with_the_reason(
    site: Site, fields: dict[str, str], reason: str
) -> None:
    csrf = await sign_in(site.client, site.admin)

    _, page = await site.post("/admin/teams", team_form(csrf, "Billing", **fields))

    assert f'<p class="error" role="alert">{reason}' in page
    assert await list_teams(site.engine) == []


async def test_a_name_taken_goes_back_to_the_page_with_the_reason(site: Site) -> None:
    await create_team(site.engine, TeamDraft("Billing"))
    csrf = await sign_in(site.client, site.admin)

    _, page = await site.post("/admin/teams", team_form(csrf, "BILLING"))

    assert "a team named “BILLING” exists already" in page


async def test_a_member_that_is_not_an_id_is_a_bad_request(site: Site) -> None:
    csrf = await sign_in(site.client, site.admin)

    status, _ = await site.post("/admin/teams", [*team_form(csrf, "Billing"), ("member", "x")])

    assert status == 400
    assert await list_teams(site.engine) == []


async def test_the_new_teams_form_offers_the_active_agents_as_boxes(site: Site) -> None:
    await update_agent(site.engine, site.boris.id, active=False)
    await sign_in(site.client, site.admin)

    page = await site.page("/admin/teams")

    boxes = re.findall(r'name="member" value="(\d+)"', page)
    assert boxes == [str(site.anna.id), str(site.admin.id)]  # by login: anna, boss


async def test_an_admin_changes_a_team_on_its_own_page(site: Site) -> None:
    team = await create_team(site.engine, TeamDraft("Billing", [site.anna.id], True, 3, 20))
    csrf = await sign_in(site.client, site.admin)

    form = await site.page(f"/admin/teams/{team.id}")
    _, listed = await site.post(
        f"/admin/teams/{team.id}",
        team_form(csrf, "Payments", site.boris, capacity="4", auto_assign=None),
    )

    assert checked(form) == [str(site.anna.id)]
    assert 'name="capacity" type="number" min="1" max="100" required value="3"' in form
    assert 'name="reassign_after_minutes" type="number" min="1" max="10080" value="20"' in form
    changed = await get_team(site.engine, team.id)
    assert (changed.name, changed.auto_assign, changed.capacity) == ("Payments", False, 4)
    assert (changed.reassign_after_minutes, changed.member_ids) == (None, (site.boris.id,))
    assert row_of(listed, "teams", "Payments")[:5] == ["Payments", "Boris", "4", "off", "never"]


async def test_a_disabled_member_stays_ticked_on_the_teams_page_so_saving_keeps_them(
    site: Site,
) -> None:
    team = await create_team(site.engine, TeamDraft("Billing", [site.anna.id, site.boris.id]))
    await update_agent(site.engine, site.boris.id, active=False)
    await sign_in(site.client, site.admin)

    page = await site.page(f"/admin/teams/{team.id}")

    assert checked(page) == [str(site.anna.id), str(site.boris.id)]
    assert "Boris (disabled)" in plain(page)


async def test_a_refused_change_goes_back_to_the_teams_own_page_with_the_reason(
    site: Site,
) -> None:
    await create_team(site.engine, TeamDraft("Billing"))
    sales = await create_team(site.engine, TeamDraft("Sales"))
    csrf = await sign_in(site.client, site.admin)

    response = await site.client.post(
        f"/admin/teams/{sales.id}", data=team_form(csrf, "billing"), allow_redirects=False
    )
    page = await site.page(response.headers["Location"])

    assert response.headers["Location"].startswith(f"/admin/teams/{sales.id}?error=")
    assert "a team named “billing” exists already" in page
    assert (await get_team(site.engine, sales.id)).name == "Sales"


async def test_deleting_a_team_asks_first_and_its_conversations_stay_with_no_team(
    site: Site, settings: Settings
) -> None:
    team = await create_team(site.engine, TeamDraft("Billing"))
    await add_rule(site.engine, RuleDraft(network=Network.VK, team_id=team.id))
    await Pipeline(site.engine, site.bus, settings, None).handle(entries(inbound(1, 1)))
    async with site.engine.connect() as conn:
        conversation_id = (await conn.execute(sa.select(conversations.c.id))).scalar_one()
    await move_to_team(site.engine, site.bus, conversation_id, team.id)
    csrf = await sign_in(site.client, site.admin)

    page = await site.page("/admin/teams")
    await site.post(f"/admin/teams/{team.id}/delete", [("csrf", csrf)])

    assert (
        'data-confirm="Delete the team “Billing”? Its open conversations (1) stay where they are, '
        'with no team; the routing rules that name it (1) are deleted."'
    ) in page
    assert await list_teams(site.engine) == []
    assert await list_rules(site.engine) == []
    async with site.engine.connect() as conn:
        assert (await conn.execute(sa.select(conversations.c.team_id))).scalar_one() is None


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/admin/teams/999"),
        ("POST", "/admin/teams/999"),
        ("POST", "/admin/teams/999/delete"),
        ("POST", "/admin/routing/999/delete"),
        ("POST", "/admin/routing/999/move"),
    ],
)
async def test_a_team_or_rule_that_is_gone_is_not_found(site: Site, method: str, path: str) -> None:
    csrf = await sign_in(site.client, site.admin)

    response = await site.client.request(method, path, data=team_form(csrf, "Billing"))

    assert response.status == 404


async def test_only_admins_see_and_open_the_teams_and_routing_pages(site: Site) -> None:
    csrf = await sign_in(site.client, site.anna)

    statuses = [
        (await site.client.get("/admin/teams")).status,
        (await site.client.get("/admin/routing")).status,
        (await site.client.post("/admin/teams", data=team_form(csrf, "Billing"))).status,
    ]
    inbox = await site.page("/")

    assert statuses == [403, 403, 403]
    assert await list_teams(site.engine) == []
    assert 'href="/admin/teams"' not in inbox
    assert 'href="/admin/routing"' not in inbox


async def test_the_admin_navigation_links_the_teams_and_routing_pages(site: Site) -> None:
    await sign_in(site.client, site.admin)

    page = await site.page("/admin/routing")

    assert '<a href="/admin/teams" class="">Teams</a>' in page
    assert '<a href="/admin/routing" class="active">Routing</a>' in page


async def test_a_form_without_the_csrf_token_is_refused(site: Site) -> None:
    await sign_in(site.client, site.admin)

    status, _ = await site.post("/admin/teams", team_form("forged", "Billing"))

    assert status == 403
    assert await list_teams(site.engine) == []


def rule_form(csrf: str, **fields: str) -> Fields:
    empty = dict.fromkeys(("network", "language", "tag", "reason", "team_id", "label_id"), "")
    return [("csrf", csrf), *(empty | fields).items()]


async def test_an_admin_adds_a_rule_and_the_page_shows_its_conditions_and_results(
    site: Site,
) -> None:
    team = await create_team(site.engine, TeamDraft("Billing"))
    vip = await create_label(site.engine, "VIP", "#ffeb3b")
    csrf = await sign_in(site.client, site.admin)

    status, page = await site.post(
        "/admin/routing",
        rule_form(
            csrf,
            network="vk",
            language="RU",
            reason="asked_for_human",
            team_id=str(team.id),
            label_id=str(vip.id),
        ),
    )

    (rule,) = await list_rules(site.engine)
    assert (rule.network, rule.language, rule.tag, rule.reason) == (
        Network.VK,
        "ru",
        None,
        HandoffReason.ASKED_FOR_HUMAN,
    )
    assert (rule.team_id, rule.label_id) == (team.id, vip.id)
    assert status == 200
    assert row_of(page, "rules", "Billing")[:8] == [
        "1",
        "Vk",
        "ru",
        "any tag",
        "asked for a person",
        "any words",
        "Billing",
        "VIP",
    ]
    assert f'class="label-chip label-{vip.id}"' in page


async def test_an_admin_adds_a_listening_rule_with_words_and_urgency(site: Site) -> None:
    team = await create_team(site.engine, TeamDraft("Escalations"))
    csrf = await sign_in(site.client, site.admin)

    status, page = await site.post(
        "/admin/routing",
        [
            *rule_form(csrf, team_id=str(team.id)),
            ("words", "не работает,\nверните  деньги"),
            ("urgent", "on"),
        ],
    )

    (rule,) = await list_rules(site.engine)
    assert (rule.words, rule.urgent) == (("не работает", "верните деньги"), True)
    assert status == 200
    assert row_of(page, "rules", "Escalations")[5] == "не работает, верните деньги urgent"


async def test_a_rule_that_gives_nothing_goes_back_to_the_page_with_the_reason(
    site: Site,
) -> None:
    csrf = await sign_in(site.client, site.admin)

    _, page = await site.post("/admin/routing", rule_form(csrf, network="vk"))

    reason = "a rule gives a team, a label or both, or marks comments urgent"
    assert f'<p class="error" role="alert">{reason}</p>' in page
    assert await list_rules(site.engine) == []


@pytest.mark.parametrize("fields", [{"network": "icq"}, {"reason": "bored"}, {"team_id": "0"}])
async def test_a_choice_no_form_offers_is_a_bad_request(site: Site, fields: dict[str, str]) -> None:
    team = await create_team(site.engine, TeamDraft("Billing"))
    csrf = await sign_in(site.client, site.admin)

    status, _ = await site.post(
        "/admin/routing", rule_form(csrf, **({"team_id": str(team.id)} | fields))
    )

    assert status == 400
    assert await list_rules(site.engine) == []


async def test_the_reasons_offered_are_those_the_pipeline_hands_off_for(site: Site) -> None:
    await sign_in(site.client, site.admin)

    page = await site.page("/admin/routing")

    offered = re.findall(
        r'<option value="([a-z_]+)">', page.split('name="reason"')[1].split("</select>")[0]
    )
    assert offered == [r.value for r in HandoffReason if r is not HandoffReason.AGENT_TOOK_OVER]


async def test_rules_move_up_and_down_and_an_end_moves_no_further(site: Site) -> None:
    team = await create_team(site.engine, TeamDraft("Billing"))
    first, second, third = [
        await add_rule(site.engine, RuleDraft(network=network, team_id=team.id))
        for network in (Network.TELEGRAM, Network.VK, Network.FACEBOOK)
    ]
    csrf = await sign_in(site.client, site.admin)

    await site.post(f"/admin/routing/{third.id}/move", [("csrf", csrf), ("direction", "earlier")])
    _, page = await site.post(
        f"/admin/routing/{first.id}/move", [("csrf", csrf), ("direction", "later")]
    )

    assert [rule.id for rule in await list_rules(site.engine)] == [third.id, first.id, second.id]
    assert [
        row_of(page, "rules", f"/admin/routing/{rule.id}/")[1] for rule in (third, first, second)
    ] == ["Facebook", "Telegram", "Vk"]
    buttons = re.findall(r'value="(earlier|later)"[^>]*?(disabled)?>', page)
    assert buttons == [
        ("earlier", "disabled"),
        ("later", ""),
        ("earlier", ""),
        ("later", ""),
        ("earlier", ""),
        ("later", "disabled"),
    ]


async def test_deleting_a_rule_asks_first(site: Site) -> None:
    team = await create_team(site.engine, TeamDraft("Billing"))
    rule = await add_rule(site.engine, RuleDraft(team_id=team.id))
    csrf = await sign_in(site.client, site.admin)

    page = await site.page("/admin/routing")
    await site.post(f"/admin/routing/{rule.id}/delete", [("csrf", csrf)])

    assert 'data-confirm="Delete rule 1?"' in page
    assert await list_rules(site.engine) == []


async def test_the_teams_and_routing_pages_speak_russian(site: Site) -> None:
    team = await create_team(site.engine, TeamDraft("Биллинг", [site.anna.id], True, 3, 20))
    await add_rule(site.engine, RuleDraft(language="ru", team_id=team.id))
    await update_agent(site.engine, site.admin.id, language="ru")
    await sign_in(site.client, site.admin)

    teams = await site.page("/admin/teams")
    edit = await site.page(f"/admin/teams/{team.id}")
    routing = await site.page("/admin/routing")

    assert row_of(teams, "teams", "Биллинг")[3:5] == ["вкл.", "20 мин"]
    assert "Удалить команду «Биллинг»?" in teams
    assert "<legend>Участники</legend>" in edit
    assert row_of(routing, "rules", "Биллинг")[1:3] == ["любая сеть", "ru"]
    assert "Удалить правило 1?" in routing


async def test_the_dashboard_shows_the_figures_per_team_with_a_csv(site: Site) -> None:
    await teamed_week(site.engine)  # Billing: 3, 2 resolved, 20 min, CSAT 10 / 3; Support: …
    await sign_in(site.client, site.admin)
    week = "from=2026-11-02&to=2026-11-08"

    page = await site.page(f"/admin/dashboard?{week}")
    csv = await site.client.get(f"/admin/dashboard.csv?table=teams&{week}")

    assert row_of(page, "teams-figures", "Billing") == [
        "Billing",
        "3",
        "66% (2)",
        "20 min",
        "3.3",
        "33%",
        "3",
        "3",
    ]
    assert row_of(page, "teams-figures", "Support")[:4] == [
        "Support",
        "1",
        "100% (1)",
        "1 h 00 min",
    ]
    assert f"/admin/dashboard.csv?table=teams&{week}" in page
    assert (await csv.text()).splitlines()[1:] == [
        "Billing,3,2,0.6667,20.0,3,3,3.33,0.3333",
        "Support,1,1,1.0,60.0,1,1,4.0,1.0",
    ]


async def test_the_dashboard_says_so_when_no_team_had_anything(site: Site) -> None:
    await sign_in(site.client, site.admin)

    page = await site.page("/admin/dashboard")

    assert row_of(page, "teams-figures", "muted") == [
        "No team had a conversation or a rating in this period."
    ]


async def test_an_admin_gives_a_team_business_hours_and_holidays(site: Site) -> None:
    csrf = await sign_in(site.client, site.admin)
    status, _ = await site.post(
        "/admin/teams",
        team_form(
            csrf,
            "Day shift",
            site.anna,
            time_zone="Europe/Moscow",
            hours_0="09:00-13:00, 14:00-18:00",
            hours_5="10:00-24:00",
            holidays="2027-01-01, 2027-01-07",
        ),
    )
    assert status == 200
    (team,) = await list_teams(site.engine)
    assert team.time_zone == "Europe/Moscow"
    assert team.hours == {"0": [["09:00", "13:00"], ["14:00", "18:00"]], "5": [["10:00", "24:00"]]}
    assert team.holidays == ["2027-01-01", "2027-01-07"]
    page = await (await site.client.get(f"/admin/teams/{team.id}")).text()
    assert 'value="09:00-13:00, 14:00-18:00"' in page


async def test_business_hours_that_make_no_sense_go_back_with_the_reason(site: Site) -> None:
    csrf = await sign_in(site.client, site.admin)
    _, page = await site.post(
        "/admin/teams", team_form(csrf, "Night", time_zone="Europe/Moscow", hours_0="18:00-9:00")
    )
    assert "two times HH:MM" in page
    assert await list_teams(site.engine) == []
