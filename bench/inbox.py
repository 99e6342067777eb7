"""`supportbridge bench inbox`: how long the inbox takes to serve its heaviest pages on
PostgreSQL — the list with many conversations (first page, a page deep in the list, searches),
one long conversation and one long public thread.

Fills its own database (`sb_bench_inbox`, recreated) with N conversations (a customer, an
identity, K messages each, two in three of them Russian, worded from a support vocabulary in its
word forms), one conversation of M messages and a public thread of M comments (a tenth of them
answered privately), then times real HTTP requests to a running inbox (server time: the request
measured inside the server, template included).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import sqlalchemy as sa
from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bench.pipeline import fresh_postgres_database, percentile
from bridge.bus.memory import MemoryBus
from bridge.domain import AuthorKind, ConversationState, DeliveryStatus, Direction, Network
from bridge.inbox.agents import add_agent
from bridge.settings import Settings
from bridge.store.engine import make_engine
from bridge.store.models import conversations, customers, identities, messages, utcnow
from bridge.web.app import add_inbox
from bridge.web.auth import issue_api_token
from bridge.web.server import make_app
from bridge.web.timing import server_time_ms

BENCH_DATABASE_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/sb_bench_inbox"
CHUNK = 5000
Params = dict[str, str]


# what customers of a shop write, in several forms of each word: searches must find the others
RUSSIAN = (
    "заказ заказа заказы заказом доставка доставки доставку оплата оплаты оплатил карта карты "
    "картой пароль пароля роутер роутера интернет возврат возврата деньги денег курьер курьера "
    "адрес адреса тариф тарифа скидка скидку счёт счета приложение приложении не пришёл пришла "
    "где когда почему можно помогите пожалуйста сломался списали дважды"
).split()
ENGLISH = (
    "order orders ordered delivery delivered payment payments paid card cards password router "
    "internet refund refunds money courier address plan discount invoice app where when why "
    "please help broken charged twice"
).split()
# (name, q): a common word, two words, a word in English, a customer's name, a network id,
# a word nobody wrote
SEARCHES = (
    ("common_word", "заказы"),
    ("two_words", "возврат денег"),
    ("english_word", "refunded"),
    ("customer_name", "Customer 4242"),
    ("network_id", "4242"),
    ("no_match", "зонтик"),
)


@dataclass(frozen=True)
class InboxBenchOptions:
    conversations: int = 10_000
    messages_per_conversation: int = 3
    long_conversation: int = 2_000
    requests: int = 30


async def fill(engine: AsyncEngine, options: InboxBenchOptions) -> tuple[int, int]:
    """The open conversations, the long one, then a public thread as long; returns the ids of
    the long conversation and of the thread."""
    rng = random.Random(0)
    now = utcnow()
    states = [ConversationState.WAITING, ConversationState.ASSIGNED, ConversationState.BOT]
    networks = list(Network)
    async with engine.begin() as conn:
        for start in range(0, options.conversations + 1, CHUNK):
            n = min(CHUNK, options.conversations + 1 - start)
            ids = range(start, start + n)
            customer_ids = (
                (
                    await conn.execute(
                        sa.insert(customers).returning(
                            customers.c.id, sort_by_parameter_order=True
                        ),
                        [{"display_name": f"Customer {i}", "created_at": now} for i in ids],
                    )
                )
                .scalars()
                .all()
            )
            identity_ids = (
                (
                    await conn.execute(
                        sa.insert(identities).returning(
                            identities.c.id, sort_by_parameter_order=True
                        ),
                        [
                            {
                                "customer_id": cid,
                                "network": networks[i % len(networks)],
                                "external_user_id": str(i),
                                "display_name": f"Customer {i}",
                                "language": "ru" if i % 3 else "en",
                                "created_at": now,
                            }
                            for i, cid in zip(ids, customer_ids, strict=True)
                        ],
                    )
                )
                .scalars()
                .all()
            )
            conversation_ids = (
                (
                    await conn.execute(
                        sa.insert(conversations).returning(
                            conversations.c.id, sort_by_parameter_order=True
                        ),
                        [
                            {
                                "network": networks[i % len(networks)],
                                "chat_id": str(i),
                                "customer_id": cid,
                                "identity_id": iid,
                                "state": states[i % len(states)],
                                "language": "ru" if i % 3 else "en",
                                "created_at": now,
                                "last_message_at": now
                                - dt.timedelta(seconds=rng.randrange(86_400)),
                                "awaiting_since": now - dt.timedelta(seconds=rng.randrange(7_200)),
                                "handoff_reason": "low_confidence",
                            }
                            for i, cid, iid in zip(ids, customer_ids, identity_ids, strict=True)
                        ],
                    )
                )
                .scalars()
                .all()
            )
            await conn.execute(
                sa.insert(messages),
                [
                    _message(cid, networks[i % len(networks)], k, now, _words(rng, i))
                    for i, cid in zip(ids, conversation_ids, strict=True)
                    for k in range(options.messages_per_conversation)
                ],
            )
        long_id = conversation_ids[-1]
        network = networks[(options.conversations) % len(networks)]
        for start in range(0, options.long_conversation, CHUNK):
            await conn.execute(
                sa.insert(messages),
                [
                    _message(long_id, network, k, now, _words(rng, k))
                    for k in range(start, min(options.long_conversation, start + CHUNK))
                ],
            )
        thread_id = await _public_thread(
            conn, options.long_conversation, long_id, customer_ids[-1], identity_ids[-1], now, rng
        )
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        # as autovacuum leaves tables that took many inserts: visible to index-only scans
        await conn.execute(sa.text("VACUUM ANALYZE"))
    return int(long_id), thread_id


async def _public_thread(
    conn: AsyncConnection,
    comments: int,
    private_id: int,
    customer_id: int,
    identity_id: int,
    now: dt.datetime,
    rng: random.Random,
) -> int:
    """A post's thread of `comments` comments and the brand's public replies, every tenth comment
    answered privately in the conversation `private_id`; returns the thread's id."""
    network = Network.VK
    thread_id = (
        await conn.execute(
            sa.insert(conversations)
            .values(
                network=network,
                chat_id="wall-1_1",
                customer_id=customer_id,
                identity_id=identity_id,
                state=ConversationState.WAITING,
                created_at=now,
                last_message_at=now,
                public=True,
                post_text="Новый тариф с 1 декабря",
            )
            .returning(conversations.c.id)
        )
    ).scalar_one()
    comment_ids = []
    for start in range(0, comments, CHUNK):
        rows = [
            _message(thread_id, network, k, now, _words(rng, k))
            for k in range(start, min(comments, start + CHUNK))
        ]
        inserted = await conn.execute(
            sa.insert(messages).returning(messages.c.id, sort_by_parameter_order=True), rows
        )
        comment_ids += [
            i
            for i, row in zip(inserted.scalars(), rows, strict=True)
            if row["direction"] == Direction.INBOUND
        ]
    await conn.execute(
        sa.insert(messages),
        [
            {
                **_message(private_id, network, 1, now, "Напишите нам номер заказа"),
                "in_reply_to_id": i,
            }
            for i in comment_ids[::10]
        ],
    )
    return int(thread_id)


def _words(rng: random.Random, i: int) -> str:
    """A message of conversation `i`: Russian two times in three, as the conversation's language."""
    vocabulary = RUSSIAN if i % 3 else ENGLISH
    return " ".join(rng.choices(vocabulary, k=rng.randrange(4, 12)))


def _message(
    conversation_id: int, network: Network, k: int, now: dt.datetime, text: str
) -> dict[str, Any]:
    inbound = k % 2 == 0
    return {
        "conversation_id": conversation_id,
        "network": network,
        "direction": Direction.INBOUND if inbound else Direction.OUTBOUND,
        "author_kind": AuthorKind.CUSTOMER if inbound else AuthorKind.AGENT,
        "text": text,
        "delivery_status": None if inbound else DeliveryStatus.SENT,
        "created_at": now - dt.timedelta(seconds=10_000 - k),
    }


async def timed(
    session: aiohttp.ClientSession, url: str, token: str, n: int, **params: str
) -> dict[str, float]:
    """Server time of `n` requests; for the list API, also how many rows a page had."""
    server: list[float] = []
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(n):
        async with session.get(url, headers=headers, params=params) as response:
            assert response.status == 200, await response.text()
            body = await response.read()
            took = server_time_ms(response.headers)
            assert took is not None, "the inbox sent no Server-Timing"
            server.append(took)
    figures = {
        "p50_ms": round(percentile(server, 0.5), 1),
        "p95_ms": round(percentile(server, 0.95), 1),
        "max_ms": round(max(server), 1),
    }
    if url.endswith("/api/conversations"):
        figures["rows"] = len(orjson.loads(body)["conversations"])
    return figures


async def deep_cursor(session: aiohttp.ClientSession, base: str, token: str, pages: int) -> str:
    """The cursor of the page `pages` pages into the open conversations."""
    cursor = ""
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(pages):
        params = {"view": "open", **({"cursor": cursor} if cursor else {})}
        async with session.get(
            f"{base}/api/conversations", headers=headers, params=params
        ) as response:
            cursor = orjson.loads(await response.read())["next_cursor"]
    return cursor


async def run_inbox_bench(options: InboxBenchOptions) -> dict[str, object]:
    await fresh_postgres_database(BENCH_DATABASE_URL)
    engine = make_engine(BENCH_DATABASE_URL)
    try:
        started = time.perf_counter()
        long_id, thread_id = await fill(engine, options)
        filled_s = time.perf_counter() - started
        agent = await add_agent(engine, "bench", "bench-password")
        token = await issue_api_token(engine, agent.id, "bench")
        app = make_app()
        add_inbox(app, engine, MemoryBus(1), Settings(database_url=BENCH_DATABASE_URL))
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        base = f"http://127.0.0.1:{port}"
        try:
            async with aiohttp.ClientSession() as session:
                await timed(session, f"{base}/?view=open", token, 3)  # warm caches
                figures = {
                    "conversations": options.conversations,
                    "messages": options.conversations * options.messages_per_conversation
                    + options.long_conversation,
                    "list_all_open": await timed(
                        session, f"{base}/?view=open", token, options.requests
                    ),
                    "list_waiting": await timed(
                        session, f"{base}/?view=waiting", token, options.requests
                    ),
                    "list_api": await timed(
                        session, f"{base}/api/conversations", token, options.requests, view="open"
                    ),
                    "list_api_page_100": await timed(
                        session,
                        f"{base}/api/conversations",
                        token,
                        options.requests,
                        view="open",
                        cursor=await deep_cursor(session, base, token, 100),
                    ),
                    "search_api": {
                        name: await timed(
                            session,
                            f"{base}/api/conversations",
                            token,
                            options.requests,
                            view="open",
                            q=q,
                        )
                        for name, q in SEARCHES
                    },
                    "search_page_common_word": await timed(
                        session, f"{base}/", token, options.requests, view="open", q="заказы"
                    ),
                    "long_conversation_messages": options.long_conversation,
                    "conversation_page": await timed(
                        session, f"{base}/c/{long_id}", token, options.requests
                    ),
                    "conversation_api": await timed(
                        session, f"{base}/api/conversations/{long_id}", token, options.requests
                    ),
                    "public_thread_page": await timed(
                        session, f"{base}/c/{thread_id}", token, options.requests
                    ),
                    "public_thread_api": await timed(
                        session, f"{base}/api/conversations/{thread_id}", token, options.requests
                    ),
                    "fill_s": round(filled_s, 1),
                }
        finally:
            await runner.cleanup()
        return figures
    finally:
        await engine.dispose()


def heaviest_requests(base: str, long_id: int, thread_id: int) -> dict[str, tuple[str, Params]]:
    """The inbox's heaviest requests by name, as `bench load` times them beside its messages."""
    return {
        "list_all_open": (f"{base}/", {"view": "open"}),
        "list_api": (f"{base}/api/conversations", {"view": "open"}),
        "search_common_word": (f"{base}/api/conversations", {"view": "open", "q": "заказы"}),
        "conversation_page": (f"{base}/c/{long_id}", {}),
        "public_thread_page": (f"{base}/c/{thread_id}", {}),
    }


def run(options: InboxBenchOptions) -> dict[str, object]:
    return asyncio.run(run_inbox_bench(options))
