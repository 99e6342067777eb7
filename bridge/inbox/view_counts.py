"""How many conversations each view of the inbox holds, counted from one scan grouped by what the
views ask of a conversation, and shared by the agents whose pages ask at the same moment.

Under a flood of messages every open list refreshes at once (they hear the same events), and the
count is the list's dearest part (a scan of every conversation the filters leave), so a web
process counts once for all of them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass

from bridge.domain import ConversationState, Network

# Younger than the 250 ms a live page waits after an event before it fetches itself (inbox.js),
# so the page refreshed for a change joins only a count begun after that change was committed.
MAX_AGE_S = 0.2


@dataclass(frozen=True, slots=True)
class Group:
    """How many conversations have one state, assignee, network and language."""

    state: ConversationState
    assignee_id: int | None
    network: Network
    language: str | None
    n: int


Count = Callable[[], Awaitable[list[Group]]]


@dataclass
class _Counting:
    began: float  # the count holds what was committed before then
    groups: asyncio.Future[list[Group]]


class SharedCounts:
    """A page asking for the counts of filters already being counted joins that count, if it
    began within `max_age_s`; otherwise it counts. A finished count is never served again: what a
    client wrote (or heard of) before asking is always in the counts it gets."""

    def __init__(self, max_age_s: float = MAX_AGE_S) -> None:
        self.max_age_s = max_age_s
        self._counting: dict[Hashable, _Counting] = {}

    async def groups(self, filters: Hashable, count: Count) -> list[Group]:
        now = time.monotonic()
        counting = self._counting.get(filters)
        if counting is None or counting.began < now - self.max_age_s:
            counting = _Counting(now, asyncio.ensure_future(count()))
            self._counting[filters] = counting
            counting.groups.add_done_callback(lambda _: self._finished(filters, counting))
        # shielded: one page closing does not cancel the count the others wait for
        return await asyncio.shield(counting.groups)

    def _finished(self, filters: Hashable, counting: _Counting) -> None:
        if self._counting.get(filters) is counting:
            del self._counting[filters]
