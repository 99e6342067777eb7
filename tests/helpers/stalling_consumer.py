"""A core-like consumer process that handles one batch and then hangs before acknowledging it,
so that a test can kill it (-9) in the window between processing and acknowledging."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import redis.asyncio as aioredis

from bridge.bus import BusEntry
from bridge.bus.redis import RedisBus


async def main(url: str, prefix: str, shards: int) -> None:
    bus = RedisBus(url, shards, lease_ms=500, claim_idle_ms=300, prefix=prefix)
    seen = aioredis.Redis.from_url(url)

    async def handle_then_hang(entries: Sequence[BusEntry]) -> None:
        await seen.sadd(f"{prefix}:handled-by-victim", *(e.payload for e in entries))
        await asyncio.Event().wait()

    await bus.consume_inbound("victim", handle_then_hang, batch_size=10, stop=asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
