"""The one interface both backends implement; every part that needs one is handed it."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Callable

from bridge.bus import Bus
from bridge.channel import Broadcast, PollPosition
from bridge.delivery.ratelimit import RateLimiter
from bridge.domain import Network

Work = Callable[[asyncio.Event], Awaitable[None]]


class Backend(abc.ABC):
    def __init__(self, bus: Bus) -> None:
        self.bus = bus

    @abc.abstractmethod
    def rate_limiter(self) -> RateLimiter:
        """Counters of the networks' rate limits, shared by every sender that uses this backend."""

    @abc.abstractmethod
    def poll_position(self, network: Network) -> PollPosition:
        """Where `network`'s poller left off, found again by the next poller."""

    @abc.abstractmethod
    async def lead(self, role: str, consumer: str, work: Work, stop: asyncio.Event) -> None:
        """Run `work` in one process of all that call this for `role` (a network allows one
        poller); the event given to `work` is set when it must end: on `stop`, or when another
        process took over."""

    @abc.abstractmethod
    async def shared_secret(self, name: str) -> bytes:
        """A secret generated on first use and the same in every process from then on."""

    @abc.abstractmethod
    def broadcast(self, topic: str) -> Broadcast:
        """`topic`'s messages to every process (see `bridge.channel.Broadcast`)."""

    async def close(self) -> None:
        await self.bus.close()
