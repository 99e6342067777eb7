"""Helpers of the bus tests (test_bus_contract.py, test_bus_redis.py): reading entries back,
running consumers until they are done, waiting for a condition; a bus that can be made
unreachable (the outbox's tests)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import orjson

from bridge.bus import BusEntry
from bridge.bus.memory import MemoryBus
from bridge.domain import AuthorKind, Network, OutboundMessage


def message_id(entry: BusEntry) -> str:
    return str(orjson.loads(entry.payload)["network_message_id"])


def conversation_and_seq(entry: BusEntry) -> tuple[str, int]:
    """(chat, n) of the entry of `tests.factories.inbound(chat, n)`."""
    message = orjson.loads(entry.payload)
    return message["chat_id"], int(message["network_message_id"].rsplit("-", 1)[1])


def reply(network: Network, chat: int, n: int) -> OutboundMessage:
    """An agent's reply number `n` in `chat`; its text is `n`, its key `<network>-<chat>-<n>`."""
    return OutboundMessage(
        message_id=n,
        conversation_id=chat,
        network=network,
        chat_id=str(chat),
        text=str(n),
        idempotency_key=f"{network.value}-{chat}-{n}",
        author_kind=AuthorKind.AGENT,
    )


async def eventually(check: Callable[[], Awaitable[bool]], limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not await check():
        assert time.monotonic() < deadline, f"not within {limit_s} s: {what}"
        await asyncio.sleep(0.05)


async def run_until(stop: asyncio.Event, *consumers: asyncio.Future[None], limit_s: float) -> None:
    """Lets the consumers run until `stop` is set (at most `limit_s`), then waits for them."""
    try:
        await asyncio.wait_for(stop.wait(), limit_s)
    finally:
        stop.set()
        await asyncio.gather(*consumers)


class FlakyBus(MemoryBus):
    """The in-process bus that can be made unreachable for outbound messages, as Redis is while
    it restarts: a reply committed meanwhile is stored, but not published."""

    down = False

    async def publish_outbound_raw(
        self, payloads_by_shard: dict[tuple[Network, int], list[bytes]]
    ) -> None:
        if self.down:
            raise ConnectionError("the bus cannot be reached")
        await super().publish_outbound_raw(payloads_by_shard)
