"""A sender-like process that takes COUNT sends under one limit from the shared Redis rate limiter,
as fast as the limiter lets it, and prints when each was taken: JSON [[before, after], ...] in
time.time() seconds, the limiter having decided within [before, after] (on Redis's clock, which
is this machine's clock too).

Usage: python -m tests.helpers.rate_limited_sender REDIS_URL PREFIX KEY PER_SECOND COUNT PROCESSES
It starts sending only once PROCESSES of them are ready (the counter `{PREFIX}:ready`), so that
they all contend for the limit from the start.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis

from bridge.delivery.ratelimit import Limit, RateLimiter, RedisRateLimiter


class RecordingLimiter(RateLimiter):
    """Another limiter, noting for every send it allowed the clock just before and just after the
    decision; `acquire` is the limiter's own (it calls `try_acquire` until a send is taken)."""

    def __init__(self, inner: RateLimiter, clock: Callable[[], float] = time.time) -> None:
        super().__init__()
        self.inner = inner
        self.clock = clock
        self.taken: list[tuple[float, float]] = []

    async def try_acquire(self, limits: Sequence[Limit]) -> float:
        before = self.clock()
        wait = await self.inner.try_acquire(limits)
        if wait <= 0:
            self.taken.append((before, self.clock()))
        return wait


async def main(url: str, prefix: str, key: str, per_second: float, count: int, n: int) -> None:
    client = aioredis.Redis.from_url(url)
    ready = int(await client.incr(f"{prefix}:ready"))
    while ready < n:
        await asyncio.sleep(0.005)
        ready = int(await client.get(f"{prefix}:ready") or 0)
    limiter = RecordingLimiter(RedisRateLimiter(client, prefix))
    limit = Limit(key, per_second)
    for _ in range(count):
        await limiter.acquire([limit])
    await client.aclose()
    print(json.dumps(limiter.taken), flush=True)


if __name__ == "__main__":
    url, prefix, key, per_second, count, processes = sys.argv[1:7]
    asyncio.run(main(url, prefix, key, float(per_second), int(count), int(processes)))
