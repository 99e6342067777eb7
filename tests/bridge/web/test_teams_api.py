"""Teams and routing rules in the REST API: every agent lists the teams, admins keep them and the
rules that send conversations to them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus.memory import MemoryBus
from bridge.domain import HandoffReason, Network
from bridge.inbox.agents import AgentInfo, Role, add_agent
from bridge.inbox.labels import create_label
from bridge.inbox.routing_rules import RuleDraft, add_rule, list_rules
from bridge.inbox.teams import TeamDraft, create_team, list_teams
from bridge.settings import Settings
from bridge.web.app import add_inbox
from tests.web_client import PASSWORD, bearer, call_api

# The API on one backend: the teams' and rules' store functions are tested on both.
pytestmark = pytest.mark.parametrize("backend", ["sqlite"])


@dataclass
class Rest:
    client: TestClient[web.Request, web.Application]
    engine: AsyncEngine
    anna: AgentInfo
    boris: AgentInfo
    agent: dict[str, str]
    admin: dict[str, str]

    async def call(
        self, method: str, path: str, who: dict[str, str], body: object = None
    ) -> tuple[int, Any]:
        return await call_api(self.client, method, path, who, body)


@pytest.fixture
async def rest(
    engine: AsyncEngine, memory_bus: MemoryBus, settings: Settings
) -> AsyncIterator[Rest]:
    """Two agents, Anna and Boris, with a token each, and an admin's token."""
    app = web.Application()
    add_inbox(app, engine, memory_bus, settings)
    client = TestClient(TestServer(app))
    await client.start_server()
    admin = await add_agent(engine, "boss", PASSWORD, role=Role.ADMIN)
    anna = await add_agent(engine, "anna", PASSWORD)
    boris = await add_agent(engine, "boris", PASSWORD)
    yield Rest(
        client,
        engine,
        anna,
        boris,
        await bearer(engine, anna),
        await bearer(engine, admin),
    )
    await client.close()


async def test_any_agent_lists_the_teams_by_name_with_their_members(rest: Rest) -> None:
    support = await create_team(rest.engine, TeamDraft("Support", [rest.boris.id, rest.anna.id]))
    billing = await create_team(rest.engine, TeamDraft("billing"))

    assert await rest.call("GET", "/api/teams", rest.agent) == (
        200,
        {
            "teams": [
                {"id": billing.id, "name": "billing", "member_ids": []},
                {"id": support.id, "name": "Support", "member_ids": [rest.anna.id, rest.boris.id]},
            ]
        },
    )


async def test_an_admin_lists_the_teams_with_how_each_assigns(rest: Rest) -> None:
    team = await create_team(rest.engine, TeamDraft("Billing", [rest.anna.id], False, 3, 15))

    assert await rest.call("GET", "/api/admin/teams", rest.admin) == (
        200,
        {
            "teams": [
                {
                    "id": team.id,
                    "name": "Billing",
                    "member_ids": [rest.anna.id],
                    "auto_assign": False,
                    "capacity": 3,
                    "reassign_after_minutes": 15,
                    "time_zone": None,  # no business hours: open around the clock
                    "hours": None,
                    "holidays": None,
                }
            ]
        },
    )


async def test_an_admin_adds_a_team_and_what_the_body_leaves_out_takes_its_default(
    rest: Rest,
) -> None:
    status, answer = await rest.call(
        "POST", "/api/admin/teams", rest.admin, {"name": "Billing", "member_ids": [rest.anna.id]}
    )

    (team,) = await list_teams(rest.engine)
    assert (status, answer) == (
        200,
        {
            "id": team.id,
            "name": "Billing",
            "member_ids": [rest.anna.id],
            "auto_assign": True,
            "capacity": 5,
            "reassign_after_minutes": None,
            "time_zone": None,  # no business hours: open around the clock
            "hours": None,
            "holidays": None,
        },
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"name": "BILLING"}, "409 a team named “BILLING” exists already"),
        ({"name": "   "}, "409 a team's name needs 1 to 50 printable characters"),
        ({"name": "Sales", "member_ids": [999]}, "409 no agent has the id 999"),
        ({"name": "Sales", "capacity": 0}, "capacity: Input should be greater than or equal to 1"),
        ({"name": "Sales", "reassign_after_minutes": 0}, "reassign_after_minutes: Input should"),
        ({"name": "Sales", "members": []}, "members: Extra inputs are not permitted"),
    ],
)
async def test_a_team_that_makes_no_sense_is_a_bad_request_with_the_reason(
    rest: Rest, body: dict[str, object], reason: str
) -> None:
    billing = await create_team(rest.engine, TeamDraft("Billing"))

    status, answer = await rest.call("POST", "/api/admin/teams", rest.admin, body)

    expected, reason = _expected(reason)
    assert status == expected
    assert answer["error"].startswith(reason)
    assert await list_teams(rest.engine) == [billing]


async def test_an_admin_replaces_a_team_as_a_whole(rest: Rest) -> None:
    team = await create_team(rest.engine, TeamDraft("Billing", [rest.anna.id], False, 3, 15))

    status, answer = await rest.call(
        "PUT",
        f"/api/admin/teams/{team.id}",
        rest.admin,
        {"name": "Payments", "member_ids": [rest.boris.id], "capacity": 8},
    )

    assert (status, answer) == (
        200,
        {
            "id": team.id,
            "name": "Payments",
            "member_ids": [rest.boris.id],
            "auto_assign": True,
            "capacity": 8,
            "reassign_after_minutes": None,
            "time_zone": None,  # no business hours: open around the clock
            "hours": None,
            "holidays": None,
        },
    )


async def test_renaming_a_team_to_a_name_taken_is_refused(rest: Rest) -> None:
    await create_team(rest.engine, TeamDraft("Billing"))
    sales = await create_team(rest.engine, TeamDraft("Sales"))

    status, answer = await rest.call(
        "PUT", f"/api/admin/teams/{sales.id}", rest.admin, {"name": "billing"}
    )

    assert (status, answer) == (409, {"error": "a team named “billing” exists already"})


async def test_an_admin_deletes_a_team_and_its_rules_go_with_it(rest: Rest) -> None:
    team = await create_team(rest.engine, TeamDraft("Billing"))
    await add_rule(rest.engine, RuleDraft(network=Network.VK, team_id=team.id))

    status, answer = await rest.call("DELETE", f"/api/admin/teams/{team.id}", rest.admin)

    assert (status, answer) == (200, {"ok": True})
    assert await list_teams(rest.engine) == []
    assert await list_rules(rest.engine) == []


async def test_changing_or_deleting_a_team_that_does_not_exist_is_not_found(rest: Rest) -> None:
    changed = await rest.call("PUT", "/api/admin/teams/999", rest.admin, {"name": "x"})
    deleted = await rest.call("DELETE", "/api/admin/teams/999", rest.admin)

    assert (changed, deleted) == (
        (404, {"error": "no such team"}),
        (404, {"error": "no such team"}),
    )


async def test_an_agent_is_refused_on_the_admins_team_and_rule_endpoints(rest: Rest) -> None:
    team = await create_team(rest.engine, TeamDraft("Billing"))
    rule = await add_rule(rest.engine, RuleDraft(team_id=team.id))
    calls: list[tuple[str, str, object]] = [
        ("GET", "/api/admin/teams", None),
        ("POST", "/api/admin/teams", {"name": "Sales"}),
        ("PUT", f"/api/admin/teams/{team.id}", {"name": "Sales"}),
        ("DELETE", f"/api/admin/teams/{team.id}", None),
        ("GET", "/api/admin/routing-rules", None),
        ("POST", "/api/admin/routing-rules", {"team_id": team.id}),
        ("DELETE", f"/api/admin/routing-rules/{rule.id}", None),
        ("POST", f"/api/admin/routing-rules/{rule.id}/move", {"earlier": True}),
    ]

    statuses = [
        (await rest.call(method, path, rest.agent, body))[0] for method, path, body in calls
    ]

    assert statuses == [403] * len(calls)
    assert await list_teams(rest.engine) == [team]
    assert await list_rules(rest.engine) == [rule]


async def test_an_admin_adds_rules_and_lists_them_in_the_order_they_are_tried(
    rest: Rest,
) -> None:
    team = await create_team(rest.engine, TeamDraft("Billing"))
    vip = await create_label(rest.engine, "VIP", "#ffeb3b")

    _, first = await rest.call(
        "POST",
        "/api/admin/routing-rules",
        rest.admin,
        {"network": "vk", "language": "RU", "team_id": team.id},
    )
    _, second = await rest.call(
        "POST",
        "/api/admin/routing-rules",
        rest.admin,
        {"tag": "refund", "reason": "asked_for_human", "team_id": team.id, "label_id": vip.id},
    )
    status, answer = await rest.call("GET", "/api/admin/routing-rules", rest.admin)

    assert status == 200
    assert answer == {"rules": [first, second]}
    assert first == {
        "id": first["id"],
        "position": 1,
        "network": "vk",
        "language": "ru",
        "tag": None,
        "reason": None,
        "team_id": team.id,
        "label_id": None,
        "words": [],
        "urgent": False,
    }
    assert (second["position"], second["tag"], second["reason"], second["label_id"]) == (
        2,
        "refund",
        HandoffReason.ASKED_FOR_HUMAN.value,
        vip.id,
    )


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"network": "vk"}, "409 a rule gives a team, a label or both"),
        ({"team_id": 999}, "409 no team has the id 999"),
        ({"label_id": 999}, "409 no label has the id 999"),
        ({"network": "icq", "team_id": 1}, "network: Input should be"),
        ({"language": "russian", "team_id": 1}, "language: String should match pattern"),
        ({"reason": "bored", "team_id": 1}, "reason: Input should be"),
        ({"team_id": 0}, "team_id: Input should be greater than or equal to 1"),
        ({"urgent": True}, "409 only a rule with words marks comments urgent"),
        ({"words": ["!!!"], "urgent": True}, "409 '!!!' has no letter or digit to look for"),
        ({"words": ["x" * 65], "team_id": 1}, "words.0: String should have at most 64"),
    ],
)
async def test_a_rule_that_makes_no_sense_is_a_bad_request_with_the_reason(
    rest: Rest, body: dict[str, object], reason: str
) -> None:
    await create_team(rest.engine, TeamDraft("Billing"))  # its id is 1

    status, answer = await rest.call("POST", "/api/admin/routing-rules", rest.admin, body)

    expected, reason = _expected(reason)
    assert status == expected
    assert answer["error"].startswith(reason)
    assert await list_rules(rest.engine) == []


async def test_an_admin_adds_a_listening_rule_with_its_words_and_urgency(rest: Rest) -> None:
    team = await create_team(rest.engine, TeamDraft("Escalations"))

    status, rule = await rest.call(
        "POST",
        "/api/admin/routing-rules",
        rest.admin,
        {"words": [" не  работает ", "верните деньги"], "urgent": True, "team_id": team.id},
    )

    assert status == 200
    assert (rule["words"], rule["urgent"], rule["team_id"]) == (
        ["не работает", "верните деньги"],
        True,
        team.id,
    )


async def test_moving_a_rule_earlier_swaps_it_with_the_one_before(rest: Rest) -> None:
    team = await create_team(rest.engine, TeamDraft("Billing"))
    first, second, third = [
        await add_rule(rest.engine, RuleDraft(network=network, team_id=team.id))
        for network in (Network.TELEGRAM, Network.VK, Network.FACEBOOK)
    ]

    status, answer = await rest.call(
        "POST", f"/api/admin/routing-rules/{third.id}/move", rest.admin, {"earlier": True}
    )
    _, later = await rest.call(
        "POST", f"/api/admin/routing-rules/{first.id}/move", rest.admin, {"earlier": False}
    )

    assert status == 200
    assert [rule["id"] for rule in answer["rules"]] == [first.id, third.id, second.id]
    assert [rule["position"] for rule in answer["rules"]] == [1, 2, 3]
    assert [rule["id"] for rule in later["rules"]] == [third.id, first.id, second.id]


async def test_moving_the_first_rule_earlier_changes_nothing(rest: Rest) -> None:
    team = await create_team(rest.engine, TeamDraft("Billing"))
    first = await add_rule(rest.engine, RuleDraft(network=Network.VK, team_id=team.id))
    second = await add_rule(rest.engine, RuleDraft(network=Network.TELEGRAM, team_id=team.id))

    status, answer = await rest.call(
        "POST", f"/api/admin/routing-rules/{first.id}/move", rest.admin, {"earlier": True}
    )

    assert status == 200
    assert [rule["id"] for rule in answer["rules"]] == [first.id, second.id]


async def test_a_move_without_its_direction_is_a_bad_request(rest: Rest) -> None:
    team = await create_team(rest.engine, TeamDraft("Billing"))
    rule = await add_rule(rest.engine, RuleDraft(team_id=team.id))

    status, answer = await rest.call(
        "POST", f"/api/admin/routing-rules/{rule.id}/move", rest.admin, {}
    )

    assert (status, answer) == (400, {"error": "earlier: Field required"})


async def test_an_admin_deletes_a_rule(rest: Rest) -> None:
    team = await create_team(rest.engine, TeamDraft("Billing"))
    rule = await add_rule(rest.engine, RuleDraft(team_id=team.id))

    status, answer = await rest.call("DELETE", f"/api/admin/routing-rules/{rule.id}", rest.admin)

    assert (status, answer) == (200, {"ok": True})
    assert await list_rules(rest.engine) == []


async def test_moving_or_deleting_a_rule_that_does_not_exist_is_not_found(rest: Rest) -> None:
    moved = await rest.call(
        "POST", "/api/admin/routing-rules/999/move", rest.admin, {"earlier": True}
    )
    deleted = await rest.call("DELETE", "/api/admin/routing-rules/999", rest.admin)

    assert moved == deleted == (404, {"error": "no such rule"})


async def test_a_team_keeps_the_business_hours_it_is_given(rest: Rest) -> None:
    hours = {"0": [["09:00", "18:00"]], "6": [["10:00", "14:00"]]}
    body = {"name": "Day", "time_zone": "Asia/Yekaterinburg", "hours": hours}
    status, made = await rest.call(
        "POST", "/api/admin/teams", rest.admin, body | {"holidays": ["2027-01-01"]}
    )
    assert status == 200, made
    assert (made["time_zone"], made["hours"], made["holidays"]) == (
        "Asia/Yekaterinburg",
        hours,
        ["2027-01-01"],
    )


async def test_a_time_zone_that_does_not_exist_is_refused_with_the_reason(rest: Rest) -> None:
    status, body = await rest.call(
        "POST", "/api/admin/teams", rest.admin, {"name": "Mars", "time_zone": "Mars/Olympus"}
    )
    assert status == 409
    assert "time zone" in str(body)


def _expected(reason: str) -> tuple[int, str]:
    """ "409 <reason>": refused by the team's or the rule's own rules (as a label's is); a reason
    alone: a body the document refuses (400). The answer's reason starts with it."""
    return (409, reason[4:]) if reason.startswith("409 ") else (400, reason)
