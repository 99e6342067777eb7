"""Acknowledgements of the batches a process handled together, sent to Redis in one round trip.

The shards' batches are committed together (`GroupCommit`); their readers then acknowledge in
turns of the event loop that follow one another. The first to ask starts a send that runs once
the others have added their entries, and all of them wait for it: one MULTI with an XACK and an
XDEL a stream, instead of one round trip a shard. A send that fails fails for each of them, and
their entries stay pending, to be delivered again.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis


class Acks:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        self.waiting: dict[tuple[str, str], list[str]] = {}
        self.sending: asyncio.Task[None] | None = None

    async def ack(self, stream: str, group: str, ids: list[str]) -> None:
        """Acknowledge and delete `ids` of `stream` (deleted: a stream keeps only what is to
        be done)."""
        self.waiting.setdefault((stream, group), []).extend(ids)
        if self.sending is None:
            self.sending = asyncio.ensure_future(self._send())
        # shielded: one reader cancelled does not cancel the others' acknowledgements
        await asyncio.shield(self.sending)

    async def _send(self) -> None:
        # The readers of one commit come a turn of the event loop after one another (the
        # commit's slot passes from one to the next): wait while each turn brings another.
        seen = 0
        while seen != len(self.waiting):
            seen = len(self.waiting)
            await asyncio.sleep(0)
        waiting, self.waiting, self.sending = self.waiting, {}, None
        async with self.client.pipeline(transaction=True) as pipe:
            for (stream, group), ids in waiting.items():
                pipe.xack(stream, group, *ids)
                pipe.xdel(stream, *ids)
            await pipe.execute()
