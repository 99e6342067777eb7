"""The in-process bus of the embedded mode: asyncio queues, one per shard and per network."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import AsyncIterator, Callable, Sequence

from bridge.bus.base import HANDLERS_IN_FLIGHT, BatchHandler, Bus, BusEntry, GroupCommit
from bridge.domain import Event, Network

log = logging.getLogger(__name__)

RETRY_DELAY_S = 0.5


class MemoryBus(Bus):
    def __init__(self, shards: int) -> None:
        super().__init__(shards)
        self._inbound = [asyncio.Queue[BusEntry]() for _ in range(shards)]
        self._outbound = {network: asyncio.Queue[BusEntry]() for network in Network}
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._ids = itertools.count(1)
        self._unacked = 0

    def _entry(self, payload: bytes) -> BusEntry:
        return BusEntry(str(next(self._ids)), payload)

    async def publish_inbound_raw(self, payloads_by_shard: dict[int, list[bytes]]) -> None:
        for shard, payloads in payloads_by_shard.items():
            for payload in payloads:
                self._inbound[shard].put_nowait(self._entry(payload))
                self._unacked += 1

    async def consume_inbound(
        self, consumer: str, handler: BatchHandler, *, batch_size: int, stop: asyncio.Event
    ) -> None:
        # As in the distributed mode: the shards' batches merged into one transaction at a time
        # (SQLite has one writer; concurrent ones would only queue on its lock).
        merged = GroupCommit(handler, HANDLERS_IN_FLIGHT).submit
        await _consume_all(self._inbound, merged, batch_size, stop, self._acked)

    def _acked(self, count: int) -> None:
        self._unacked -= count

    async def publish_outbound_raw(
        self, payloads_by_shard: dict[tuple[Network, int], list[bytes]]
    ) -> None:
        # One queue per network: the embedded mode has a single sender per network.
        for (network, _shard), payloads in payloads_by_shard.items():
            for payload in payloads:
                self._outbound[network].put_nowait(self._entry(payload))

    async def consume_outbound(
        self,
        network: Network,
        consumer: str,
        handler: BatchHandler,
        *,
        batch_size: int,
        stop: asyncio.Event,
    ) -> None:
        await _consume_all([self._outbound[network]], handler, batch_size, stop, lambda _: None)

    def outbound_size(self, network: Network) -> int:
        return self._outbound[network].qsize()

    async def publish_events(self, events: Sequence[Event]) -> None:
        for queue in self._subscribers:
            for event in events:
                queue.put_nowait(event)

    @contextlib.asynccontextmanager
    async def subscribe_events(self) -> AsyncIterator[AsyncIterator[Event]]:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(queue)

        async def events() -> AsyncIterator[Event]:
            while True:
                yield await queue.get()

        try:
            yield events()
        finally:
            self._subscribers.discard(queue)

    async def inbound_backlog(self) -> int:
        return self._unacked


async def _consume_all(
    queues: Sequence[asyncio.Queue[BusEntry]],
    handler: BatchHandler,
    batch_size: int,
    stop: asyncio.Event,
    on_ack: Callable[[int], None],
) -> None:
    async with asyncio.TaskGroup() as group:
        for queue in queues:
            group.create_task(_consume_queue(queue, handler, batch_size, stop, on_ack))


async def _consume_queue(
    queue: asyncio.Queue[BusEntry],
    handler: BatchHandler,
    batch_size: int,
    stop: asyncio.Event,
    on_ack: Callable[[int], None],
) -> None:
    stopping = asyncio.ensure_future(stop.wait())
    try:
        while not stop.is_set():
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                return
            batch = [getter.result()]
            while len(batch) < batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            # The batch stays until the handler succeeds: the in-process "ack after commit".
            while True:
                try:
                    await handler(batch)
                    break
                except Exception:
                    log.exception("batch of %d entries failed; retrying", len(batch))
                    if stop.is_set():
                        return
                    await asyncio.sleep(RETRY_DELAY_S)
            on_ack(len(batch))
    finally:
        stopping.cancel()
