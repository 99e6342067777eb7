"""The distributed mode's pollers: one process at a time polls a network (`RedisBus.lead`), and
neither a failure of the poll nor losing Redis mid-batch ends the process or loses an update."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from bots.telegram import TelegramChannel
from bridge.backends.redis import RedisBackend
from bridge.bus.redis import RedisBus
from bridge.domain import InboundMessage
from emulators.telegram import TelegramEmulator
from supportbridge.runtime import poll
from tests.conftest import serve

pytestmark = pytest.mark.redis

TOKEN = "123456:ABC-emulator"


@pytest.fixture
async def telegram() -> AsyncIterator[tuple[TelegramEmulator, str]]:
    emulator = TelegramEmulator([TOKEN])
    async with serve(emulator.app) as api_url:
        yield emulator, api_url


async def test_a_led_role_whose_work_fails_is_taken_up_again(
    redis_url: str, redis_prefix: str
) -> None:
    bus = RedisBus(redis_url, 1, lease_ms=600, prefix=redis_prefix)
    stop = asyncio.Event()
    runs: list[int] = []

    async def work(until: asyncio.Event) -> None:
        runs.append(len(runs))
        if len(runs) == 1:
            raise RuntimeError("a bug in the poll")
        stop.set()
        await until.wait()

    await asyncio.wait_for(bus.lead("poll:telegram", "p0", work, stop), 10)
    await bus.close()

    assert runs == [0, 1]


async def test_a_poller_that_loses_redis_while_stopping_leaves_its_updates_to_the_next(
    telegram: tuple[TelegramEmulator, str],
    redis_url: str,
    redis_prefix: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    emulator, api_url = telegram
    emulator.customer(501, first_name="Olga")
    emulator.write_text(501, "Где мой заказ?")
    bus = RedisBus(redis_url, 1, lease_ms=600, prefix=redis_prefix)
    attempts: list[int] = []

    async def redis_down(messages: Sequence[InboundMessage]) -> None:
        attempts.append(len(messages))
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6379")

    bus.publish_inbound = redis_down  # type: ignore[method-assign]
    first = TelegramChannel(TOKEN, api_url=api_url, poll_timeout_s=1)
    stop = asyncio.Event()
    polling = asyncio.ensure_future(poll(first, RedisBackend(bus), stop))
    while not attempts:  # noqa: ASYNC110 - the poller has no event to wait on
        await asyncio.sleep(0.05)
    stop.set()
    await asyncio.wait_for(polling, 10)
    await first.close()
    await bus.close()

    received: list[InboundMessage] = []
    got_it = asyncio.Event()

    async def collect(messages: Sequence[InboundMessage]) -> None:
        received.extend(messages)
        got_it.set()

    second = TelegramChannel(TOKEN, api_url=api_url, poll_timeout_s=1)
    next_poll = asyncio.ensure_future(second.poll(collect, got_it))
    await asyncio.wait_for(next_poll, 10)
    await second.close()

    assert [r.levelname for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert [m.text for m in received] == ["Где мой заказ?"]
