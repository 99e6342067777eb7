"""`RedisBus`: publishing, the shards' leases and who is live, leadership, the backlog; the
consuming itself is a `ShardOwner` per family of streams."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

import orjson
import pydantic
import redis.asyncio as aioredis
from redis.asyncio.client import Pipeline
from redis.exceptions import RedisError, ResponseError

from bridge.bus.base import BatchHandler, Bus, encode_events
from bridge.bus.redis.acks import Acks
from bridge.bus.redis.shard_owner import ShardOwner
from bridge.bus.redis.streams import INBOUND, PAYLOAD_FIELD, Family, text
from bridge.bus.redis.streams import outbound as outbound_family
from bridge.domain import Event, Network, OutboundMessage
from bridge.util.stopping import pause

log = logging.getLogger(__name__)

SOCKET_TIMEOUT_S = 5.0
# A sender's batch rate-limits all its chats at once; past this many commands in flight the
# rest wait for a connection instead of failing the batch (redis-py's plain pool raises).
MAX_CONNECTIONS = 100

# KEYS[1]: a stream; ARGV: the payload's field name, then the payloads, appended in order. One
# command a stream, however many entries: the client packs and parses one command, not one an
# entry. No MAXLEN: trimming would drop entries nobody has acknowledged yet.
_APPEND = """
for i = 2, #ARGV do
  redis.call('XADD', KEYS[1], '*', ARGV[1], ARGV[i])
end
return #ARGV - 1
"""
# KEYS: the leases to renew; ARGV: holder, lease ms. Returns 1/0 per key: still ours or lost.
_RENEW = """
local renewed = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    renewed[i] = redis.call('PEXPIRE', key, ARGV[2])
  else
    renewed[i] = 0
  end
end
return renewed
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
# Server time, so that consumers on hosts with skewed clocks still agree on who is live.
_HEARTBEAT = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[1], now_ms, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
return redis.call('ZCARD', KEYS[1])
"""


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
        # RESP2: the reply shapes parsed below. The socket timeout outlasts every BLOCK, so
        # only a dead connection trips it.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=SOCKET_TIMEOUT_S,
            protocol=2,
            socket_timeout=SOCKET_TIMEOUT_S,
            health_check_interval=30,
        )
        self.client: aioredis.Redis = aioredis.Redis.from_pool(pool)
        self.lease_ms = lease_ms
        self.claim_idle_ms = claim_idle_ms
        self.prefix = prefix
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)
        self._heartbeat = self.client.register_script(_HEARTBEAT)
        self.acks = Acks(self.client)

    def stream(self, family: Family, shard: int) -> str:
        return f"{self.prefix}:{family.name}:{shard}"

    def inbound_stream(self, shard: int) -> str:
        return self.stream(INBOUND, shard)

    def lease_key(self, family: Family, shard: int) -> str:
        return f"{self.prefix}:lease:{family.name}:{shard}"

    def consumers_key(self, family: Family) -> str:
        return f"{self.prefix}:consumers:{family.name}"

    @property
    def events_channel(self) -> str:
        return f"{self.prefix}:events"

    async def close(self) -> None:
        await self.client.aclose()

    # -- publishing ------------------------------------------------------------------------

    async def publish_inbound_raw(self, payloads_by_shard: dict[int, list[bytes]]) -> None:
        await self._append(
            (self.inbound_stream(shard), payloads) for shard, payloads in payloads_by_shard.items()
        )

    async def publish_outbound_raw(
        self, payloads_by_shard: dict[tuple[Network, int], list[bytes]]
    ) -> None:
        await self._append(
            (self.stream(outbound_family(network), shard), payloads)
            for (network, shard), payloads in payloads_by_shard.items()
        )

    async def _append(self, batches: Iterable[tuple[str, list[bytes]]]) -> None:
        async with self.client.pipeline(transaction=False) as pipe:
            self._queue_appends(pipe, batches)
            await pipe.execute()

    @staticmethod
    def _queue_appends(pipe: Pipeline, batches: Iterable[tuple[str, list[bytes]]]) -> None:
        # EVAL, not EVALSHA: a pipeline would ask whether the script is loaded every time.
        for stream, payloads in batches:
            if payloads:
                pipe.eval(_APPEND, 1, stream, PAYLOAD_FIELD, *payloads)

    async def publish_events(self, events: Sequence[Event]) -> None:
        if events:
            await self.client.publish(self.events_channel, encode_events(events))

    async def publish(self, outbound: Sequence[OutboundMessage], events: Sequence[Event]) -> None:
        if not outbound and not events:
            return
        async with self.client.pipeline(transaction=False) as pipe:
            self._queue_appends(
                pipe,
                (
                    (self.stream(outbound_family(network), shard), payloads)
                    for (network, shard), payloads in self.outbound_by_shard(outbound).items()
                ),
            )
            if events:
                pipe.publish(self.events_channel, encode_events(events))
            await pipe.execute()

    async def ack(self, stream: str, group: str, ids: list[str]) -> None:
        await self.acks.ack(stream, group, ids)

    @contextlib.asynccontextmanager
    async def subscribe_events(self) -> AsyncIterator[AsyncIterator[Event]]:
        pubsub = self.client.pubsub()
        await pubsub.subscribe(self.events_channel)
        # Wait for the confirmation, so that an event published after entering is not missed.
        await pubsub.get_message(timeout=None)

        async def events() -> AsyncIterator[Event]:
            async for message in pubsub.listen():
                if message["type"] != "message":
                    continue
                try:
                    batch = [Event.model_validate(item) for item in orjson.loads(message["data"])]
                except (orjson.JSONDecodeError, pydantic.ValidationError, TypeError) as exc:
                    log.warning("events: skipped a malformed message: %s", exc)
                    continue
                for event in batch:
                    yield event

        # aclosing, not a direct aclose() call: older redis stubs leave aclose untyped.
        async with contextlib.aclosing(pubsub):
            try:
                yield events()
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.unsubscribe(self.events_channel)

    # -- backlog ---------------------------------------------------------------------------

    async def shard_ages(self) -> list[float]:
        # Acknowledged entries are deleted, so a stream's first entry is its oldest to be done;
        # its id is the Redis time it was appended at, in ms.
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.time()
            for shard in range(self.shards):
                pipe.xrange(self.inbound_stream(shard), count=1)
            now, *firsts = await pipe.execute()
        now_ms = int(now[0]) * 1000 + int(now[1]) // 1000
        return [
            max(0.0, (now_ms - int(text(first[0][0]).split("-")[0])) / 1000) if first else 0.0
            for first in firsts
        ]

    async def inbound_backlog(self) -> int:
        streams = [self.inbound_stream(shard) for shard in range(self.shards)]
        async with self.client.pipeline(transaction=False) as pipe:
            for stream in streams:
                pipe.xinfo_groups(stream)
            infos: list[Any] = await pipe.execute(raise_on_error=False)
        total = 0
        uncounted: list[str] = []
        for stream, groups in zip(streams, infos, strict=True):
            if isinstance(groups, ResponseError):
                continue  # no such stream: nothing was ever published to the shard
            group = next((g for g in groups if text(g["name"]) == INBOUND.group), None)
            if group is None or group.get("lag") is None:
                # No group yet, or Redis cannot tell the lag: acked entries are deleted, so
                # the stream's length is what is left.
                uncounted.append(stream)
            else:
                total += int(group["lag"]) + int(group["pending"])
        for stream in uncounted:
            total += int(await self.client.xlen(stream))
        return total

    # -- consuming -------------------------------------------------------------------------

    async def consume_inbound(
        self, consumer: str, handler: BatchHandler, *, batch_size: int, stop: asyncio.Event
    ) -> None:
        await ShardOwner(self, INBOUND, consumer, handler, batch_size, stop).run()

    async def consume_outbound(
        self,
        network: Network,
        consumer: str,
        handler: BatchHandler,
        *,
        batch_size: int,
        stop: asyncio.Event,
    ) -> None:
        await ShardOwner(self, outbound_family(network), consumer, handler, batch_size, stop).run()

    # -- shard leases ----------------------------------------------------------------------

    async def acquire_lease(self, family: Family, shard: int, consumer: str) -> bool:
        key = self.lease_key(family, shard)
        return bool(await self.client.set(key, consumer, nx=True, px=self.lease_ms))

    async def renew_leases(
        self, family: Family, shards: Sequence[int], consumer: str
    ) -> list[bool]:
        if not shards:
            return []
        keys = [self.lease_key(family, shard) for shard in shards]
        renewed: list[int] = await self._renew(keys=keys, args=[consumer, self.lease_ms])
        return [bool(flag) for flag in renewed]

    async def release_lease(self, family: Family, shard: int, consumer: str) -> None:
        await self._release(keys=[self.lease_key(family, shard)], args=[consumer])

    async def shard_owners(self, family: Family | None = None) -> list[str | None]:
        """The consumer holding each shard's lease, by shard number; None for a free shard."""
        family = family or INBOUND
        holders: list[bytes | str | None] = await self.client.mget(
            [self.lease_key(family, shard) for shard in range(self.shards)]
        )
        return [None if holder is None else text(holder) for holder in holders]

    async def lead(
        self,
        role: str,
        consumer: str,
        work: Callable[[asyncio.Event], Awaitable[None]],
        stop: asyncio.Event,
    ) -> None:
        """Run `work` in one process of all that call this for `role` (e.g. one poller of a
        bot: Telegram allows one getUpdates at a time); another takes over if it dies. The
        event given to `work` is set when it must end: on `stop`, or leadership lost."""
        family = Family(f"leader:{role}", "")
        while not stop.is_set():
            try:
                won = await self.acquire_lease(family, 0, consumer)
            except (RedisError, OSError) as exc:
                log.warning("%s: %s; retrying", role, exc)
                won = False
            if not won:
                await pause(stop, self.lease_ms / 3000)
                continue
            lost = asyncio.Event()
            working = asyncio.ensure_future(work(lost))
            try:
                while not stop.is_set() and not working.done():
                    await pause(stop, self.lease_ms / 3000)
                    with contextlib.suppress(RedisError, OSError):
                        if (await self.renew_leases(family, [0], consumer))[0]:
                            continue
                    log.warning("%s: leadership lost", role)
                    break
            finally:
                lost.set()
                try:
                    await working
                except Exception:
                    # Nothing may stop the process: the work is taken up again, here or elsewhere.
                    log.exception("%s: failed; taking it up again", role)
                with contextlib.suppress(RedisError, OSError):
                    await self.release_lease(family, 0, consumer)

    async def heartbeat(self, family: Family, consumer: str) -> int:
        """Mark `consumer` live; returns how many consumers are live (itself included)."""
        key = self.consumers_key(family)
        live = await self._heartbeat(keys=[key], args=[consumer, self.lease_ms])
        return max(1, int(live))

    async def leave(self, family: Family, consumer: str) -> None:
        await self.client.zrem(self.consumers_key(family), consumer)
