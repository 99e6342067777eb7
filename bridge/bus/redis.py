"""The Redis Streams bus of the distributed mode.

Inbound: one stream per shard, consumer group `core`. A shard is worked by one consumer at a time,
held by a lease it renews, so a conversation's messages are handled in order however many core
processes run. Consumers share the shards fairly (each aims at ceil(shards / live consumers)).
A new owner first finishes what the shard's previous owner took but never acknowledged
(XAUTOCLAIM after `claim_idle_ms`) and reads nothing new before that, which keeps the order.
Outbound: one stream per network, consumer group `senders`. Events: one pub/sub channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from bridge.bus.base import BatchHandler, Bus, BusEntry
from bridge.domain import Event, Network

log = logging.getLogger(__name__)

INBOUND_GROUP = "core"
OUTBOUND_GROUP = "senders"
BLOCK_MS = 500
RETRY_DELAY_S = 0.5

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

Fields = dict[bytes, bytes]


class RedisBus(Bus):
    def __init__(
        self,
        url: str,
        shards: int,
        *,
        lease_ms: int = 10_000,
        claim_idle_ms: int = 15_000,
        prefix: str = "sb",
    ) -> None:
        super().__init__(shards)
        self.client: aioredis.Redis = aioredis.Redis.from_url(url, health_check_interval=30)
        self.lease_ms = lease_ms
        self.claim_idle_ms = claim_idle_ms
        self.prefix = prefix
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)
        self._groups_ready: set[str] = set()

    def inbound_stream(self, shard: int) -> str:
        return f"{self.prefix}:in:{shard}"

    def outbound_stream(self, network: Network) -> str:
        return f"{self.prefix}:out:{network.value}"

    @property
    def events_channel(self) -> str:
        return f"{self.prefix}:events"

    async def close(self) -> None:
        await self.client.aclose()

    async def publish_inbound_raw(self, payloads_by_shard: dict[int, list[bytes]]) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for shard, payloads in payloads_by_shard.items():
                for payload in payloads:
                    pipe.xadd(self.inbound_stream(shard), {"p": payload})
            await pipe.execute()

    async def publish_outbound_raw(self, payloads_by_network: dict[Network, list[bytes]]) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            for network, payloads in payloads_by_network.items():
                for payload in payloads:
                    pipe.xadd(self.outbound_stream(network), {"p": payload})
            await pipe.execute()

    async def publish_events(self, events: Sequence[Event]) -> None:
        if events:
            payload = orjson.dumps([event.model_dump(mode="json") for event in events])
            await self.client.publish(self.events_channel, payload)

    @contextlib.asynccontextmanager
    async def subscribe_events(self) -> AsyncIterator[AsyncIterator[Event]]:
        pubsub = self.client.pubsub()
        await pubsub.subscribe(self.events_channel)

        async def events() -> AsyncIterator[Event]:
            async for message in pubsub.listen():
                if message["type"] == "message":
                    for item in orjson.loads(message["data"]):
                        yield Event.model_validate(item)

        try:
            yield events()
        finally:
            await pubsub.unsubscribe(self.events_channel)
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def inbound_backlog(self) -> int:
        total = 0
        for shard in range(self.shards):
            total += await self._group_backlog(self.inbound_stream(shard), INBOUND_GROUP)
        return total

    async def _group_backlog(self, stream: str, group: str) -> int:
        try:
            groups: list[dict[str, Any]] = await self.client.xinfo_groups(stream)
        except ResponseError:
            return 0  # no stream yet: nothing published
        for info in groups:
            if _text(info["name"]) == group:
                return int(info.get("lag") or 0) + int(info["pending"])
        return int(await self.client.xlen(stream))

    async def _ensure_group(self, stream: str, group: str) -> None:
        if f"{stream}|{group}" in self._groups_ready:
            return
        try:
            await self.client.xgroup_create(stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups_ready.add(f"{stream}|{group}")

    # -- consuming -------------------------------------------------------------------------

    async def consume_inbound(
        self, consumer: str, handler: BatchHandler, *, batch_size: int, stop: asyncio.Event
    ) -> None:
        await ShardConsumer(self, consumer, handler, batch_size, stop).run()

    async def consume_outbound(
        self,
        network: Network,
        consumer: str,
        handler: BatchHandler,
        *,
        batch_size: int,
        stop: asyncio.Event,
    ) -> None:
        stream = StreamReader(
            self, self.outbound_stream(network), OUTBOUND_GROUP, consumer, in_order=False
        )
        while not stop.is_set():
            await stream.step(handler, batch_size)

    async def acquire_lease(self, shard: int, consumer: str) -> bool:
        key = f"{self.prefix}:lease:{shard}"
        return bool(await self.client.set(key, consumer, nx=True, px=self.lease_ms))

    async def renew_lease(self, shard: int, consumer: str) -> bool:
        key = f"{self.prefix}:lease:{shard}"
        return bool(await self._renew(keys=[key], args=[consumer, self.lease_ms]))

    async def release_lease(self, shard: int, consumer: str) -> None:
        await self._release(keys=[f"{self.prefix}:lease:{shard}"], args=[consumer])

    async def live_consumers(self, consumer: str) -> int:
        key = f"{self.prefix}:consumers"
        now = time.time()
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {consumer: now})
            pipe.zremrangebyscore(key, "-inf", now - self.lease_ms / 1000)
            pipe.zcard(key)
            _, _, live = await pipe.execute()
        return max(1, int(live))

    async def leave(self, consumer: str) -> None:
        await self.client.zrem(f"{self.prefix}:consumers", consumer)


class StreamReader:
    """One consumer's view of one stream in a group: own pending first, then reclaimed, then new.

    With `in_order` (the stream has one consumer at a time), new entries are read only when no
    other consumer holds pending ones, so entries are handled in stream order even when a
    previous consumer died holding some."""

    def __init__(
        self, bus: RedisBus, stream: str, group: str, consumer: str, *, in_order: bool = True
    ) -> None:
        self.bus = bus
        self.client = bus.client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.in_order = in_order
        self.ready = False

    async def step(self, handler: BatchHandler, batch_size: int) -> bool:
        """Handle at most one batch; False when there was nothing to do. Never raises."""
        try:
            if not self.ready:
                await self.bus._ensure_group(self.stream, self.group)
                self.ready = True
            entries = await self._next_batch(batch_size)
            if not entries:
                return False
            await handler(entries)
            async with self.client.pipeline(transaction=True) as pipe:
                ids = [entry.entry_id for entry in entries]
                pipe.xack(self.stream, self.group, *ids)
                pipe.xdel(self.stream, *ids)
                await pipe.execute()
            return True
        except (RedisError, OSError) as exc:
            self.ready = False
            log.warning("stream %s: %s; retrying", self.stream, exc)
        except Exception:
            log.exception("stream %s: batch failed; it will be delivered again", self.stream)
        await asyncio.sleep(RETRY_DELAY_S)
        return False

    async def _next_batch(self, batch_size: int) -> list[BusEntry]:
        own = await self._read("0", batch_size, block=None)
        if own:
            return own
        if await self._others_pending():
            claimed = await self._claim(batch_size)
            if claimed or self.in_order:
                if not claimed:
                    await asyncio.sleep(min(1.0, self.bus.claim_idle_ms / 4000))
                return claimed
        return await self._read(">", batch_size, block=BLOCK_MS)

    async def _claim(self, batch_size: int) -> list[BusEntry]:
        """Entries another consumer took and left idle for `claim_idle_ms` (it died)."""
        _, claimed, _ = await self.client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.bus.claim_idle_ms,
            start_id="0-0",
            count=batch_size,
        )
        return _entries(claimed)

    async def _others_pending(self) -> bool:
        summary = await self.client.xpending(self.stream, self.group)
        if not summary["pending"]:
            return False
        for consumer in summary.get("consumers") or []:
            if _text(consumer["name"]) != self.consumer and int(consumer["pending"]):
                return True
        return False

    async def _read(self, start: str, count: int, block: int | None) -> list[BusEntry]:
        response: Any = await self.client.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block
        )
        if not response:
            return []
        return _entries(response[0][1])


class ShardConsumer:
    """Holds a fair share of the inbound shards and works each owned shard in its own task."""

    def __init__(
        self,
        bus: RedisBus,
        consumer: str,
        handler: BatchHandler,
        batch_size: int,
        stop: asyncio.Event,
    ) -> None:
        self.bus = bus
        self.consumer = consumer
        self.handler = handler
        self.batch_size = batch_size
        self.stop = stop
        self.owned: dict[int, asyncio.Task[None]] = {}
        self.surplus: set[int] = set()

    async def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    await self._balance()
                except (RedisError, OSError) as exc:
                    log.warning("shard leases: %s; retrying", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), self.bus.lease_ms / 3000)
        finally:
            self.stop.set()
            await asyncio.gather(*self.owned.values(), return_exceptions=True)
            with contextlib.suppress(RedisError, OSError):
                for shard in list(self.owned):
                    await self.bus.release_lease(shard, self.consumer)
                await self.bus.leave(self.consumer)

    async def _balance(self) -> None:
        for shard, task in list(self.owned.items()):
            if task.done():
                del self.owned[shard]
                self.surplus.discard(shard)
                await self.bus.release_lease(shard, self.consumer)
            elif not await self.bus.renew_lease(shard, self.consumer):
                log.warning("lost the lease of shard %d", shard)
                self.surplus.add(shard)  # its task stops after the batch in hand
        target = math.ceil(self.bus.shards / await self.bus.live_consumers(self.consumer))
        active = [s for s in self.owned if s not in self.surplus]
        for shard in active[target:]:
            self.surplus.add(shard)
        if len(active) >= target:
            return
        for offset in range(self.bus.shards):
            if len(self.owned) - len(self.surplus) >= target:
                break
            shard = (hash(self.consumer) + offset) % self.bus.shards
            if shard not in self.owned and await self.bus.acquire_lease(shard, self.consumer):
                self.owned[shard] = asyncio.create_task(self._work(shard))

    async def _work(self, shard: int) -> None:
        reader = StreamReader(
            self.bus, self.bus.inbound_stream(shard), INBOUND_GROUP, self.consumer
        )
        while not self.stop.is_set() and shard not in self.surplus:
            await reader.step(self.handler, self.batch_size)


def _entries(raw: Sequence[tuple[bytes, Fields]]) -> list[BusEntry]:
    return [BusEntry(_text(entry_id), fields[b"p"]) for entry_id, fields in raw if fields]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
