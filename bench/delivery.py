"""`supportbridge bench delivery`: outbound throughput against the Telegram emulator, limits on.

Real `supportbridge bot telegram` processes (the senders) share one Redis rate limiter and send
to the emulator on loopback; the emulator's own receive time of every message is the evidence
that together they keep to ~30 messages/s per bot and 1/s per chat.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import redis.asyncio as aioredis
import sqlalchemy as sa
from aiohttp import web

from bench.pipeline import BENCH_DATABASE_URL, BENCH_REDIS_URL, fresh_postgres_database
from bench.ports import free_port
from bridge.bus.redis import RedisBus
from bridge.domain import (
    AuthorKind,
    ConversationState,
    DeliveryStatus,
    Direction,
    Network,
    OutboundMessage,
)
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.models import conversations, customers, identities, messages, utcnow
from emulators.telegram import TelegramEmulator

TOKEN = "700000:bench-delivery"


@dataclass(frozen=True)
class DeliveryOptions:
    messages: int
    chats: int
    senders: int


def max_in_window(times: Sequence[float], window_s: float = 1.0) -> int:
    """The most events inside any window of `window_s` (a sliding window over sorted times)."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + window_s) - i for i, t in enumerate(ordered)), default=0
    )


async def queue_replies(options: DeliveryOptions) -> list[OutboundMessage]:
    """Conversations and queued agent replies in the store, as the inbox would leave them."""
    await fresh_postgres_database(BENCH_DATABASE_URL)
    engine = make_engine(BENCH_DATABASE_URL)
    now = utcnow()
    queued: list[OutboundMessage] = []
    async with engine.begin() as conn:
        for chat in range(1, options.chats + 1):
            customer_id = (
                await conn.execute(
                    sa.insert(customers).values(created_at=now).returning(customers.c.id)
                )
            ).scalar_one()
            identity_id = (
                await conn.execute(
                    sa.insert(identities)
                    .values(
                        customer_id=customer_id,
                        network=Network.TELEGRAM,
                        external_user_id=str(chat),
                        created_at=now,
                    )
                    .returning(identities.c.id)
                )
            ).scalar_one()
            conversation_id = (
                await conn.execute(
                    sa.insert(conversations)
                    .values(
                        network=Network.TELEGRAM,
                        chat_id=str(chat),
                        customer_id=customer_id,
                        identity_id=identity_id,
                        state=ConversationState.ASSIGNED,
                        created_at=now,
                        last_message_at=now,
                    )
                    .returning(conversations.c.id)
                )
            ).scalar_one()
            for n in range(options.messages // options.chats):
                key = f"bench-{chat}-{n}"
                message_id = (
                    await conn.execute(
                        sa.insert(messages)
                        .values(
                            conversation_id=conversation_id,
                            network=Network.TELEGRAM,
                            direction=Direction.OUTBOUND,
                            author_kind=AuthorKind.AGENT,
                            text=f"reply {n}",
                            idempotency_key=key,
                            delivery_status=DeliveryStatus.QUEUED,
                            created_at=now,
                        )
                        .returning(messages.c.id)
                    )
                ).scalar_one()
                queued.append(
                    OutboundMessage(
                        message_id=message_id,
                        conversation_id=conversation_id,
                        network=Network.TELEGRAM,
                        chat_id=str(chat),
                        text=f"reply {n}",
                        idempotency_key=key,
                        author_kind=AuthorKind.AGENT,
                    )
                )
    await engine.dispose()
    return queued


@contextmanager
def sender_processes(api_url: str, count: int) -> Iterator[None]:
    processes = []
    for _ in range(count):
        env = os.environ | {
            "SB_CONFIG": os.devnull,
            "SB_DATABASE_URL": BENCH_DATABASE_URL,
            "SB_REDIS_URL": BENCH_REDIS_URL,
            "SB_TELEGRAM_TOKEN": TOKEN,
            "SB_TELEGRAM_API_URL": api_url,
            "SB_HTTP_PORT": str(free_port()),
            "SB_LOG_LEVEL": "WARNING",
        }
        processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "supportbridge.cli", "bot", "telegram"], env=env
            )
        )
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=20)


async def run_delivery_bench(options: DeliveryOptions) -> dict[str, object]:
    emulator = TelegramEmulator([TOKEN])
    for chat in range(1, options.chats + 1):
        emulator.customer(chat, first_name=f"Customer {chat}")
        emulator.write_text(chat, "hello")  # a bot can only write to a user who wrote first
    runner = web.AppRunner(emulator.app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    flush = aioredis.Redis.from_url(BENCH_REDIS_URL)
    await flush.flushdb()
    await flush.aclose()
    queued = await queue_replies(options)
    # As many shards as the senders use (their default setting): chats spread over all of them.
    bus = RedisBus(BENCH_REDIS_URL, Settings().inbound_shards)
    try:
        with sender_processes(f"http://127.0.0.1:{port}", options.senders):
            started = time.time()
            await bus.publish_outbound(queued)
            while len(emulator.sent_messages()) < len(queued):
                await asyncio.sleep(0.2)
                print(f"  delivered {len(emulator.sent_messages())}/{len(queued)}", file=sys.stderr)
    finally:
        await bus.close()
        await runner.cleanup()
    sent = emulator.sent_messages()
    times = [m.received_at for m in sent]
    per_chat: dict[int, list[float]] = {}
    for message in sent:
        per_chat.setdefault(message.chat_id, []).append(message.received_at)
    gaps = [
        b - a for ts in per_chat.values() for a, b in zip(sorted(ts), sorted(ts)[1:], strict=False)
    ]
    in_order = all(
        [m.text for m in sent if m.chat_id == chat] == [f"reply {n}" for n in range(len(ts))]
        for chat, ts in per_chat.items()
    )
    duration = max(times) - started
    return {
        "messages": len(queued),
        "delivered": len(sent),
        "chats": options.chats,
        "sender_processes": options.senders,
        "seconds": round(duration, 2),
        "msgs_per_s": round(len(sent) / duration, 1),
        "max_per_bot_in_any_1s": max_in_window(times),
        "max_per_chat_in_any_1s": max(max_in_window(ts) for ts in per_chat.values()),
        "min_gap_in_a_chat_s": round(min(gaps), 3),
        "in_order_per_chat": in_order,
    }


async def run(options: DeliveryOptions) -> None:
    print(json.dumps(await run_delivery_bench(options)), flush=True)
