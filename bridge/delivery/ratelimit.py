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
    """Channels name the limit their sends share first (per bot, community or page) and a
    chat's own after it."""

    def __init__(self) -> None:
        # One waiter of this process at a time asks for a shared limit, the rest queue behind it:
        # otherwise all of them ask the moment the next send is allowed, and all but one in vain
        # (with Redis, a script call each: most of a busy sender's CPU went on it).
        self._turns: dict[str, asyncio.Lock] = {}

    async def acquire(self, limits: Sequence[Limit], stop: asyncio.Event | None = None) -> float:
        """Wait until every limit allows one more send, take it, and return the seconds waited;
        with `stop` set meanwhile, return at once without taking one."""
        stop = stop or asyncio.Event()
        turn = self._turns.setdefault(limits[0].key, asyncio.Lock())
        waited = 0.0
        while not stop.is_set():
            async with turn:
                while not stop.is_set():
                    wait, needs_it = await self.try_acquire_naming(limits)
                    if wait <= 0:
                        return waited
                    if needs_it != 0:
                        break  # the chat's own limit: the other chats go on meanwhile
                    await pause(stop, wait)
                    waited += wait
                else:
                    return waited
            await pause(stop, wait)
            waited += wait
        return waited

    @abc.abstractmethod
    async def try_acquire(self, limits: Sequence[Limit]) -> float:
        """Take one send if every limit allows it (0), else the seconds to wait (nothing taken)."""

    async def try_acquire_naming(self, limits: Sequence[Limit]) -> tuple[float, int]:
        """`try_acquire`, and the index of the limit the wait is for (-1: taken). This default
        names the first."""
        wait = await self.try_acquire(limits)
        return wait, (0 if wait > 0 else -1)


class MemoryRateLimiter(RateLimiter):
    """For the embedded mode, where all senders share one process."""

    def __init__(self) -> None:
        super().__init__()
        self._tat: dict[str, float] = {}

    async def try_acquire(self, limits: Sequence[Limit]) -> float:
        return (await self.try_acquire_naming(limits))[0]

    async def try_acquire_naming(self, limits: Sequence[Limit]) -> tuple[float, int]:
        now = time.monotonic()
        waits = [gcra_wait(self._tat.get(limit.key, now), now, limit) for limit in limits]
        wait = max(waits)
        if wait > 0:
            return wait, waits.index(wait)
        for limit in limits:
            self._tat[limit.key] = max(self._tat.get(limit.key, now), now) + limit.interval
        return 0.0, -1


# KEYS: limit keys; ARGV: interval, tolerance pairs. Redis's own clock, so processes agree.
# Returns the wait and the (0-based) index of the limit that needs it; -1 when taken.
_GCRA_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local needs = -1
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  tats[i] = tat
  local w = tat - now - tolerance
  if w > wait then
    wait = w
    needs = i - 1
  end
end
if wait > 0 then return {tostring(wait), needs} end
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local new_tat = tats[i] + interval
  -- %.17g, not tostring (14 digits: 0.1 ms at today's epoch, which let sends through early)
  local ttl_ms = math.ceil((new_tat - now) * 1000) + 1000
  redis.call('SET', key, string.format('%.17g', new_tat), 'PX', ttl_ms)
end
return {'0', -1}
"""


class RedisRateLimiter(RateLimiter):
    """For the distributed mode: every sender process of every machine shares the same buckets."""

    def __init__(self, client: aioredis.Redis, prefix: str) -> None:
        super().__init__()
        self._client = client
        self._prefix = prefix
        self._script = client.register_script(_GCRA_SCRIPT)

    async def try_acquire(self, limits: Sequence[Limit]) -> float:
        return (await self.try_acquire_naming(limits))[0]

    async def try_acquire_naming(self, limits: Sequence[Limit]) -> tuple[float, int]:
        keys = [f"{self._prefix}:rate:{limit.key}" for limit in limits]
        args: list[float] = []
        for limit in limits:
            args += [limit.interval, limit.interval * (limit.burst - 1)]
        wait, needs = await self._script(keys=keys, args=args)
        return float(wait), int(needs)
