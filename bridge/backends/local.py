"""The embedded mode's backend: one process does everything, so the bus and the counters live in
memory, and what must outlive a restart (a poller's position, a generated secret) is a file of
the data directory."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path

from bridge.backends.base import Backend, Work
from bridge.backends.poll_position import FilePollPosition
from bridge.bus.memory import MemoryBus
from bridge.channel import Broadcast, PollPosition, Receive
from bridge.delivery.ratelimit import MemoryRateLimiter, RateLimiter
from bridge.domain import Network


class LocalBackend(Backend):
    def __init__(self, bus: MemoryBus, data_dir: Path) -> None:
        super().__init__(bus)
        self.data_dir = data_dir
        self._limiter = MemoryRateLimiter()
        self._broadcasts: dict[str, LocalBroadcast] = {}

    def rate_limiter(self) -> RateLimiter:
        return self._limiter

    def poll_position(self, network: Network) -> PollPosition:
        return FilePollPosition(self.data_dir / f"{network.value}.poll-position")

    async def lead(self, role: str, consumer: str, work: Work, stop: asyncio.Event) -> None:
        await work(stop)  # the only process: it leads

    async def shared_secret(self, name: str) -> bytes:
        return _file_secret(self.data_dir / f"{name}.secret")

    def broadcast(self, topic: str) -> Broadcast:
        return self._broadcasts.setdefault(topic, LocalBroadcast())


class LocalBroadcast:
    """Every receiver is in this process: publishing hands the payload to each at once."""

    def __init__(self) -> None:
        self._receivers: list[Receive] = []

    def subscribe(self, receive: Receive) -> None:
        self._receivers.append(receive)

    async def publish(self, payload: bytes) -> None:
        for receive in self._receivers:
            await receive(payload)

    async def run(self, stop: asyncio.Event) -> None:
        """Nothing to carry: no other process publishes."""


def _file_secret(path: Path) -> bytes:
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32).encode()
    try:
        # Readable by the owner only; O_EXCL: of two processes starting together, one writes.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_bytes().strip()
    with os.fdopen(fd, "wb") as file:
        file.write(secret)
    return secret
