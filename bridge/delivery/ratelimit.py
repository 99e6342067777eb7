"""Rate limits shared by every sender process (GCRA: one timestamp per key, no background refill).

Each limit keeps a "theoretical arrival time" (TAT). A send is allowed when TAT - now is within
the burst tolerance; then TAT moves on by one interval. A send that needs several limits (per bot
and per chat) is allowed only when all allow it, and then all move together, atomically.
"""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Sequence

import redis.asyncio as aioredis

from bridge.channel import Limit
from bridge.util.stopping import pause


def gcra_wait(tat: float, now: float, limit: Limit) -> float:
    """Seconds to wait before a send under `limit` is allowed (0: allowed now)."""
    tolerance = limit.interval * (limit.burst - 1)
    return max(0.0, max(tat, now) - now - tolerance)


class RateLimiter(abc.ABC):
    async def acquire(self, limits: Sequence[Limit], stop: asyncio.Event | None = None) -> float:
        """Wait until every limit allows one more send, take it, and return the seconds waited;
        with `stop` set meanwhile, return at once without taking one."""
        waited = 0.0
        while stop is None or not stop.is_set():
            wait = await self.try_acquire(limits)
            if wait <= 0:
                return waited
            if stop is None:
                await asyncio.sleep(wait)
            else:
                await pause(stop, wait)
            waited += wait
        return waited

    @abc.abstractmethod
    async def try_acquire(self, limits: Sequence[Limit]) -> float:
        """Take one send if every limit allows it (0), else the seconds to wait (nothing taken)."""


class MemoryRateLimiter(RateLimiter):
    """For the embedded mode, where all senders share one process."""

    def __init__(self) -> None:
        self._tat: dict[str, float] = {}

    async def try_acquire(self, limits: Sequence[Limit]) -> float:
        now = time.monotonic()
        wait = max(gcra_wait(self._tat.get(limit.key, now), now, limit) for limit in limits)
        if wait > 0:
            return wait
        for limit in limits:
            self._tat[limit.key] = max(self._tat.get(limit.key, now), now) + limit.interval
        return 0.0


# KEYS: limit keys; ARGV: interval, tolerance pairs. Redis's own clock, so processes agree.
_GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  tats[i] = tat
  local w = tat - now - tolerance
  if w > wait then wait = w end
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local new_tat = tats[i] + interval
  -- %.17g, not tostring (14 digits: 0.1 ms at today's epoch, which let sends through early)
  local ttl_ms = math.ceil((new_tat - now) * 1000) + 1000
  redis.call('SET', key, string.format('%.17g', new_tat), 'PX', ttl_ms)
end
return '0'
"""


class RedisRateLimiter(RateLimiter):
    """For the distributed mode: every sender process of every machine shares the same buckets."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_GCRA_SCRIPT)

    async def try_acquire(self, limits: Sequence[Limit]) -> float:
        keys = [f"{self._prefix}:rate:{limit.key}" for limit in limits]
        args: list[float] = []
        for limit in limits:
            args += [limit.interval, limit.interval * (limit.burst - 1)]
        return float(await self._script(keys=keys, args=args))
