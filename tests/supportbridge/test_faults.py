"""The distributed mode under faults, with real processes: customers on three emulated networks
write 20,000 messages over 2,000 conversations while core processes are killed with SIGKILL,
Redis (AOF on) and PostgreSQL are restarted, every network answers 30 % of calls with its
rate-limit error or a 5xx, and every inbound shard gets poisoned entries (a text with U+0000,
which PostgreSQL refuses, and entries no pipeline can read). A tenth of the conversations are
public threads: comments under a post of the brand's (VK wall, Facebook Page, Telegram channel),
a fifth of which an agent answers in public meanwhile. Afterwards every message and comment is
stored once, in order, in its conversation (one per post), every reply has reached its customer
once (a public one under its thread), and the poison is stored cleaned or dead-lettered: no
shard stalled.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson
import pytest
import sqlalchemy as sa
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.cluster import (
    INBOUND_SHARDS,
    WARM_UP_ID,
    Cluster,
    Customer,
    Customers,
    cluster,
    count_rows,
)
from bridge.bus.redis import RedisBus
from bridge.domain import DeliveryStatus, Direction, Network
from bridge.inbox.actions import reply_as_agent
from bridge.inbox.agents import add_agent
from bridge.store.engine import make_engine
from bridge.store.models import conversations, messages

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.redis]

CONVERSATIONS = 2_000
PER_CONVERSATION = 10
TOTAL = CONVERSATIONS * PER_CONVERSATION
PUBLIC_EVERY = 10  # every tenth conversation is a public thread
# the agent answers every fifth thread: Telegram lets a bot post 20 a minute in one group
ANSWER_EVERY = 5
WRITE_RATE = 500.0
FAULT_SHARE = 0.3
LIMIT_S = 420.0
STORED_INBOUND = "SELECT count(*) FROM messages WHERE text LIKE 'Question %'"
QUEUED_OUTBOUND = "SELECT count(*) FROM messages WHERE delivery_status = 'queued'"
SENT_OUTBOUND = "SELECT count(*) FROM messages WHERE delivery_status = 'sent'"
SEQUENCE = re.compile(r"Question (\d+) from")
POISON_CHATS = WARM_UP_ID + 1_000  # above WARM_UP_ID: not counted as customers' conversations
# what the inbox may meet while the database or Redis restarts
UNREACHABLE = (OSError, TimeoutError, sa.exc.DBAPIError, RedisError)


@dataclass
class Chaos:
    """Faults, each once the store holds a share of the messages, so they hit a busy system."""

    cluster: Cluster
    done: list[str]

    async def kill_a_core(self) -> None:
        victim = self.cluster.roles.cores[0]
        await asyncio.to_thread(self.cluster.roles.kill_core, victim)
        self.cluster.roles.start_core()

    async def restart_redis(self) -> None:
        await asyncio.to_thread(self.cluster.redis.restart)

    async def restart_postgres(self) -> None:
        await asyncio.to_thread(self.cluster.postgres.restart)

    async def poison_every_shard(self) -> None:
        bus = RedisBus(self.cluster.redis.url, INBOUND_SHARDS)
        try:
            await bus.publish_inbound_raw(
                {shard: poisoned_entries(shard) for shard in range(INBOUND_SHARDS)}
            )
        finally:
            await bus.close()

    async def stored(self) -> int:
        return await count_rows(self.cluster.database_url, STORED_INBOUND) or 0

    async def run(self) -> None:
        plan: list[tuple[float, str, Callable[[], Awaitable[None]]]] = [
            (0.05, "poison every shard", self.poison_every_shard),
            (0.10, "kill -9 a core", self.kill_a_core),
            (0.20, "restart Redis", self.restart_redis),
            (0.35, "kill -9 a core", self.kill_a_core),
            (0.50, "restart PostgreSQL", self.restart_postgres),
            (0.65, "kill -9 a core", self.kill_a_core),
            (0.80, "restart Redis", self.restart_redis),
        ]
        for share, name, action in plan:
            while await self.stored() < share * TOTAL:  # noqa: ASYNC110 - the store has no event
                await asyncio.sleep(0.2)
            await action()
            self.done.append(f"{name} at {share:.0%}")


@dataclass
class Agent:
    """An agent in the inbox who answers every public thread once, in public under its first
    comment, while the faults go on. A reply whose action failed (the database or Redis was
    restarting) is looked for in the thread and written again if it was not stored; one that
    was stored but not published is the product's to send (its outbox sweep), not the agent's."""

    cluster: Cluster
    threads: list[Customer]

    @staticmethod
    def text(thread: str) -> str:
        return f"Answer to {thread}"

    async def answer_all(self) -> None:
        engine = make_engine(self.cluster.database_url)
        bus = RedisBus(self.cluster.redis.url, INBOUND_SHARDS)
        try:
            agent_id = (await add_agent(engine, "public-agent", "a long password")).id
            waiting = {thread.chat_id for thread in self.threads}
            while waiting:
                try:
                    found = await self._threads(engine, waiting)
                except UNREACHABLE:
                    found = []
                for chat_id, conversation_id, comment_id, reply_id in found:
                    if reply_id is None:
                        try:
                            await reply_as_agent(
                                engine,
                                bus,
                                conversation_id,
                                agent_id,
                                self.text(chat_id),
                                reply_to=comment_id,
                            )
                        except UNREACHABLE:
                            continue  # stored or not: the next look tells
                    waiting.discard(chat_id)
                await asyncio.sleep(0.5)
        finally:
            await bus.close()
            await engine.dispose()

    @staticmethod
    async def _threads(
        engine: AsyncEngine, chats: set[str]
    ) -> list[tuple[str, int, int, int | None]]:
        """The threads among `chats` whose first comment is stored: the chat, the conversation,
        that comment, and the agent's reply if one is stored."""
        m, c, r = messages.c, conversations.c, messages.alias("reply").c
        reply = (
            sa.select(r.id)
            .where(r.conversation_id == c.id, r.direction == Direction.OUTBOUND)
            .limit(1)
            .scalar_subquery()
        )
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(c.chat_id, c.id, m.id, reply)
                .join(messages, m.conversation_id == c.id)
                .where(c.public, c.chat_id.in_(chats), m.text.startswith("Question 0 from"))
            )
            return [(row[0], row[1], row[2], row[3]) for row in rows]


def poisoned_entries(shard: int) -> list[bytes]:
    """A message whose text holds U+0000 (it must be stored, cleaned) and two entries no pipeline
    can read (they must be dead-lettered), as a broken or hostile worker could publish them."""
    chat = str(POISON_CHATS + shard)
    message = {
        "network": "telegram",
        "network_message_id": f"poison-{shard}",
        "chat_id": chat,
        "user_id": chat,
        "text": f"Poison\u0000 {shard}",
    }
    return [
        orjson.dumps(message),
        b"{not json",
        orjson.dumps(message | {"network_message_id": f"late-{shard}", "received_at": 1e13}),
    ]


async def settle(cluster: Cluster) -> None:
    """Until everything written is stored and every reply is sent (or the time is up)."""
    deadline = time.monotonic() + LIMIT_S
    while time.monotonic() < deadline:
        stored = await count_rows(cluster.database_url, STORED_INBOUND)
        queued = await count_rows(cluster.database_url, QUEUED_OUTBOUND)
        sent = await count_rows(cluster.database_url, SENT_OUTBOUND)
        delivered = sum(map(len, cluster.networks.delivered().values()))
        if stored == TOTAL and queued == 0 and sent == delivered:
            return
        print(
            f"stored {stored}/{TOTAL}, replies queued {queued}, sent {sent}, received {delivered}"
        )
        await asyncio.sleep(1)


async def test_killed_cores_restarted_servers_and_failing_networks_lose_nothing() -> None:
    settings = {"SB_SHARD_LEASE_MS": "2000", "SB_CLAIM_IDLE_MS": "2000"}
    async with cluster(cores=2, settings=settings) as running:
        running.networks.fail(FAULT_SHARE)
        customers = Customers(running.networks, CONVERSATIONS, public_every=PUBLIC_EVERY)
        threads = [person for person in customers.people if person.post is not None]
        chaos = Chaos(running, [])
        started = time.monotonic()
        await asyncio.gather(
            customers.write_all(PER_CONVERSATION, WRITE_RATE),
            chaos.run(),
            Agent(running, threads[::ANSWER_EVERY]).answer_all(),
        )
        await settle(running)
        crashed = running.roles.crashed()
        by_person = {(p.network, p.chat_id): p for p in customers.people}
        stored, outbound, public = await read_store(running.database_url, set(by_person))
        delivered = {
            key: texts for key, texts in running.networks.delivered().items() if key in by_person
        }
        fired = sum(
            rule.fired
            for plan in (
                running.networks.telegram.faults,
                running.networks.vk.faults,
                running.networks.facebook.faults,
            )
            for rule in plan.rules
        )
        elapsed = time.monotonic() - started
        running_url = running.database_url
        poison = await read_poison(running_url)
        exit_codes = running.roles.stop()

    stored_count = sum(map(len, stored.values()))
    missing = {
        key: sorted(set(range(PER_CONVERSATION)) - set(stored.get(key, []))) for key in by_person
    }
    lost = sum(map(len, missing.values()))
    lost_by_network = Counter(key[0].value for key, seqs in missing.items() for _ in seqs)
    doubled = stored_count - sum(len(set(seqs)) for seqs in stored.values())
    replies_doubled = sum(max(0, len(texts) - 1) for texts in delivered.values())
    replies_lost = sum(1 for key in outbound if not delivered.get(key))
    public_keys = {(p.network, p.chat_id) for p in threads}
    answered = {(p.network, p.chat_id) for p in threads[::ANSWER_EVERY]}
    print(
        f"\nin {elapsed:.0f} s, {fired} injected network faults; {', '.join(chaos.done)}\n"
        f"inbound: sent {TOTAL} stored {stored_count} lost {lost} doubled {doubled}"
        f" (lost by network: {dict(lost_by_network)})\n"
        f"replies: stored {len(outbound)} delivered {sum(map(len, delivered.values()))} "
        f"lost {replies_lost} doubled {replies_doubled}; "
        f"{len(threads)} public threads, {len(threads) * PER_CONVERSATION} comments,"
        f" {len(answered)} answered"
    )
    poison_stored, letters = poison
    print(f"poison: {poison_stored} cleaned texts stored, {letters} dead letters")
    assert poison_stored == INBOUND_SHARDS, "a text with U+0000 is stored, without it"
    assert letters >= 2 * INBOUND_SHARDS, "what no pipeline can read is dead-lettered"
    assert not crashed, crashed
    assert exit_codes == [0] * len(exit_codes), "every role stops cleanly on SIGTERM"
    assert len(chaos.done) == 7, "every fault was injected during the run"
    assert fired > 0.2 * (TOTAL / 100 + CONVERSATIONS), "the networks failed a good share of calls"
    assert (lost, doubled) == (0, 0)
    assert all(seqs == list(range(PER_CONVERSATION)) for seqs in stored.values()), (
        "each conversation's messages are stored in the order they were written"
    )
    assert public == public_keys, "each post's comments are one public thread"
    assert set(outbound) == set(by_person) - public_keys | answered, (
        "every private conversation got its handoff notice, every answered thread its answer"
    )
    assert all(statuses == [DeliveryStatus.SENT] for statuses in outbound.values())
    assert (replies_lost, replies_doubled) == (0, 0)
    assert set(delivered) == set(outbound)
    assert all(delivered[key] == [Agent.text(key[1])] for key in answered), (
        "each public answer was posted once, under its own post"
    )


async def read_poison(url: str) -> tuple[int, int]:
    """The poisoned texts stored (cleaned of U+0000), and the dead letters."""
    cleaned = await count_rows(url, "SELECT count(*) FROM messages WHERE text LIKE 'Poison %'")
    letters = await count_rows(url, "SELECT count(*) FROM dead_letters")
    return cleaned or 0, letters or 0


async def read_store(
    url: str, chats: set[tuple[Network, str]]
) -> tuple[
    dict[tuple[Network, str], list[int]],
    dict[tuple[Network, str], list[DeliveryStatus]],
    set[tuple[Network, str]],
]:
    """Of the customers' conversations (`chats`): each one's message numbers in stored order,
    its replies' status, and which are public threads."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(
                        conversations.c.network,
                        conversations.c.chat_id,
                        conversations.c.public,
                        messages.c.direction,
                        messages.c.text,
                        messages.c.delivery_status,
                    )
                    .join(conversations, messages.c.conversation_id == conversations.c.id)
                    .order_by(messages.c.id)
                )
            ).all()
    finally:
        await engine.dispose()
    stored: dict[tuple[Network, str], list[int]] = {}
    outbound: dict[tuple[Network, str], list[DeliveryStatus]] = {}
    public: set[tuple[Network, str]] = set()
    for network, chat_id, is_public, direction, text, status in rows:
        key = (Network(network), str(chat_id))
        if key not in chats:
            continue  # the warm-up's and the poison's
        if is_public:
            public.add(key)
        if direction == Direction.INBOUND:
            found = SEQUENCE.match(text or "")
            assert found, f"an inbound message that no customer wrote: {text!r}"
            stored.setdefault(key, []).append(int(found[1]))
        else:
            outbound.setdefault(key, []).append(DeliveryStatus(status))
    return stored, outbound, public
