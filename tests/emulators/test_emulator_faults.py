"""The fault plan shared by the network emulators: which calls it picks, reproducibly."""

from __future__ import annotations

import pytest

from emulators.faults import Fault, FaultKind, FaultPlan

LIMITED = Fault(FaultKind.RATE_LIMIT, retry_after=3)


def fired(plan: FaultPlan, method: str, calls: int) -> list[bool]:
    return [plan.next_fault(method) is not None for _ in range(calls)]


def test_rule_fires_for_the_next_n_calls_then_goes_away() -> None:
    plan = FaultPlan()
    plan.add(LIMITED, times=2)
    assert fired(plan, "sendMessage", 4) == [True, True, False, False]
    assert plan.rules == ()


def test_rule_applies_only_to_its_methods_case_insensitively() -> None:
    plan = FaultPlan()
    rule = plan.add(LIMITED, methods=["sendMessage"])
    assert plan.next_fault("getUpdates") is None
    assert plan.next_fault("SENDMESSAGE") == LIMITED
    assert rule.fired == 1


def test_every_kth_call_is_hit_deterministically() -> None:
    plan = FaultPlan()
    plan.add(LIMITED, every=2)
    assert fired(plan, "sendMessage", 6) == [False, True, False, True, False, True]


def test_share_of_calls_is_reproducible_with_a_seed() -> None:
    first, second = FaultPlan(seed=5), FaultPlan(seed=5)
    first.add(LIMITED, probability=0.3)
    second.add(LIMITED, probability=0.3)
    pattern = fired(first, "sendMessage", 1000)
    assert pattern == fired(second, "sendMessage", 1000)
    assert 250 < sum(pattern) < 350


def test_first_rule_that_fires_wins() -> None:
    plan = FaultPlan()
    slow = Fault(FaultKind.SLOW, delay=0.5)
    plan.add(slow, methods="getMe", times=1)
    plan.add(LIMITED)
    assert plan.next_fault("getMe") == slow
    assert plan.next_fault("getMe") == LIMITED


def test_spec_from_json_builds_the_rule() -> None:
    plan = FaultPlan()
    rule = plan.add_spec(
        {"kind": "server_error", "status": 502, "methods": "sendMessage", "times": 1}
    )
    assert rule.fault == Fault(FaultKind.SERVER_ERROR, status=502)
    assert rule.as_dict()["methods"] == ["sendmessage"]


@pytest.mark.parametrize(
    "spec",
    [
        {},
        {"kind": "flood"},
        {"kind": "server_error", "status": 404},
        {"kind": "rate_limit", "probability": 0},
        {"kind": "rate_limit", "times": 0},
        {"kind": "rate_limit", "methods": [1]},
    ],
)
def test_malformed_spec_is_rejected(spec: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultPlan().add_spec(spec)
