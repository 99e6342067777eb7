"""One consumer reading one stream of a group, in order, taking over what a dead consumer left."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError, ResponseError

from bridge.bus.base import BatchHandler, BusEntry
from bridge.bus.redis.streams import Fields, entry_payload, text
from bridge.util.stopping import pause

if TYPE_CHECKING:
    from bridge.bus.redis.bus import RedisBus

log = logging.getLogger(__name__)

RETRY_FIRST_S = 0.2
RETRY_MAX_S = 5.0


class Backoff:
    """Doubling delays between retries, back to the first after a success."""

    def __init__(self) -> None:
        self.delay = RETRY_FIRST_S

    def next(self) -> float:
        delay = self.delay
        self.delay = min(RETRY_MAX_S, self.delay * 2)
        return delay

    def reset(self) -> None:
        self.delay = RETRY_FIRST_S


class GroupReader:
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
        self.backoff = Backoff()

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
            if text(holder["name"]) == self.consumer:
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
            BusEntry(text(entry_id), entry_payload(fields)) for entry_id, fields in raw if fields
        ]
        gone = [text(entry_id) for entry_id, fields in raw if not fields]
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

    async def _ack(self, ids: list[str]) -> None:
        await self.bus.ack(self.stream, self.group, ids)
