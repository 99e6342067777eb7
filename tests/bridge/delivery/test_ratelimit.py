"""The shared rate limiters (GCRA), in memory and on the real Redis, across processes.

What GCRA promises for a limit of `per_second` with a burst allowance of `burst`: send k+n is
taken no earlier than n intervals after send k, less the tolerance (burst - 1) intervals; so a
window of T seconds (half-open) holds at most ceil(T * per_second + burst) - 1 sends: 20 in any
second at 20/s and burst 1, which is what the channels use. That is asserted exactly, and the
time a burst takes only from below (never faster than the rate allows; no upper bounds, the
machine is shared).

The memory limiter's sends are timed with time.monotonic just after each acquire (in one process
that is microseconds after the decision). The Redis limiter decides on Redis's clock, a network
round trip away, so each send there is known to lie within [before, after] of the decision
(`RecordingLimiter`), and a window counts only the sends certainly inside it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import sys
import time
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis

from bench.delivery import max_in_window
from bridge.delivery.ratelimit import Limit, MemoryRateLimiter, RedisRateLimiter
from tests.conftest import REPO
from tests.helpers.rate_limited_sender import RecordingLimiter

ROOT = REPO
RATE = 20.0
BURST_SENDS = 30
# Redis's TIME counts whole microseconds, and time.time() near 1.8e9 s resolves ~0.24 us.
CLOCK_SLACK_S = 1e-5


def gcra_allows(limit: Limit, window_s: float = 1.0) -> int:
    """The most sends GCRA lets through in any (half-open) window of `window_s`."""
    return math.ceil(limit.per_second * window_s + limit.burst) - 1


def at_least_s(limit: Limit, sends: int) -> float:
    """The least time from the first to the last of `sends` sends under `limit`."""
    return max(0, sends - limit.burst) * limit.interval


def most_certainly_in_window(taken: Sequence[tuple[float, float]], window_s: float) -> int:
    """The most sends certainly within one window of `window_s`, each send known only to lie
    within its [before, after]: a set is, when its latest `after` is under `window_s` past its
    earliest `before`."""
    return max(
        (sum(1 for b, a in taken if b >= start and a < start + window_s) for start, _ in taken),
        default=0,
    )


async def timed_burst(
    limiter: MemoryRateLimiter, limits: Sequence[Limit], sends: int
) -> list[float]:
    times = []
    for _ in range(sends):
        await limiter.acquire(limits)
        times.append(time.monotonic())
    return times


# -- in memory (the embedded mode) ---------------------------------------------------------------


async def test_memory_burst_never_exceeds_the_rate_in_any_second() -> None:
    limit = Limit("vk:1", RATE)
    started = time.monotonic()
    times = await timed_burst(MemoryRateLimiter(), [limit], BURST_SENDS)

    assert max_in_window(times) <= gcra_allows(limit) == 20
    assert times[-1] - started >= at_least_s(limit, BURST_SENDS) - 1e-9


async def test_memory_keys_do_not_slow_each_other_down() -> None:
    limiter = MemoryRateLimiter()
    busy, other = Limit("telegram:1", RATE), Limit("telegram:2", RATE)
    assert await limiter.try_acquire([busy]) == 0
    assert await limiter.try_acquire([busy]) > 0  # this key is used up for now

    assert await limiter.acquire([other]) == 0.0  # the other is not
    assert await limiter.try_acquire([other]) > 0
    assert await limiter.try_acquire([busy]) > 0  # and taking it did not refill the first


async def test_memory_one_chat_is_held_to_its_stricter_chat_limit() -> None:
    bot, chat = Limit("telegram:1", RATE), Limit("telegram:1:chat:7", 5.0)
    started = time.monotonic()
    times = await timed_burst(MemoryRateLimiter(), [bot, chat], 6)

    assert max_in_window(times) <= gcra_allows(chat) == 5
    assert times[-1] - started >= at_least_s(chat, 6) - 1e-9


async def test_memory_many_chats_together_are_held_to_the_stricter_bot_limit() -> None:
    limiter = MemoryRateLimiter()
    bot = Limit("telegram:1", RATE)
    chats = [Limit(f"telegram:1:chat:{n}", 5.0) for n in range(15)]
    per_chat: dict[str, list[float]] = {}

    async def chat_burst(chat: Limit) -> None:
        per_chat[chat.key] = await timed_burst(limiter, [bot, chat], 2)

    started = time.monotonic()
    await asyncio.gather(*(chat_burst(chat) for chat in chats))
    times = [t for ts in per_chat.values() for t in ts]

    assert len(times) == 30
    assert max_in_window(times) <= gcra_allows(bot) == 20
    assert max(times) - started >= at_least_s(bot, 30) - 1e-9
    for chat in chats:  # and each chat to its own
        assert max_in_window(per_chat[chat.key], chat.interval) <= gcra_allows(chat, chat.interval)


async def test_memory_a_refused_send_takes_from_none_of_its_limits() -> None:
    limiter = MemoryRateLimiter()
    bot, chat = Limit("telegram:1", RATE), Limit("telegram:1:chat:7", 1.0)
    assert await limiter.try_acquire([chat]) == 0
    assert await limiter.try_acquire([bot, chat]) > 0  # refused by the chat
    assert await limiter.try_acquire([bot]) == 0  # so the bot's send is still there


async def test_memory_burst_allowance_lets_exactly_burst_sends_through_at_once() -> None:
    limiter = MemoryRateLimiter()
    limit = Limit("facebook:1", RATE, burst=3)
    assert [await limiter.try_acquire([limit]) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert await limiter.try_acquire([limit]) > 0


async def test_memory_acquire_returns_the_seconds_it_waited() -> None:
    limiter = MemoryRateLimiter()
    limit = Limit("vk:1", RATE)
    assert await limiter.acquire([limit]) == 0.0  # nothing to wait for

    started = time.monotonic()
    waited = await limiter.acquire([limit])
    elapsed = time.monotonic() - started
    # The rest of the interval since the first send: more than nothing, no more than one interval
    # (what the limiter reports, not a timing bound), and it was really waited.
    assert 0 < waited <= limit.interval + 1e-6
    assert elapsed >= waited - 1e-6


# -- on Redis (the distributed mode) -------------------------------------------------------------


def assert_held_to(limit: Limit, taken: Sequence[tuple[float, float]], sends: int) -> None:
    """`sends` sends under `limit`, none faster than it allows."""
    assert len(taken) == sends
    in_window = most_certainly_in_window(taken, 1.0 - CLOCK_SLACK_S)
    upper_times = [after for _, after in taken]
    assert in_window <= gcra_allows(limit, 1.0 - CLOCK_SLACK_S) == 20, (
        f"{in_window} sends within one second ({max_in_window(upper_times)} by their replies)"
    )
    first_before = min(before for before, _ in taken)
    last_after = max(after for _, after in taken)
    assert last_after - first_before >= at_least_s(limit, sends) - CLOCK_SLACK_S


@pytest.mark.redis
async def test_redis_burst_never_exceeds_the_rate_in_any_second(
    redis_url: str, redis_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    limiter = RecordingLimiter(RedisRateLimiter(client, redis_prefix))
    limit = Limit("vk:1", RATE)
    try:
        for _ in range(BURST_SENDS):
            await limiter.acquire([limit])
    finally:
        await client.aclose()

    assert_held_to(limit, limiter.taken, BURST_SENDS)


@pytest.mark.redis
async def test_redis_limit_holds_across_processes(redis_url: str, redis_prefix: str) -> None:
    processes, each = 3, BURST_SENDS // 3
    limit = Limit("telegram:42", RATE)
    senders = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.helpers.rate_limited_sender",
            redis_url,
            redis_prefix,
            limit.key,
            str(limit.per_second),
            str(each),
            str(processes),
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
        )
        for _ in range(processes)
    ]
    try:
        outputs = [await asyncio.wait_for(s.communicate(), 60) for s in senders]
    finally:
        for sender in senders:
            if sender.returncode is None:
                sender.kill()
                await sender.wait()
    assert [sender.returncode for sender in senders] == [0] * processes
    per_process = [[(b, a) for b, a in json.loads(stdout)] for stdout, _ in outputs]
    assert [len(taken) for taken in per_process] == [each] * processes

    union = [(send, n) for n, taken in enumerate(per_process) for send in taken]
    assert_held_to(limit, [send for send, _ in union], BURST_SENDS)
    # They really contended: in the order taken, the sends of the processes interleave.
    order = [n for _, n in sorted(union)]
    switches = sum(1 for x, y in itertools.pairwise(order) if x != y)
    assert switches > processes - 1, order


@pytest.mark.redis
async def test_redis_limit_state_survives_a_new_client_and_limiter(
    redis_url: str, redis_prefix: str
) -> None:
    limit, slow = Limit("vk:1", RATE), Limit("vk:1:slow", 0.1)
    first_client = aioredis.Redis.from_url(redis_url)
    first = RecordingLimiter(RedisRateLimiter(first_client, redis_prefix))
    for _ in range(BURST_SENDS // 2):
        await first.acquire([limit])
    slow_limiter = RecordingLimiter(RedisRateLimiter(first_client, redis_prefix))
    await slow_limiter.acquire([slow])
    await first_client.aclose()

    second_client = aioredis.Redis.from_url(redis_url)
    try:
        second = RecordingLimiter(RedisRateLimiter(second_client, redis_prefix))
        wait = await second.try_acquire([slow])
        probed_after = time.time()
        # The slow limit's one send is still counted: its 10 s interval runs from that send.
        ((slow_taken_before, _),) = slow_limiter.taken
        assert wait > 0
        assert wait >= slow.interval - (probed_after - slow_taken_before) - CLOCK_SLACK_S
        # (Under another prefix the same limit is free: the refusal was the shared state.)
        other = RedisRateLimiter(second_client, f"{redis_prefix}:other")
        assert await other.try_acquire([slow]) == 0

        for _ in range(BURST_SENDS - BURST_SENDS // 2):
            await second.acquire([limit])
    finally:
        await second_client.aclose()

    assert_held_to(limit, first.taken + second.taken, BURST_SENDS)


class CountingLimiter(MemoryRateLimiter):
    """The memory limiter, counting how often it is asked."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    async def try_acquire_naming(self, limits: Sequence[Limit]) -> tuple[float, int]:
        self.asked += 1
        return await super().try_acquire_naming(limits)


async def test_chats_waiting_for_the_shared_limit_ask_about_once_a_send_not_once_each() -> None:
    limiter = CountingLimiter()
    shared = Limit("vk:1", 200.0)
    sends = 40

    await asyncio.gather(*(limiter.acquire([shared]) for _ in range(sends)))

    # each send: the ask that took it, and at most one that learnt how long to wait
    assert limiter.asked <= 2 * sends


async def test_a_chat_waiting_for_its_own_limit_does_not_hold_up_the_other_chats() -> None:
    limiter = MemoryRateLimiter()
    bot = Limit("telegram:1", 1000.0)
    busy, free = Limit("telegram:1:chat:7", 0.5), Limit("telegram:1:chat:8", 0.5)
    await limiter.acquire([bot, busy])  # chat 7's next send waits two seconds
    waiting = asyncio.ensure_future(limiter.acquire([bot, busy]))
    await asyncio.sleep(0.05)

    started = time.monotonic()
    await asyncio.wait_for(limiter.acquire([bot, free]), 1.0)

    assert time.monotonic() - started < 1.0 and not waiting.done()
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting


async def test_redis_names_the_limit_a_refused_send_waits_for(
    redis_url: str, redis_prefix: str
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    try:
        limiter = RedisRateLimiter(client, redis_prefix)
        bot, chat = Limit("telegram:1", RATE), Limit("telegram:1:chat:7", 1.0)
        assert await limiter.try_acquire_naming([bot, chat]) == (0.0, -1)

        wait, needs = await limiter.try_acquire_naming([bot, chat])

        assert wait > 0 and needs == 1  # the chat's, not the bot's
    finally:
        await client.aclose()
