"""The distributed mode's backend: every process of every machine shares one Redis, so the bus,
the rate limits' counters, the pollers' positions and leadership, the generated secrets and the
broadcasts are kept there, under the settings' key prefix."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time

from redis.exceptions import RedisError

from bridge.backends.base import Backend, Work
from bridge.backends.poll_position import RedisPollPosition
from bridge.bus.redis import RedisBus
from bridge.channel import Broadcast, PollPosition, Receive
from bridge.delivery.ratelimit import RateLimiter, RedisRateLimiter
from bridge.domain import Network
from bridge.util.stopping import pause

log = logging.getLogger(__name__)


class RedisBackend(Backend):
    bus: RedisBus

    def __init__(self, bus: RedisBus) -> None:
        super().__init__(bus)
        self._limiter = RedisRateLimiter(bus.client, bus.prefix)

    def rate_limiter(self) -> RateLimiter:
        return self._limiter

    def poll_position(self, network: Network) -> PollPosition:
        return RedisPollPosition(self.bus.client, self._key(f"poll-position:{network.value}"))

    async def lead(self, role: str, consumer: str, work: Work, stop: asyncio.Event) -> None:
        await self.bus.lead(role, consumer, work, stop)

    async def shared_secret(self, name: str) -> bytes:
        key = self._key(f"{name}:secret")
        # SET NX: the first process to start chooses it, the others read the same one.
        await self.bus.client.set(key, secrets.token_urlsafe(32), nx=True)
        value = await self.bus.client.get(key)
        assert isinstance(value, bytes)
        return value

    def broadcast(self, topic: str) -> Broadcast:
        return RedisBroadcast(self.bus, self._key(topic))

    def _key(self, name: str) -> str:
        return f"{self.bus.prefix}:{name}"


class RedisBroadcast:
    """Published once, received by every process that runs it (`run`). Pub/sub keeps nothing:
    what is published while a process reconnects to Redis does not reach that process."""

    def __init__(self, bus: RedisBus, channel: str) -> None:
        self.client = bus.client
        self.channel = channel
        self._receivers: list[Receive] = []

    def subscribe(self, receive: Receive) -> None:
        self._receivers.append(receive)

    async def publish(self, payload: bytes) -> None:
        await self.client.publish(self.channel, payload)

    async def run(self, stop: asyncio.Event) -> None:
        delay = 0.5
        while not stop.is_set():
            started = time.monotonic()
            listening = asyncio.ensure_future(self._listen())
            stopping = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({listening, stopping}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopping.cancel()
            if not listening.done():
                listening.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listening
                return
            try:
                listening.result()
            except (RedisError, OSError) as exc:
                if time.monotonic() - started > 60:
                    delay = 0.5  # it had been working: a new outage starts from a short wait
                log.warning("%s: %s; resubscribing in %.1f s", self.channel, exc, delay)
                await pause(stop, delay)
                delay = min(delay * 2, 10.0)

    async def _listen(self) -> None:
        pubsub = self.client.pubsub()
        # aclosing, not a direct aclose() call: older redis stubs leave aclose untyped.
        async with contextlib.aclosing(pubsub):
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message["type"] == "message":
                        for receive in self._receivers:
                            await receive(message["data"])
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.unsubscribe(self.channel)
