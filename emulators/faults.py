"""Fault injection for the network emulators: which calls fail, and how.

A `FaultPlan` holds rules. Each rule names a fault (answer 429 with a retry delay, answer a 5xx,
answer slowly, or drop the connection), the methods it applies to (or all), and when it fires:
for the next N matching calls, on every k-th matching call, and/or on a share p of them. A
seeded random generator makes "a share p" reproducible in tests. The plan only decides; an
emulator plays the fault around its call with `fault_before_call` and `fault_after_call`, giving
its network's own error for a rate limit or a server error (Telegram answers HTTP 429, VK answers
HTTP 200 with error 6, ...). `fault_routes` exposes the plan over HTTP so a separate process (a
benchmark, the sandbox) can steer it.

`NextErrors` holds what a test asks for by the network's own error code (`fail_next`): that
error, for the next calls.
"""

from __future__ import annotations

import asyncio
import enum
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiohttp import web


class FaultKind(enum.Enum):
    RATE_LIMIT = "rate_limit"
    SERVER_ERROR = "server_error"
    SLOW = "slow"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    retry_after: int = 1
    """RATE_LIMIT: the seconds the client is told to wait."""
    status: int = 500
    """SERVER_ERROR: the HTTP status (5xx)."""
    delay: float = 0.0
    """SLOW: seconds to wait before handling the call normally."""
    after_processing: bool = False
    """DROP: the call takes effect and only its answer is lost (the case that causes duplicates)."""

    def __post_init__(self) -> None:
        if self.retry_after < 1:
            raise ValueError("retry_after must be at least 1 second")
        if not 500 <= self.status <= 599:
            raise ValueError("a server error status must be 5xx")
        if self.delay < 0:
            raise ValueError("delay must not be negative")


@dataclass(slots=True)
class FaultRule:
    fault: Fault
    methods: frozenset[str] | None
    """Case-folded method names, or None for every method."""
    remaining: int | None
    """How many more times it fires; None = no limit."""
    probability: float
    every: int
    seen: int = 0
    fired: int = 0

    def applies_to(self, method: str) -> bool:
        return self.methods is None or method.casefold() in self.methods

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.fault.kind.value,
            "retry_after": self.fault.retry_after,
            "status": self.fault.status,
            "delay": self.fault.delay,
            "after_processing": self.fault.after_processing,
            "methods": sorted(self.methods) if self.methods is not None else None,
            "remaining": self.remaining,
            "probability": self.probability,
            "every": self.every,
            "seen": self.seen,
            "fired": self.fired,
        }


class FaultPlan:
    """Rules are tried in the order they were added; the first that fires answers the call."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(seed)
        self._rules: list[FaultRule] = []

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return tuple(self._rules)

    def add(
        self,
        fault: Fault,
        *,
        methods: str | Iterable[str] | None = None,
        times: int | None = None,
        probability: float = 1.0,
        every: int = 1,
    ) -> FaultRule:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for no limit)")
        if not 0.0 < probability <= 1.0:
            raise ValueError("probability must be in (0, 1]")
        if every < 1:
            raise ValueError("every must be at least 1")
        names = [methods] if isinstance(methods, str) else methods
        rule = FaultRule(
            fault=fault,
            methods=frozenset(name.casefold() for name in names) if names is not None else None,
            remaining=times,
            probability=probability,
            every=every,
        )
        self._rules.append(rule)
        return rule

    def add_spec(self, spec: Mapping[str, Any]) -> FaultRule:
        """A rule from its JSON form (the HTTP endpoint's body); ValueError when malformed."""
        try:
            kind = FaultKind(spec["kind"])
            fault = Fault(
                kind=kind,
                retry_after=int(spec.get("retry_after", 1)),
                status=int(spec.get("status", 500)),
                delay=float(spec.get("delay", 0.0)),
                after_processing=bool(spec.get("after_processing", False)),
            )
            methods = spec.get("methods")
            if not (
                methods is None
                or isinstance(methods, str)
                or (isinstance(methods, list) and all(isinstance(m, str) for m in methods))
            ):
                raise ValueError("methods must be a name, a list of names or null")
            times = spec.get("times")
            return self.add(
                fault,
                methods=methods,
                times=int(times) if times is not None else None,
                probability=float(spec.get("probability", 1.0)),
                every=int(spec.get("every", 1)),
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed fault spec: {exc}") from exc

    def clear(self) -> None:
        self._rules.clear()

    def next_fault(self, method: str) -> Fault | None:
        """Called once per incoming call: the fault to inject into it, if any."""
        for rule in self._rules:
            if not rule.applies_to(method):
                continue
            rule.seen += 1
            if rule.seen % rule.every:
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            rule.fired += 1
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._rules.remove(rule)
            return rule.fault
        return None


async def fault_before_call(
    fault: Fault | None, request: web.Request, refusal: Callable[[Fault], Exception]
) -> web.StreamResponse | None:
    """Play `fault` before the call runs: raise the network's own error for it (`refusal` renders
    RATE_LIMIT and SERVER_ERROR), wait (SLOW), or drop the connection (DROP: answer with what this
    returns). None when the call then goes on."""
    if fault is None:
        return None
    if fault.kind in (FaultKind.RATE_LIMIT, FaultKind.SERVER_ERROR):
        raise refusal(fault)
    if fault.kind is FaultKind.SLOW:
        await asyncio.sleep(fault.delay)
        return None
    return None if fault.after_processing else drop_connection(request)


def fault_after_call(
    fault: Fault | None, request: web.Request, answer: web.StreamResponse
) -> web.StreamResponse:
    """The call's `answer`, or a dropped connection when `fault` loses the answer of a call that
    took effect (the case that causes duplicates)."""
    if fault is not None and fault.kind is FaultKind.DROP:
        return drop_connection(request)
    return answer


def drop_connection(request: web.Request) -> web.Response:
    """Close the connection without an answer; the client sees a disconnect, not an HTTP error."""
    if request.transport is not None:
        request.transport.close()
    # aiohttp gives up writing this to the closed transport (ConnectionError, caught by aiohttp).
    return web.Response()


def fault_routes(plan: FaultPlan, path: str) -> list[web.RouteDef]:
    """GET lists the rules, POST adds one from its JSON spec, DELETE removes them all."""

    async def list_rules(_request: web.Request) -> web.Response:
        return web.json_response([rule.as_dict() for rule in plan.rules])

    async def add_rule(request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            if not isinstance(spec, dict):
                raise ValueError("the body must be a JSON object")
            rule = plan.add_spec(spec)
        except ValueError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(rule.as_dict(), status=201)

    async def clear_rules(_request: web.Request) -> web.Response:
        plan.clear()
        return web.json_response([])

    return [web.get(path, list_rules), web.post(path, add_rule), web.delete(path, clear_rules)]


E = TypeVar("E", bound=Exception)


@dataclass(slots=True)
class _NextError(Generic[E]):
    error: E
    methods: frozenset[str] | None
    remaining: int


class NextErrors(Generic[E]):
    """Errors a test asked for: each answers the next `times` calls of its `methods` (None: of
    any method), in the order they were asked for."""

    def __init__(self) -> None:
        self._queue: list[_NextError[E]] = []

    def add(self, error: E, *, methods: Iterable[str] | None = None, times: int = 1) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        names = frozenset(methods) if methods is not None else None
        self._queue.append(_NextError(error, names, times))

    def take(self, method: str) -> E | None:
        """The error to answer this call of `method` with, if one waits for it."""
        for queued in self._queue:
            if queued.methods is None or method in queued.methods:
                queued.remaining -= 1
                if queued.remaining == 0:
                    self._queue.remove(queued)
                return queued.error
        return None
