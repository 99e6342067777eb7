"""The in-process bus of the embedded mode: asyncio queues, one per shard and per network. With a
journal (`bridge.bus.journal`, as the product runs it), an inbound entry is committed to it before
`publish_inbound` returns and forgotten once handled, so what was acknowledged to a network
outlives the process."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence

from bridge.bus.base import HANDLERS_IN_FLIGHT, BatchHandler, Bus, BusEntry, GroupCommit
from bridge.bus.journal import InboundJournal
from bridge.domain import Event, Network

log = logging.getLogger(__name__)

RETRY_DELAY_S = 0.5


class MemoryBus(Bus):
    keeps_outbound = False

    def __init__(self, shards: int, journal: InboundJournal | None = None) -> None:
        super().__init__(shards)
        self._inbound = [asyncio.Queue[BusEntry]() for _ in range(shards)]
        self._outbound = {network: asyncio.Queue[BusEntry]() for network in Network}
        self._subscribers: set[asyncio.Queue[Event]] = set()
        self._ids = itertools.count(1)
        self._unacked = 0
        # Per shard, its unacknowledged entries and when each came, oldest first.
        self._waiting: list[dict[str, float]] = [{} for _ in range(shards)]
        self._journal = journal
        if journal is not None:
            # What a previous process acknowledged and did not handle, first and in order (a
            # changed shard count keeps each former shard's entries together).
            for journal_id, shard, payload in journal.pending():
                self._put_inbound(shard % shards, BusEntry(str(journal_id), payload))

    def _entry(self, payload: bytes) -> BusEntry:
        return BusEntry(str(next(self._ids)), payload)

    def _put_inbound(self, shard: int, entry: BusEntry) -> None:
        self._inbound[shard].put_nowait(entry)
        self._waiting[shard][entry.entry_id] = time.monotonic()
        self._unacked += 1

    async def publish_inbound_raw(self, payloads_by_shard: dict[int, list[bytes]]) -> None:
        if self._journal is None:
            for shard, payloads in payloads_by_shard.items():
                for payload in payloads:
                    self._put_inbound(shard, self._entry(payload))
            return
        appended = await self._journal.append(payloads_by_shard)
        for shard, payloads in payloads_by_shard.items():
            for journal_id, payload in zip(appended[shard], payloads, strict=True):
                self._put_inbound(shard, BusEntry(str(journal_id), payload))

    async def consume_inbound(
        self, consumer: str, handler: BatchHandler, *, batch_size: int, stop: asyncio.Event
    ) -> None:
        # As in the distributed mode: the shards' batches merged into one transaction at a time
        # (SQLite has one writer; concurrent ones would only queue on its lock).
        merged = GroupCommit(handler, HANDLERS_IN_FLIGHT).submit
        await _consume_all(self._inbound, merged, batch_size, stop, self._acked)

    def _acked(self, shard: int, batch: Sequence[BusEntry]) -> None:
        self._unacked -= len(batch)
        for entry in batch:
            self._waiting[shard].pop(entry.entry_id, None)
        if self._journal is not None:
            self._journal.forget([int(entry.entry_id) for entry in batch])

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
        await _consume_all([self._outbound[network]], handler, batch_size, stop, lambda *_: None)

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

    async def shard_ages(self) -> list[float]:
        now = time.monotonic()
        return [now - next(iter(waiting.values()), now) for waiting in self._waiting]

    async def close(self) -> None:
        if self._journal is not None:
            await self._journal.close()


async def _consume_all(
    queues: Sequence[asyncio.Queue[BusEntry]],
    handler: BatchHandler,
    batch_size: int,
    stop: asyncio.Event,
    on_ack: Callable[[int, Sequence[BusEntry]], None],
) -> None:
    async with asyncio.TaskGroup() as group:
        for index, queue in enumerate(queues):
            acked = functools.partial(on_ack, index)
            group.create_task(_consume_queue(queue, handler, batch_size, stop, acked))


async def _consume_queue(
    queue: asyncio.Queue[BusEntry],
    handler: BatchHandler,
    batch_size: int,
    stop: asyncio.Event,
    on_ack: Callable[[Sequence[BusEntry]], None],
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
                    if stop.is_set():
                        return  # handed back: a handler asked to stop gives up its batch
                    log.exception("batch of %d entries failed; retrying", len(batch))
                    await asyncio.sleep(RETRY_DELAY_S)
            on_ack(batch)
    finally:
        stopping.cancel()
