"""The distributed mode on one machine, for the fault test and `supportbridge bench load`: a Redis
and a PostgreSQL server of its own (so that they can be restarted without cutting off anyone
else), real `supportbridge core` and `supportbridge bot` processes, and the three networks'
emulators on loopback with customers who write to the brand.

Every address is on 127.0.0.1 and every process is stopped when the cluster is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import psutil
import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError

from bench.pipeline import shards_shared
from bench.ports import free_port
from bots.facebook.comments import POST_PREFIX
from bots.telegram.events import post_thread
from bots.vk.events import thread_key
from bridge.bus.redis import RedisBus
from bridge.domain import Network
from bridge.store.migrate import upgrade
from emulators.facebook import FacebookEmulator
from emulators.faults import Fault, FaultKind
from emulators.telegram import TelegramEmulator
from emulators.vk import VkEmulator

TELEGRAM_TOKEN = "700100:cluster-bot"
VK_TOKEN = "vk-cluster-token"
VK_GROUP = 4242
FACEBOOK_PAGE_TOKEN = "fb-cluster-page-token"
FACEBOOK_APP_SECRET = "fb-cluster-app-secret"
FACEBOOK_VERIFY_TOKEN = "fb-cluster-verify"
NETWORKS = (Network.TELEGRAM, Network.VK, Network.FACEBOOK)
START_TIMEOUT_S = 60.0
INBOUND_SHARDS = 16
WARM_UP_ID = 900_000
NETWORKS_WARMED_UP = (
    "SELECT string_agg(DISTINCT network::text, ',') FROM messages WHERE text LIKE 'warm-up %'"
)


def _owner_command(command: Sequence[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *command]
    return list(command)


def _postgres_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    if not found:
        raise RuntimeError("PostgreSQL's server programs are not installed (/usr/lib/postgresql)")
    return found[-1].parent


class PostgresServer:
    """A PostgreSQL cluster of its own in a temporary directory, on a free port."""

    def __init__(self, root: Path) -> None:
        self.bin = _postgres_bin()
        self.root = root
        self.data = root / "pgdata"
        self.port = free_port()
        self.url = f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str) -> None:
        subprocess.run(
            _owner_command([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", *args]),
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=START_TIMEOUT_S,
        )

    def create(self) -> None:
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
        subprocess.run(
            _owner_command(
                [str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust"]
            ),
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=START_TIMEOUT_S,
        )
        self.start()

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c max_connections=200"
        )
        self._pg_ctl("-o", options, "-l", str(self.root / "postgres.log"), "start")

    def stop(self) -> None:
        """A fast shutdown: open sessions are cut, committed work is kept."""
        self._pg_ctl("-m", "fast", "stop")

    def pids(self) -> list[int]:
        """The postmaster (the first line of its pid file) and every process it started."""
        try:
            postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
            children = psutil.Process(postmaster).children(recursive=True)
        except (OSError, ValueError, IndexError, psutil.Error):
            return []
        return [postmaster, *(child.pid for child in children)]

    def restart(self) -> None:
        self.stop()
        self.start()


class RedisServer:
    """A redis-server of its own with AOF on, so a restart keeps the streams and leases."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        options = {
            "bind": "127.0.0.1",
            "port": str(self.port),
            "dir": str(self.root),
            "appendonly": "yes",
            "appendfsync": "everysec",
            "save": "",
            "logfile": str(self.root / "redis.log"),
        }
        words = [word for key, value in options.items() for word in (f"--{key}", value)]
        self.process = subprocess.Popen(["redis-server", *words])
        deadline = time.monotonic() + START_TIMEOUT_S
        while (
            subprocess.run(
                ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, check=False
            ).stdout.strip()
            != b"PONG"
        ):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"redis-server did not start; see {self.root / 'redis.log'}")
            time.sleep(0.05)

    def stop(self) -> None:
        """SIGTERM: Redis writes what it has to the AOF, then exits."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=START_TIMEOUT_S)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@dataclass
class Roles:
    """`supportbridge core` and `supportbridge bot NETWORK` processes, as an operator runs them."""

    env: dict[str, str]
    logs: Path
    cores: list[subprocess.Popen[bytes]] = field(default_factory=list)
    bots: list[tuple[Network, subprocess.Popen[bytes]]] = field(default_factory=list)
    webs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    bot_ports: dict[Network, int] = field(default_factory=dict)
    started: int = 0
    numbers: dict[int, int] = field(default_factory=dict)
    ports: dict[int, int] = field(default_factory=dict)

    def _spawn(self, *role: str, port: int) -> subprocess.Popen[bytes]:
        self.started += 1
        log = (self.logs / f"{'-'.join(role)}-{self.started}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "supportbridge.cli", *role],
            env=self.env | {"SB_HTTP_PORT": str(port)},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.numbers[process.pid] = self.started
        self.ports[process.pid] = port
        return process

    def start_core(self) -> subprocess.Popen[bytes]:
        process = self._spawn("core", port=free_port())
        self.cores.append(process)
        return process

    def kill_core(self, process: subprocess.Popen[bytes]) -> None:
        """kill -9: no chance to finish or to hand anything back."""
        process.send_signal(signal.SIGKILL)
        process.wait()
        self.cores.remove(process)

    def start_bot(self, network: Network) -> None:
        port = free_port()
        self.bots.append((network, self._spawn("bot", network.value, port=port)))
        self.bot_ports.setdefault(network, port)  # the one the Messenger webhook goes to

    def start_web(self) -> str:
        """A `supportbridge web` process; returns its address."""
        process = self._spawn("web", port=free_port())
        self.webs.append(process)
        return f"http://127.0.0.1:{self.ports[process.pid]}"

    def named(self) -> dict[str, subprocess.Popen[bytes]]:
        """Every role started and not killed, by a name for messages."""
        return (
            {f"core {p.pid}": p for p in self.cores}
            | {f"bot {network.value} {p.pid}": p for network, p in self.bots}
            | {f"web {p.pid}": p for p in self.webs}
        )

    def crashed(self) -> list[str]:
        """Roles that exited by themselves (none should: they wait out every outage)."""
        return [
            f"{name} exited with {p.returncode}: ...{self._log_tail(p)}"
            for name, p in self.named().items()
            if p.poll() is not None
        ]

    async def wait_ready(self) -> None:
        """Until every role answers its /readyz: started (a bot's imports take seconds of CPU,
        the more so with every role starting at once) and connected to PostgreSQL and Redis."""
        deadline = time.monotonic() + START_TIMEOUT_S
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http:
            for process in self.named().values():
                url = f"http://127.0.0.1:{self.ports[process.pid]}/readyz"
                while not await _answers(http, url):
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"a role did not get ready\n{self.describe()}")
                    await asyncio.sleep(0.2)

    def describe(self) -> str:
        """Every role's state and the end of its log, for an error that must say what went wrong."""
        return "\n".join(
            f"--- {name}: {'running' if p.poll() is None else f'exited with {p.returncode}'}\n"
            f"{self._log_tail(p)[-1000:]}"
            for name, p in self.named().items()
        )

    def _log_tail(self, process: subprocess.Popen[bytes]) -> str:
        """The end of what a role wrote, to tell why it stopped."""
        for path in self.logs.glob("*.log"):
            if path.name.endswith(f"-{self.numbers.get(process.pid)}.log"):
                return path.read_bytes()[-3000:].decode(errors="replace")
        return ""

    def stop(self) -> list[int]:
        """SIGTERM to every role, as a deployment does; their exit codes."""
        running = list(self.named().values())
        for process in running:
            if process.poll() is None:
                process.terminate()
        codes = []
        for process in running:
            try:
                codes.append(process.wait(timeout=30))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes


@dataclass
class Networks:
    """The three networks' emulators, each on its own loopback port."""

    telegram: TelegramEmulator = field(default_factory=lambda: TelegramEmulator([TELEGRAM_TOKEN]))
    vk: VkEmulator = field(default_factory=lambda: VkEmulator(group_id=VK_GROUP, token=VK_TOKEN))
    facebook: FacebookEmulator = field(
        default_factory=lambda: FacebookEmulator(
            FACEBOOK_PAGE_TOKEN, app_secret=FACEBOOK_APP_SECRET, webhook_retry_cap=2.0
        )
    )
    urls: dict[Network, str] = field(default_factory=dict)
    runners: list[web.AppRunner] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)

    async def start(self) -> None:
        apps = {
            Network.TELEGRAM: self.telegram.app,
            Network.VK: self.vk.app,
            Network.FACEBOOK: self.facebook.app,
        }
        for network, app in apps.items():
            app.on_response_prepare.append(self._count_call)
            runner = web.AppRunner(app, access_log=None)
            await runner.setup()
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            self.runners.append(runner)
            self.urls[network] = f"http://127.0.0.1:{port}"

    async def _count_call(self, request: web.Request, response: web.StreamResponse) -> None:
        self.calls[f"{request.method} {request.path} {response.status}"] += 1

    async def stop(self) -> None:
        await self.vk.close()
        for runner in self.runners:
            await runner.cleanup()

    def fail(self, share: float) -> None:
        """Every emulator answers `share` of all calls with its network's rate-limit error or a
        5xx, half and half (the rules are tried in turn, hence the second one's odds)."""
        rate_limited = share / 2
        server_error = (share / 2) / (1 - rate_limited)
        for plan in (self.telegram.faults, self.vk.faults, self.facebook.faults):
            plan.add(Fault(FaultKind.RATE_LIMIT, retry_after=1), probability=rate_limited)
            plan.add(Fault(FaultKind.SERVER_ERROR, status=502), probability=server_error)

    def settings(self) -> dict[str, str]:
        return {
            "SB_TELEGRAM_TOKEN": TELEGRAM_TOKEN,
            "SB_TELEGRAM_API_URL": self.urls[Network.TELEGRAM],
            "SB_VK_TOKEN": VK_TOKEN,
            "SB_VK_GROUP_ID": str(VK_GROUP),
            "SB_VK_API_URL": self.urls[Network.VK],
            "SB_FACEBOOK_PAGE_TOKEN": FACEBOOK_PAGE_TOKEN,
            "SB_FACEBOOK_APP_SECRET": FACEBOOK_APP_SECRET,
            "SB_FACEBOOK_VERIFY_TOKEN": FACEBOOK_VERIFY_TOKEN,
            "SB_FACEBOOK_API_URL": self.urls[Network.FACEBOOK],
        }

    def delivered(self) -> dict[tuple[Network, str], list[str]]:
        """What each customer received, by (network, chat id), in the order it arrived; in a
        public thread, what the brand posted under the post."""
        received: dict[tuple[Network, str], list[str]] = {}
        group = self.telegram.discussion_group()
        for t in self.telegram.sent_messages():
            if t.chat_id != group.id:
                received.setdefault((Network.TELEGRAM, str(t.chat_id)), []).append(t.text)
        for m in self.telegram.group_messages():
            if m["from"].get("is_bot"):
                thread = post_thread(group.id, m["message_thread_id"])
                received.setdefault((Network.TELEGRAM, thread), []).append(m["text"])
        for v in self.vk.sent_messages():
            received.setdefault((Network.VK, str(v.peer_id)), []).append(v.text)
        for c in self.vk.community_comments():
            thread = thread_key(c.kind, self.vk.wall.owner_id, c.item_id)
            received.setdefault((Network.VK, thread), []).append(c.text)
        for f in self.facebook.sent:
            received.setdefault((Network.FACEBOOK, f.recipient_id), []).append(f.text)
        for reply in self.facebook.comments.account_comments():
            thread = POST_PREFIX + reply.post_id
            received.setdefault((Network.FACEBOOK, thread), []).append(reply.text)
        return received


@dataclass(frozen=True)
class Customer:
    """A customer writing privately (`chat_id` their chat), or one commenting under a post of
    the brand's (`post` its id on the network; `chat_id` the public thread as the store names
    it)."""

    network: Network
    chat_id: str
    user_id: int
    post: str | None = None


class Customers:
    """`count` people spread over the three networks, each writing numbered messages; every
    `public_every`-th (0: none) comments under a post of its own instead, a public thread."""

    def __init__(
        self, networks: Networks, count: int, first_id: int = 100_000, public_every: int = 0
    ) -> None:
        self.networks = networks
        self.people = [
            self._person(NETWORKS[n % 3], first_id + n, public_every > 0 and n % public_every == 0)
            for n in range(count)
        ]
        self.written_at: dict[tuple[Customer, int], float] = {}

    def _person(self, network: Network, number: int, public: bool) -> Customer:
        name = f"{network.value} {number}"
        if network is Network.TELEGRAM:
            self.networks.telegram.customer(number, first_name=name)
            if public:
                post = self.networks.telegram.post_to_channel(f"Post {number}")["message_id"]
                group = self.networks.telegram.discussion_group()
                return Customer(network, post_thread(group.id, post), number, str(post))
        elif network is Network.VK:
            self.networks.vk.customer(number, first_name=name)
            if public:
                place = self.networks.vk.post(f"Post {number}")
                thread = thread_key(place.kind, self.networks.vk.wall.owner_id, place.id)
                return Customer(network, thread, number, str(place.id))
        elif public:
            post_id = self.networks.facebook.comments.add_post(f"Post {number}").id
            return Customer(network, POST_PREFIX + post_id, number, post_id)
        return Customer(network, str(number), number)

    @staticmethod
    def text(person: Customer, seq: int) -> str:
        return f"Question {seq} from {person.chat_id}"

    def write(self, person: Customer, seq: int, text: str | None = None) -> None:
        text = text or self.text(person, seq)
        if person.post is not None:
            self._comment(person, person.post, text)
        elif person.network is Network.TELEGRAM:
            self.networks.telegram.write_text(person.user_id, text)
        elif person.network is Network.VK:
            self.networks.vk.write(person.user_id, text)
        else:
            self.networks.facebook.write_text(person.chat_id, text)
        self.written_at[(person, seq)] = time.time()

    def _comment(self, person: Customer, post: str, text: str) -> None:
        if person.network is Network.TELEGRAM:
            self.networks.telegram.comment(person.user_id, int(post), text)
        elif person.network is Network.VK:
            self.networks.vk.comment(person.user_id, int(post), text)
        else:
            self.networks.facebook.comments.comment(str(person.user_id), post, text)

    async def write_all(self, per_person: int, rate: float | None) -> None:
        """Round by round (everyone's message n before anyone's n + 1), at `rate` messages/s
        or as fast as the emulators take them."""
        started, sent = time.monotonic(), 0
        for seq in range(per_person):
            for person in self.people:
                self.write(person, seq)
                sent += 1
                if rate is not None:
                    ahead = sent / rate - (time.monotonic() - started)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
                elif sent % 200 == 0:
                    await asyncio.sleep(0)  # let the emulators answer the bots meanwhile


@dataclass
class Cluster:
    root: Path
    postgres: PostgresServer
    redis: RedisServer
    networks: Networks
    roles: Roles

    @property
    def database_url(self) -> str:
        return self.postgres.url

    def role_pids(self) -> dict[str, Callable[[], list[int]]]:
        """Each role's processes, read again at every call (PostgreSQL starts a backend per
        connection): the cores, the bots, the web processes, this cluster's own PostgreSQL and
        Redis servers."""
        return {
            "core": lambda: [p.pid for p in self.roles.cores],
            "bot": lambda: [p.pid for _, p in self.roles.bots],
            "web": lambda: [p.pid for p in self.roles.webs],
            "postgres": self.postgres.pids,
            "redis": lambda: [self.redis.process.pid] if self.redis.process else [],
        }


async def _answers(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url) as response:
            return response.status == 200
    except (aiohttp.ClientError, TimeoutError):
        return False


@contextlib.asynccontextmanager
async def cluster(
    cores: int, settings: dict[str, str] | None = None, bots_per_network: int = 1
) -> AsyncIterator[Cluster]:
    """Servers, emulators, `cores` core processes and bot processes for each network, running."""
    root = Path(tempfile.mkdtemp(prefix="sb-cluster-"))
    postgres, redis_server, networks = PostgresServer(root), RedisServer(root), Networks()
    roles: Roles | None = None
    try:
        await asyncio.to_thread(postgres.create)
        await upgrade(postgres.url)
        redis_server.start()
        await networks.start()
        env = {k: v for k, v in os.environ.items() if not k.startswith("SB_")} | {
            "SB_CONFIG": os.devnull,
            "SB_DATABASE_URL": postgres.url,
            "SB_REDIS_URL": redis_server.url,
            "SB_LOG_LEVEL": "WARNING",
            "SB_INBOUND_SHARDS": str(INBOUND_SHARDS),
            **networks.settings(),
            **(settings or {}),
        }
        roles = Roles(env, root)
        for _ in range(cores):
            roles.start_core()
        for network in NETWORKS:
            for _ in range(bots_per_network):
                roles.start_bot(network)
        await roles.wait_ready()
        await networks.facebook.subscribe(
            f"http://127.0.0.1:{roles.bot_ports[Network.FACEBOOK]}/webhooks/facebook",
            FACEBOOK_VERIFY_TOKEN,
        )
        running = Cluster(root, postgres, redis_server, networks, roles)
        await _warm_up(running)
        bus = RedisBus(redis_server.url, int(env["SB_INBOUND_SHARDS"]))
        try:
            await shards_shared(bus, cores)  # no hand-over of shards in the middle of a run
        finally:
            await bus.close()
        yield running
    finally:
        if roles is not None:
            roles.stop()
        await networks.stop()
        redis_server.stop()
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            postgres.stop()
        shutil.rmtree(root, ignore_errors=True)


async def _warm_up(running: Cluster) -> None:
    """Until a message on each network is stored: every receiver is live. VK's long poll, like
    the real one, hands out only events after the poller first asked, so the first warm-up
    messages may go unseen; another is written each round."""
    warm = Customers(running.networks, len(NETWORKS), first_id=WARM_UP_ID)
    deadline = time.monotonic() + START_TIMEOUT_S
    for seq in itertools.count():
        through = await fetch_value(running.database_url, NETWORKS_WARMED_UP)
        if through is not None and len(through.split(",")) == len(NETWORKS):
            return
        if time.monotonic() > deadline or running.roles.crashed():
            calls = ", ".join(f"{call}: {n}" for call, n in sorted(running.networks.calls.items()))
            raise RuntimeError(
                f"the bots did not pass the warm-up on (stored from: {through or 'none'}; "
                f"Messenger webhook pushes failed: {running.networks.facebook.pushes_failed}); "
                f"calls to the emulators: {calls or 'none'}\n{running.roles.describe()}"
            )
        for person in warm.people:
            warm.write(person, seq, text=f"warm-up {seq}")
        await asyncio.sleep(0.5)


async def count_rows(url: str, sql: str) -> int | None:
    """One number from the database, or None while it cannot be reached (it may be restarting)."""
    value = await fetch_value(url, sql)
    return None if value is None else int(value)


async def fetch_value(url: str, sql: str) -> Any:
    """One value from the database, or None while it cannot be reached (it may be restarting)."""
    try:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"), timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return None
    try:
        return await conn.fetchval(sql)
    except (OSError, asyncpg.PostgresError):
        return None
    finally:
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await conn.close()


async def inbound_backlog(redis_url: str, prefix: str = "sb") -> int | None:
    """Entries of the inbound streams not yet acknowledged, or None while Redis restarts."""
    client = aioredis.Redis.from_url(redis_url)
    try:
        total = 0
        async for key in client.scan_iter(match=f"{prefix}:in:*"):
            total += int(await client.xlen(key))
        return total
    except (OSError, RedisError):
        return None
    finally:
        await client.aclose()
