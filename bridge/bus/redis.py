"""The Redis Streams bus of the distributed mode.

Inbound: one stream per shard, consumer group `core`. A shard is worked by one consumer at a time,
held by a lease that consumer renews, so a conversation's messages are handled in order however
many core processes run. Consumers share the shards fairly: each heartbeats and aims at
ceil(shards / live consumers). A new owner first finishes what the shard's previous owner took but
never acknowledged (XAUTOCLAIM once idle for `claim_idle_ms`) and reads nothing new before that.
Outbound: one stream per network, consumer group `senders`, no leases. Events: one pub/sub channel.
Acknowledged entries are deleted, so a stream holds only what is still to be done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import pydantic
import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

from bridge.bus.base import HANDLERS_IN_FLIGHT, BatchHandler, Bus, BusEntry, GroupCommit
from bridge.domain import Event, Network
from bridge.util.stopping import pause

log = logging.getLogger(__name__)

PAYLOAD_FIELD = "p"
BLOCK_MS = 1000
SOCKET_TIMEOUT_S = 5.0
# A sender's batch rate-limits all its chats at once; past this many commands in flight the
# rest wait for a connection instead of failing the batch (redis-py's plain pool raises).
MAX_CONNECTIONS = 100
RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0

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

Fields = dict[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Family:
    """Sharded streams worked under leases, one consumer per shard at a time: the inbound
    shards (by conversation), or one network's outbound shards (by chat)."""

    name: str
    group: str


INBOUND = Family("in", "core")


def outbound(network: Network) -> Family:
    return Family(f"out:{network.value}", "senders")


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
            (self.stream(outbound(network), shard), payloads)
            for (network, shard), payloads in payloads_by_shard.items()
        )

    async def _append(self, batches: Iterable[tuple[str, list[bytes]]]) -> None:
        # No MAXLEN: trimming would drop entries nobody has acknowledged yet.
        async with self.client.pipeline(transaction=False) as pipe:
            for stream, payloads in batches:
                for payload in payloads:
                    pipe.xadd(stream, {PAYLOAD_FIELD: payload})
            await pipe.execute()

    async def publish_events(self, events: Sequence[Event]) -> None:
        if events:
            payload = orjson.dumps([event.model_dump(mode="json") for event in events])
            await self.client.publish(self.events_channel, payload)

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
            group = next((g for g in groups if _text(g["name"]) == INBOUND.group), None)
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
        await _ShardOwner(self, INBOUND, consumer, handler, batch_size, stop).run()

    async def consume_outbound(
        self,
        network: Network,
        consumer: str,
        handler: BatchHandler,
        *,
        batch_size: int,
        stop: asyncio.Event,
    ) -> None:
        await _ShardOwner(self, outbound(network), consumer, handler, batch_size, stop).run()

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
        return [None if holder is None else _text(holder) for holder in holders]

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


class _Backoff:
    """Doubling delays between retries, back to the first after a success."""

    def __init__(self) -> None:
        self.delay = RETRY_FIRST_S

    def next(self) -> float:
        delay = self.delay
        self.delay = min(RETRY_MAX_S, self.delay * 2)
        return delay

    def reset(self) -> None:
        self.delay = RETRY_FIRST_S


class _GroupReader:
    """One consumer's view of one stream in a group: its own pending entries first, then
    entries other consumers left idle (XAUTOCLAIM), then new ones.

    With `in_order` (the stream has one consumer at a time), nothing new is read while another
    consumer holds pending entries that are not idle long enough to claim, so entries are handled
    in stream order even right after a previous owner died holding a batch."""

    def __init__(
        self,
        bus: RedisBus,
        stream: str,
        group: str,
        consumer: str,
        *,
        in_order: bool,
        block_ms: int,
        may_read_new: Callable[[], bool],
    ) -> None:
        self.bus = bus
        self.client = bus.client
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.in_order = in_order
        self.block_ms = block_ms
        self.may_read_new = may_read_new
        self.poll_s = min(1.0, bus.claim_idle_ms / 4000)
        self.group_ready = False
        # Once nothing is pending, nothing can become pending but what this reader reads itself
        # (it is the only reader of an in-order stream): no need to ask Redis before each read.
        self.settled = False
        self.backoff = _Backoff()

    async def step(self, handler: BatchHandler, batch_size: int, stop: asyncio.Event) -> None:
        """Handle at most one batch. Never raises: failures are logged, then retried later."""
        try:
            entries = await self._next_batch(batch_size, stop)
        except (RedisError, OSError) as exc:
            # Also NOGROUP after the server lost the stream: create the group again.
            self.group_ready = self.settled = False
            log.warning("stream %s: %s; retrying", self.stream, exc)
            await pause(stop, self.backoff.next())
            return
        except Exception:
            log.exception("stream %s: reading failed; retrying", self.stream)
            await pause(stop, self.backoff.next())
            return
        if not entries:
            return
        try:
            await handler(entries)
        except Exception:
            self.settled = False
            log.exception(
                "stream %s: a batch of %d entries failed; it will be delivered again",
                self.stream,
                len(entries),
            )
            await pause(stop, self.backoff.next())
            return
        try:
            await self._ack([entry.entry_id for entry in entries])
        except (RedisError, OSError) as exc:
            # Still pending for this consumer: it comes again, and the store drops the copy.
            self.settled = False
            log.warning(
                "stream %s: ack failed: %s; the batch will be delivered again", self.stream, exc
            )
            await pause(stop, self.backoff.next())
            return
        self.backoff.reset()

    async def _next_batch(self, batch_size: int, stop: asyncio.Event) -> list[BusEntry]:
        if not self.group_ready:
            await self._create_group()
        mine, others = (0, 0) if self.settled else await self._pending()
        self.settled = self.in_order and not (mine or others)
        if mine:
            return await self._read("0", batch_size, block=None)
        if others:
            claimed = await self._claim(batch_size)
            if claimed or self.in_order:
                if not claimed:
                    await pause(stop, self.poll_s)  # the holder may still be working on them
                return claimed
        if not self.may_read_new():
            await pause(stop, self.poll_s)
            return []
        return await self._read(">", batch_size, block=self.block_ms)

    async def _create_group(self) -> None:
        try:
            await self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self.group_ready = True

    async def _pending(self) -> tuple[int, int]:
        """Entries pending for this consumer, and for all the others."""
        summary: dict[str, Any] = await self.client.xpending(self.stream, self.group)
        mine = others = 0
        for holder in summary["consumers"] or []:
            if _text(holder["name"]) == self.consumer:
                mine += int(holder["pending"])
            else:
                others += int(holder["pending"])
        return mine, others

    async def _claim(self, batch_size: int) -> list[BusEntry]:
        """Entries another consumer took and left idle for `claim_idle_ms` (it died)."""
        response: Any = await self.client.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=self.bus.claim_idle_ms,
            start_id="0-0",
            count=batch_size,
        )
        return await self._usable(response[1])

    async def _read(self, start: str, count: int, block: int | None) -> list[BusEntry]:
        response: Any = await self.client.xreadgroup(
            self.group, self.consumer, {self.stream: start}, count=count, block=block
        )
        if not response:
            return []
        return await self._usable(response[0][1])

    async def _usable(self, raw: Sequence[tuple[bytes, Fields | None]]) -> list[BusEntry]:
        """Entries with their payload; ids whose entry was deleted meanwhile are acked away,
        or they would stay pending (and count as backlog) for ever."""
        entries = [
            BusEntry(_text(entry_id), _payload(fields)) for entry_id, fields in raw if fields
        ]
        gone = [_text(entry_id) for entry_id, fields in raw if not fields]
        if gone:
            await self._ack(gone)
        return entries

    async def leave(self) -> None:
        """Drop this consumer from the group, so that restarted processes (new names) do not
        pile up in it; only when it holds nothing, as its pending entries would go with it."""
        with contextlib.suppress(RedisError, OSError):
            mine, _ = await self._pending()
            if not mine:
                await self.client.xgroup_delconsumer(self.stream, self.group, self.consumer)

    async def _ack(self, ids: Sequence[str]) -> None:
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.xack(self.stream, self.group, *ids)
            pipe.xdel(self.stream, *ids)
            await pipe.execute()


@dataclass(eq=False)
class _Lease:
    """A shard this consumer holds: until when the lease surely is still its own, and whether
    it is being given up (surplus, or lost) once the batch in hand is done."""

    valid_until: float
    leaving: bool = False


class _ShardOwner:
    """Holds a fair share of a family's shards and works each one in a task of its own."""

    def __init__(
        self,
        bus: RedisBus,
        family: Family,
        consumer: str,
        handler: BatchHandler,
        batch_size: int,
        stop: asyncio.Event,
    ) -> None:
        self.bus = bus
        self.family = family
        self.consumer = consumer
        self.batch_size = batch_size
        self.stop = stop
        self.lease_s = bus.lease_ms / 1000
        # A read blocks at most a quarter of the lease, so a lease renewed every third of it
        # never runs out while a read is waiting.
        self.block_ms = min(BLOCK_MS, bus.lease_ms // 4)
        self.leases: dict[int, _Lease] = {}
        self.tasks: dict[int, asyncio.Task[None]] = {}
        # Inbound shards of a process are committed together (few, larger transactions);
        # senders are not: their batches mostly wait on the networks' rate limits.
        self.handle: BatchHandler = (
            GroupCommit(handler, HANDLERS_IN_FLIGHT).submit if family is INBOUND else handler
        )

    async def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    await self._balance()
                except (RedisError, OSError) as exc:
                    log.warning("shard leases: %s; retrying", exc)
                await pause(self.stop, self.lease_s / 3)
        except asyncio.CancelledError:
            for task in self.tasks.values():
                task.cancel()  # a batch cut short is not acked, so it comes again
            raise
        finally:
            for lease in self.leases.values():
                lease.leaving = True
            await asyncio.gather(*self.tasks.values(), return_exceptions=True)
            with contextlib.suppress(RedisError, OSError):
                await self.bus.leave(self.family, self.consumer)

    async def _balance(self) -> None:
        for shard in [shard for shard, task in self.tasks.items() if task.done()]:
            del self.tasks[shard], self.leases[shard]
        await self._renew()
        live = await self.bus.heartbeat(self.family, self.consumer)
        target = math.ceil(self.bus.shards / live)
        keeping = [shard for shard, lease in self.leases.items() if not lease.leaving]
        for shard in keeping[target:]:
            self.leases[shard].leaving = True  # its task ends after the batch in hand
        if len(keeping) < target:
            await self._acquire(target - len(keeping))

    async def _renew(self) -> None:
        # Leaving shards are renewed too: their batch in hand is still being handled.
        shards = list(self.leases)
        sent = time.monotonic()
        renewed = await self.bus.renew_leases(self.family, shards, self.consumer)
        for shard, ok in zip(shards, renewed, strict=True):
            lease = self.leases[shard]
            if ok:
                lease.valid_until = sent + self.lease_s
            elif not lease.leaving:
                log.warning("%s lost the lease of shard %d", self.consumer, shard)
                lease.leaving = True

    async def _acquire(self, wanted: int) -> None:
        holders = await self.bus.shard_owners(self.family)
        # Consumers start their search at different shards, so they rarely race for one.
        start = zlib.crc32(self.consumer.encode())
        for offset in range(self.bus.shards):
            if wanted <= 0:
                return
            shard = (start + offset) % self.bus.shards
            if shard in self.leases or holders[shard] not in (None, self.consumer):
                continue
            sent = time.monotonic()
            if holders[shard] == self.consumer:
                # Still ours from before a restart under the same name: take it back at once.
                won = (await self.bus.renew_leases(self.family, [shard], self.consumer))[0]
            else:
                won = await self.bus.acquire_lease(self.family, shard, self.consumer)
            if won:
                lease = _Lease(valid_until=sent + self.lease_s)
                self.leases[shard] = lease
                self.tasks[shard] = asyncio.create_task(self._work(shard, lease))
                wanted -= 1

    async def _work(self, shard: int, lease: _Lease) -> None:
        margin_s = self.block_ms / 1000

        def lease_safe() -> bool:
            # A read started now returns before the lease could pass to another consumer.
            return time.monotonic() + margin_s < lease.valid_until

        reader = _GroupReader(
            self.bus,
            self.bus.stream(self.family, shard),
            self.family.group,
            self.consumer,
            in_order=True,
            block_ms=self.block_ms,
            may_read_new=lease_safe,
        )
        try:
            while not self.stop.is_set() and not lease.leaving:
                await reader.step(self.handle, self.batch_size, self.stop)
        finally:
            await reader.leave()
            with contextlib.suppress(RedisError, OSError):
                await self.bus.release_lease(self.family, shard, self.consumer)


def _payload(fields: Fields) -> bytes:
    """The payload; an entry some other writer added without one is handed on as its fields in
    JSON, so that the pipeline records it as bad input instead of it blocking the shard."""
    payload = fields.get(PAYLOAD_FIELD.encode())
    if payload is not None:
        return payload
    return orjson.dumps({_text(k): v.decode(errors="replace") for k, v in fields.items()})


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
