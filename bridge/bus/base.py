"""The bus interface shared by the in-process and the Redis Streams implementations.

Inbound entries are split into shards by conversation key. A shard is consumed by one worker at
a time, in order, batch by batch; a batch is acknowledged only after its handler returned, so a
handler that raises (or a worker that dies) leaves the batch to be delivered again.
"""

from __future__ import annotations

import abc
import asyncio
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import orjson
from pydantic import TypeAdapter

from bridge.domain import Event, InboundMessage, Network, OutboundMessage, Unreadable


@dataclass(frozen=True, slots=True)
class BusEntry:
    entry_id: str
    payload: bytes


BatchHandler = Callable[[Sequence[BusEntry]], Awaitable[None]]


def shard_of(conversation_key: str, shards: int) -> int:
    """Stable across processes and restarts (unlike hash())."""
    return zlib.crc32(conversation_key.encode()) % shards


UNREADABLE = "unreadable"
"""The key of an inbound entry that carries an `Unreadable` event instead of a message."""


def encode(model: InboundMessage | OutboundMessage) -> bytes:
    """Straight to JSON bytes by the model's own serializer (no dict in between)."""
    return model.__pydantic_serializer__.to_json(model)


_EVENTS = TypeAdapter(list[Event])


def encode_events(events: Sequence[Event]) -> bytes:
    """Events travel together, as one JSON array."""
    return _EVENTS.dump_json(list(events))


# Measured with `bench pipeline` (2 cores): one merged transaction per process at a time gave
# the lowest latency and the highest throughput (p99 100 ms vs 153 ms with 2 at 1,000 msg/s).
HANDLERS_IN_FLIGHT = 1


class GroupCommit:
    """Hands the batches of several shards to the handler together, a few calls at a time.

    Many tiny concurrent transactions (one per shard, a few entries each) cost more CPU per
    message than they save; batches that wait for a free slot are merged instead. Each shard
    still submits its next batch only after the last one returned, so its order holds."""

    def __init__(self, handler: BatchHandler, in_flight: int) -> None:
        self.handler = handler
        self.slots = asyncio.Semaphore(in_flight)
        self.waiting: list[tuple[Sequence[BusEntry], asyncio.Future[None]]] = []

    async def submit(self, entries: Sequence[BusEntry]) -> None:
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((entries, done))
        async with self.slots:
            if not done.done():
                group, self.waiting = self.waiting, []
                try:
                    await self.handler([entry for batch, _ in group for entry in batch])
                except Exception as exc:
                    for _, future in group:
                        future.set_exception(exc)
                else:
                    for _, future in group:
                        future.set_result(None)
        await done


class Bus(abc.ABC):
    """Inbound: many writers (bot workers), consumed per shard by core workers.
    Outbound: one stream per network, consumed by that network's senders.
    Events: fan-out to every subscriber (open inboxes), not persisted."""

    keeps_outbound = True
    """Whether outbound entries outlive the process (Redis streams do, the in-process queues do
    not: there the store's queued replies are published again when a sender starts)."""

    def __init__(self, shards: int) -> None:
        self.shards = shards

    async def publish_inbound(self, messages: Sequence[InboundMessage | Unreadable]) -> None:
        by_shard: dict[int, list[bytes]] = {}
        for message in messages:
            if isinstance(message, Unreadable):
                # travels as the pipeline's own envelope, to be dead-lettered there
                payload = orjson.dumps({UNREADABLE: message.model_dump(mode="json")})
                by_shard.setdefault(shard_of(message.network.value, self.shards), []).append(
                    payload
                )
                continue
            by_shard.setdefault(shard_of(message.conversation_key, self.shards), []).append(
                encode(message)
            )
        await self.publish_inbound_raw(by_shard)

    @abc.abstractmethod
    async def publish_inbound_raw(self, payloads_by_shard: dict[int, list[bytes]]) -> None:
        """Append already-encoded payloads; used as is for input a worker could not parse."""

    @abc.abstractmethod
    async def consume_inbound(
        self, consumer: str, handler: BatchHandler, *, batch_size: int, stop: asyncio.Event
    ) -> None:
        """Feed batches of the shards this consumer owns to `handler` until `stop` is set."""

    async def publish_outbound(self, messages: Sequence[OutboundMessage]) -> None:
        await self.publish_outbound_raw(self.outbound_by_shard(messages))

    def outbound_by_shard(
        self, messages: Sequence[OutboundMessage]
    ) -> dict[tuple[Network, int], list[bytes]]:
        """Sharded by chat, like inbound by conversation: one chat's replies go out in order."""
        by_shard: dict[tuple[Network, int], list[bytes]] = {}
        for message in messages:
            shard = shard_of(f"{message.network.value}:{message.chat_id}", self.shards)
            by_shard.setdefault((message.network, shard), []).append(encode(message))
        return by_shard

    async def publish(self, outbound: Sequence[OutboundMessage], events: Sequence[Event]) -> None:
        """A handled batch's replies, then its events; in one round trip where the bus can."""
        await self.publish_outbound(outbound)
        await self.publish_events(events)

    @abc.abstractmethod
    async def publish_outbound_raw(
        self, payloads_by_shard: dict[tuple[Network, int], list[bytes]]
    ) -> None:
        """Append encoded outbound messages to their network's shard."""

    @abc.abstractmethod
    async def consume_outbound(
        self,
        network: Network,
        consumer: str,
        handler: BatchHandler,
        *,
        batch_size: int,
        stop: asyncio.Event,
    ) -> None:
        """Feed batches of the network's outbound shards this consumer owns to `handler`."""

    @abc.abstractmethod
    async def publish_events(self, events: Sequence[Event]) -> None:
        """Tell every subscriber; an event nobody listens to is gone."""

    @abc.abstractmethod
    def subscribe_events(self) -> AbstractAsyncContextManager[AsyncIterator[Event]]:
        """`async with bus.subscribe_events() as events: async for event in events: ...`"""

    @abc.abstractmethod
    async def inbound_backlog(self) -> int:
        """Entries appended but not yet acknowledged, over all shards (stream lag)."""

    @abc.abstractmethod
    async def shard_ages(self) -> list[float]:
        """Per inbound shard, the seconds its oldest unacknowledged entry has waited (0: none):
        a shard whose age only grows is not moving."""

    async def close(self) -> None:  # noqa: B027 - optional hook: the in-process bus holds nothing
        """Release connections."""
