"""A core-like consumer process that handles one batch and then hangs before acknowledging it,
so that a test can kill it (-9) in the window between processing and acknowledging.

Usage: python -m tests.helpers.stalling_consumer REDIS_URL PREFIX SHARDS LEASE_MS CLAIM_IDLE_MS
The network message ids it handled are appended to the Redis list `{PREFIX}:handled-by-victim`.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

import orjson
import redis.asyncio as aioredis

from bridge.bus import BusEntry
from bridge.bus.redis import RedisBus


async def main(url: str, prefix: str, shards: int, lease_ms: int, claim_idle_ms: int) -> None:
    bus = RedisBus(url, shards, lease_ms=lease_ms, claim_idle_ms=claim_idle_ms, prefix=prefix)
    record = aioredis.Redis.from_url(url)

    async def handle_then_hang(entries: Sequence[BusEntry]) -> None:
        ids = [orjson.loads(entry.payload)["network_message_id"] for entry in entries]
        await record.rpush(f"{prefix}:handled-by-victim", *ids)
        await asyncio.Event().wait()  # "committed", but never returns, so never acks

    await bus.consume_inbound("victim", handle_then_hang, batch_size=10, stop=asyncio.Event())


if __name__ == "__main__":
    url, prefix, shards, lease_ms, claim_idle_ms = sys.argv[1:6]
    asyncio.run(main(url, prefix, int(shards), int(lease_ms), int(claim_idle_ms)))
