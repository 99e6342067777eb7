"""A consumer's share of a family's shards: it heartbeats, takes ceil(shards / live consumers)
of them under leases it renews, and runs a `GroupReader` on each it holds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from redis.exceptions import RedisError

from bridge.bus.base import HANDLERS_IN_FLIGHT, BatchHandler, GroupCommit
from bridge.bus.redis.group_reader import GroupReader
from bridge.bus.redis.streams import INBOUND, Family
from bridge.util.stopping import pause

if TYPE_CHECKING:
    from bridge.bus.redis.bus import RedisBus

log = logging.getLogger(__name__)

BLOCK_MS = 1000


@dataclass(eq=False)
class Lease:
    """A shard this consumer holds: until when the lease surely is still its own, and whether
    it is being given up (surplus, or lost) once the batch in hand is done."""

    valid_until: float
    leaving: bool = False


class ShardOwner:
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
        self.leases: dict[int, Lease] = {}
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
                lease = Lease(valid_until=sent + self.lease_s)
                self.leases[shard] = lease
                self.tasks[shard] = asyncio.create_task(self._work(shard, lease))
                wanted -= 1

    async def _work(self, shard: int, lease: Lease) -> None:
        margin_s = self.block_ms / 1000

        def lease_safe() -> bool:
            # A read started now returns before the lease could pass to another consumer.
            return time.monotonic() + margin_s < lease.valid_until

        reader = GroupReader(
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
