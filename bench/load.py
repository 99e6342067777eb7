"""`supportbridge bench load`: the distributed mode end to end under load, with 1 and then 2
core processes (or the counts asked for).

Customers write on the three emulated networks; the real `supportbridge bot` processes receive
(Telegram getUpdates, VK long poll, Messenger webhooks) and send, the real `supportbridge core`
processes store and decide, with the sample knowledge base answering. Measured per run:
throughput and latency from "the customer wrote" (the emulator took the message) to "stored and
decided" (the message's row, written in the transaction that also queues its reply), the
inbound streams' lag, and how fast the replies reached the customers under the networks' limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import sqlalchemy as sa

from bench.cluster import NETWORKS, WARM_UP_ID, Cluster, Customers, cluster, count_rows
from bench.cluster import inbound_backlog as stream_lag
from bench.cpu import CpuMeter, PeakMemory
from bench.inbox import InboxBenchOptions, Params, fill, heaviest_requests
from bench.pipeline import percentile
from bridge.domain import Direction, Network
from bridge.inbox.agents import add_agent
from bridge.knowledge.articles import seed_articles
from bridge.store.engine import make_engine
from bridge.store.models import conversations, messages
from bridge.web.auth import issue_api_token
from bridge.web.timing import server_time_ms

SAMPLE_KB = Path(__file__).resolve().parents[1] / "config" / "kb" / "sample.yaml"
STORED = "SELECT count(*) FROM messages WHERE text LIKE 'Question %'"
MARK = re.compile(r"Question (\d+) from")
LAG_SAMPLE_S = 0.25
INBOX_QUIET_ROUNDS = 20
# how often an open list fetches itself while messages keep coming (inbox.js's LIST_EVERY_MS)
LIST_EVERY_S = 2.0
# the agent going through the heaviest pages: a click a second, not back to back
CLICK_EVERY_S = 1.0
LIST_PAGES = "list_pages_of_the_agents"


@dataclass(frozen=True)
class LoadOptions:
    messages: int
    conversations: int
    rate: float | None
    cores: Sequence[int]
    bots: int
    # conversations filled in before the run (bench inbox's), whose inbox a web process serves
    # while the messages come; 0: no inbox
    inbox: int = 0
    # agents with the list open while the messages come, each refreshed as the live page does
    agents: int = 10
    limit_s: float = 900.0

    @property
    def deadline_s(self) -> float:
        """How long the messages may take to be stored: a soak's own length and then some."""
        if self.rate is None:
            return self.limit_s
        return max(self.limit_s, self.messages / self.rate * 1.5)


@dataclass
class Lag:
    samples: list[int] = field(default_factory=list)

    async def watch(self, running: Cluster, stop: asyncio.Event) -> None:
        while not stop.is_set():
            backlog = await stream_lag(running.redis.url)
            if backlog is not None:
                self.samples.append(backlog)
            await asyncio.sleep(LAG_SAMPLE_S)


async def stored_times(url: str) -> dict[tuple[Network, str, int], float]:
    """When each benchmark message was stored, by (network, chat, its number)."""
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.select(
                    conversations.c.network,
                    conversations.c.chat_id,
                    messages.c.text,
                    messages.c.created_at,
                )
                .join(conversations, messages.c.conversation_id == conversations.c.id)
                .where(messages.c.direction == Direction.INBOUND)
            )
            times = {}
            for network, chat_id, text, created_at in rows:
                found = MARK.match(text or "")
                if found and int(chat_id) < WARM_UP_ID:
                    times[(Network(network), str(chat_id), int(found[1]))] = created_at.timestamp()
            return times
    finally:
        await engine.dispose()


@dataclass
class InboxTimes:
    """Times of the inbox's heaviest requests, by name: as its client saw them, and as the web
    process measured them (its Server-Timing: the difference is waiting for the CPU or the
    network)."""

    requests: dict[str, tuple[str, Params]]
    tokens: list[str]  # one per agent
    times: dict[str, list[float]] = field(default_factory=dict)
    server_times: dict[str, list[float]] = field(default_factory=dict)

    async def rounds(
        self, n: int | None, stop: asyncio.Event | None = None, pause_s: float = 0.0
    ) -> None:
        """One agent asks every request once a round, `pause_s` after each: `n` rounds, or until
        `stop`."""
        done = 0
        async with self._session(self.tokens[0]) as http:
            while (n is None or done < n) and not (stop is not None and stop.is_set()):
                for name, (url, params) in self.requests.items():
                    await self._timed(http, name, url, params)
                    await asyncio.sleep(pause_s)
                done += 1

    async def open_lists(self, stop: asyncio.Event) -> None:
        """Each agent's list of open conversations fetched every LIST_EVERY_S, all at about the
        same moment (the live pages hear the same events), until `stop`."""
        url, params = self.requests["list_all_open"]

        async def agent(token: str) -> None:
            async with self._session(token) as http:
                began = time.monotonic()
                while not stop.is_set():
                    await self._timed(http, LIST_PAGES, url, params)
                    # the next tick of the shared clock, as a page fetching every 2 s keeps
                    ticks = (time.monotonic() - began) // LIST_EVERY_S + 1
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(
                            stop.wait(), began + ticks * LIST_EVERY_S - time.monotonic()
                        )

        await asyncio.gather(*(agent(token) for token in self.tokens[1:]))

    @staticmethod
    def _session(token: str) -> aiohttp.ClientSession:
        return aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})

    async def _timed(
        self, http: aiohttp.ClientSession, name: str, url: str, params: Params
    ) -> None:
        began = time.perf_counter()
        async with http.get(url, params=params) as response:
            await response.read()
            if response.status != 200:
                raise RuntimeError(f"{name}: the inbox answered {response.status}")
        self.times.setdefault(name, []).append((time.perf_counter() - began) * 1000)
        server = server_time_ms(response.headers)
        if server is not None:
            self.server_times.setdefault(name, []).append(server)

    def figures(self) -> dict[str, dict[str, float]]:
        return {
            name: {
                "p50_ms": round(percentile(times, 0.50), 1),
                "p95_ms": round(percentile(times, 0.95), 1),
                "server_p50_ms": round(percentile(self.server_times.get(name, []), 0.50), 1),
                "server_p95_ms": round(percentile(self.server_times.get(name, []), 0.95), 1),
                "requests": len(times),
            }
            for name, times in self.times.items()
        }


async def open_inbox(running: Cluster, conversations: int, agents: int) -> InboxTimes:
    """Fill the store with bench inbox's conversations, start a web process on it and sign in
    one agent who goes through the heaviest pages and `agents` who keep their list open."""
    engine = make_engine(running.database_url)
    try:
        long_id, thread_id = await fill(engine, InboxBenchOptions(conversations, 10))
        tokens = []
        for n in range(agents + 1):
            agent = await add_agent(engine, f"bench{n}", "bench-password")
            tokens.append(await issue_api_token(engine, agent.id, "bench"))
    finally:
        await engine.dispose()
    base = running.roles.start_web()
    await running.roles.wait_ready()
    return InboxTimes(heaviest_requests(base, long_id, thread_id), tokens)


async def one_run(options: LoadOptions, cores: int) -> dict[str, object]:
    per_person = max(1, options.messages // options.conversations)
    total = per_person * options.conversations
    async with cluster(cores, bots_per_network=options.bots) as running:
        engine = make_engine(running.database_url)
        await seed_articles(engine, SAMPLE_KB)
        await engine.dispose()
        quiet = await open_inbox(running, options.inbox, options.agents) if options.inbox else None
        if quiet is not None:
            await quiet.rounds(INBOX_QUIET_ROUNDS)
        loaded = InboxTimes(quiet.requests, quiet.tokens) if quiet is not None else None
        # above the chats the inbox's conversations were filled in with
        customers = Customers(running.networks, options.conversations, first_id=200_000)
        lag, stop = Lag(), asyncio.Event()
        watcher = asyncio.create_task(lag.watch(running, stop))
        cpu, memory = CpuMeter(running.role_pids()), PeakMemory(running.role_pids())
        sampler = asyncio.create_task(memory.run(stop))
        readers = (
            [
                asyncio.create_task(loaded.rounds(None, stop, CLICK_EVERY_S)),
                asyncio.create_task(loaded.open_lists(stop)),
            ]
            if loaded is not None
            else []
        )
        cpu.start()
        started = time.time()
        await customers.write_all(per_person, options.rate)
        written = time.time()
        deadline = time.monotonic() + options.deadline_s
        while (await count_rows(running.database_url, STORED) or 0) < total:
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all messages were stored in {options.deadline_s:.0f} s")
            await asyncio.sleep(0.2)
        cpu.stop()
        stop.set()
        await watcher
        await sampler
        await asyncio.gather(*readers)
        inbox = (
            {
                "conversations": options.inbox,
                "agents_with_the_list_open": options.agents,
                "quiet": quiet.figures(),
                "beside_the_load": loaded.figures(),
            }
            if quiet is not None and loaded is not None
            else {}
        )
        stored = await stored_times(running.database_url)
    waits: dict[Network, list[float]] = {network: [] for network in NETWORKS}
    for (person, seq), wrote in customers.written_at.items():
        key = (person.network, person.chat_id, seq)
        if key in stored:
            waits[person.network].append((stored[key] - wrote) * 1000)
    latencies = [wait for network_waits in waits.values() for wait in network_waits]
    last = {
        n: max((t for (m, _, _), t in stored.items() if m is n), default=started) for n in NETWORKS
    }
    by_network = {
        network.value: {
            "msgs_per_s": round(len(waits[network]) / max(last[network] - started, 1e-9), 1),
            "p50_ms": round(percentile(waits[network], 0.50), 1),
            "p99_ms": round(percentile(waits[network], 0.99), 1),
        }
        for network in NETWORKS
    }
    return {
        "cores": cores,
        "bot_processes_per_network": options.bots,
        "messages": total,
        "conversations": options.conversations,
        "networks": [n.value for n in NETWORKS],
        "offered_rate": options.rate,
        "written_per_s": round(total / max(written - started, 1e-9), 1),
        "msgs_per_s": round(total / max(max(last.values()) - started, 1e-9), 1),
        "p50_ms": round(percentile(latencies, 0.50), 1),
        "p95_ms": round(percentile(latencies, 0.95), 1),
        "p99_ms": round(percentile(latencies, 0.99), 1),
        "stream_lag_max": max(lag.samples, default=0),
        "stream_lag_mean": round(sum(lag.samples) / max(len(lag.samples), 1), 1),
        "by_network": by_network,
        # the emulators' and this bench's own CPU are left out: they stand in for the networks
        "cpu_ms_per_msg": cpu.ms_per_message(total),
        "peak_memory_mb": memory.megabytes(),
        "memory_growth_mb": memory.growth_megabytes(),
        **({"inbox": inbox} if inbox else {}),
    }


async def run(options: LoadOptions) -> None:
    results = []
    for cores in options.cores:
        print(f"  run with {cores} core process(es)...", file=sys.stderr)
        result = await one_run(options, cores)
        print(json.dumps(result), flush=True)
        results.append(result)
    summary: dict[str, object] = {"runs": results}
    by_cores = {r["cores"]: r for r in results}
    if 1 in by_cores and 2 in by_cores:
        one, two = by_cores[1]["msgs_per_s"], by_cores[2]["msgs_per_s"]
        assert isinstance(one, float) and isinstance(two, float)
        summary["scaling_1_to_2_cores"] = round(two / one, 2)
    print(json.dumps(summary), flush=True)
