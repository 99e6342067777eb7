"""The embedded mode (`supportbridge run`, the default) killed while customers write: whatever it
acknowledged to the network (a webhook's 200, a long-poll offset) is stored once after a restart,
whether it is killed with SIGKILL or stopped with SIGTERM, in its first seconds (the matcher still
being built) or warm; comments on the brand's channel posts as well as private messages. Real
processes; Telegram is the product's emulator."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from bench.ports import free_port
from bots.telegram.channel import SECRET_HEADER, WEBHOOK_PATH
from emulators.telegram import TelegramEmulator
from tests.conftest import new_user_env

pytestmark = pytest.mark.slow

TOKEN = "123456:embedded-faults"
SECRET = "embedded-faults-secret"
MESSAGES = 2_000
CHATS = 100
WRITERS = 16
SETTLE_S = 120.0
PUBLIC_EVERY = 10  # every tenth chat is a post's comments, in the channel's discussion group


@dataclass
class Product:
    """`supportbridge run` in a data directory of its own, started again after each stop."""

    data_dir: Path
    api_url: str
    webhook: bool
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # Errors only: the emulator knows none of these chats, so every reply is refused.
        settings = {
            "SB_TELEGRAM_TOKEN": TOKEN,
            "SB_TELEGRAM_API_URL": self.api_url,
            "SB_LOG_LEVEL": "ERROR",
        }
        if self.webhook:
            settings["SB_TELEGRAM_WEBHOOK_SECRET"] = SECRET
        self.process = subprocess.Popen(
            [sys.executable, "-m", "supportbridge.cli", "run"],
            env=new_user_env(self.data_dir, self.port, **settings),
            cwd=self.data_dir,
            stdout=subprocess.DEVNULL,
        )

    def stop(self, how: signal.Signals) -> int:
        assert self.process is not None
        self.process.send_signal(how)
        return self.process.wait(timeout=60)

    async def wait_until(self, path: str) -> None:
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self.process is not None and self.process.poll() is None, "it exited"
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(self.base + path) as response:
                        if response.status == 200:
                            return
                await asyncio.sleep(0.05)
        raise AssertionError(f"{path} did not answer 200 in time")

    def replies(self) -> Counter[str]:
        """How many of the replies are in each delivery status."""
        db = sqlite3.connect(f"file:{self.data_dir / 'supportbridge.db'}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT delivery_status FROM messages WHERE direction = 'outbound'"
            ).fetchall()
        finally:
            db.close()
        return Counter(status for (status,) in rows)

    def sent_per_chat(self) -> Counter[str]:
        db = sqlite3.connect(f"file:{self.data_dir / 'supportbridge.db'}?mode=ro", uri=True)
        try:
            rows = db.execute(
                "SELECT c.chat_id FROM messages m JOIN conversations c ON c.id = m.conversation_id"
                " WHERE m.direction = 'outbound' AND m.delivery_status = 'sent'"
            ).fetchall()
        finally:
            db.close()
        return Counter(chat for (chat,) in rows)

    def public_threads(self) -> int:
        db = sqlite3.connect(f"file:{self.data_dir / 'supportbridge.db'}?mode=ro", uri=True)
        try:
            return int(db.execute("SELECT count(*) FROM conversations WHERE public").fetchone()[0])
        finally:
            db.close()

    def stored(self) -> Counter[str]:
        """How many times each customer text is in the store."""
        db = sqlite3.connect(f"file:{self.data_dir / 'supportbridge.db'}?mode=ro", uri=True)
        try:
            rows = db.execute("SELECT text FROM messages WHERE direction = 'inbound'").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return Counter()
        finally:
            db.close()
        return Counter(text for (text,) in rows)


def text_of(number: int) -> str:
    return f"Message {number}"


def write(emulator: TelegramEmulator, number: int, posts: dict[int, int]) -> None:
    """Message `number` of its chat: a private message, or a comment under the chat's post."""
    chat = number % CHATS
    if chat in posts:
        emulator.comment(10_000 + chat, posts[chat], text_of(number))
    else:
        emulator.write_text(10_000 + chat, text_of(number))


def update(number: int) -> dict[str, object]:
    chat = {"id": 10_000 + number % CHATS, "type": "private", "first_name": "Customer"}
    sender = {"id": chat["id"], "is_bot": False, "first_name": "Customer"}
    message = {
        "message_id": number,
        "date": int(time.time()),
        "chat": chat,
        "from": sender,
        "text": text_of(number),
    }
    return {"update_id": number, "message": message}


@dataclass
class Webhooks:
    """Telegram pushing updates: each one again until the product answers 200 (as Telegram
    retries a webhook), `WRITERS` at a time."""

    product: Product
    accepted: set[int] = field(default_factory=set)
    refused: int = 0

    async def push_all(self) -> None:
        todo = list(range(1, MESSAGES + 1))
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:

            async def writer() -> None:
                while todo:
                    number = todo.pop(0)
                    if not await self._push(session, number):
                        todo.append(number)
                        await asyncio.sleep(0.05)

            await asyncio.gather(*(writer() for _ in range(WRITERS)))

    async def _push(self, session: aiohttp.ClientSession, number: int) -> bool:
        url = self.product.base + WEBHOOK_PATH
        try:
            async with session.post(
                url, json=update(number), headers={SECRET_HEADER: SECRET}
            ) as response:
                if response.status == 200:
                    self.accepted.add(number)
                    return True
        except (aiohttp.ClientError, TimeoutError):
            pass
        self.refused += 1
        return False


@contextlib.asynccontextmanager
async def telegram() -> AsyncIterator[tuple[TelegramEmulator, str]]:
    emulator = TelegramEmulator([TOKEN])
    server = TestServer(emulator.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield emulator, str(server.make_url("")).rstrip("/")
    finally:
        await server.close()
        await emulator.close()


async def until(condition: Callable[[], bool], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not condition() and time.monotonic() < deadline:  # noqa: ASYNC110 - polls a process
        await asyncio.sleep(0.05)


def report(name: str, sent: int, accepted: set[int], stored: Counter[str]) -> tuple[int, int]:
    lost = sum(1 for number in accepted if stored[text_of(number)] == 0)
    doubled = sum(count - 1 for count in stored.values() if count > 1)
    print(
        f"\n{name}: sent {sent} accepted {len(accepted)} stored {sum(stored.values())}"
        f" lost {lost} doubled {doubled}"
    )
    return lost, doubled


@pytest.mark.parametrize(
    ("how", "when"),
    [
        (signal.SIGKILL, "cold"),
        (signal.SIGKILL, "warm"),
        (signal.SIGTERM, "cold"),
        (signal.SIGTERM, "warm"),
    ],
    ids=["sigkill-cold", "sigkill-warm", "sigterm-cold", "sigterm-warm"],
)
async def test_a_webhook_answered_200_is_stored_once_whenever_the_process_dies(
    tmp_path: Path, how: signal.Signals, when: str
) -> None:
    async with telegram() as (_, api_url):
        product = Product(tmp_path, api_url, webhook=True)
        product.start()
        await product.wait_until("/healthz" if when == "cold" else "/readyz")
        hooks = Webhooks(product)
        pushing = asyncio.ensure_future(hooks.push_all())
        # Cold: in the first second, while the matcher is still being built; warm: mid-stream.
        await until(lambda: len(hooks.accepted) >= (50 if when == "cold" else 800), 30)
        killed_at = len(hooks.accepted)
        await asyncio.to_thread(product.stop, how)
        product.start()
        await asyncio.wait_for(pushing, SETTLE_S)
        await until(lambda: len(product.stored()) >= MESSAGES, SETTLE_S)
        stored = product.stored()
        assert await asyncio.to_thread(product.stop, signal.SIGTERM) == 0

    lost, doubled = report(
        f"webhook, {how.name} {when} after {killed_at} accepted", MESSAGES, hooks.accepted, stored
    )
    assert killed_at < MESSAGES, "the process died while customers were writing"
    assert len(hooks.accepted) == MESSAGES
    assert (lost, doubled) == (0, 0)


async def test_long_polling_confirms_only_what_is_stored_when_the_process_is_killed(
    tmp_path: Path,
) -> None:
    """Comments under the channel's posts as well as private messages. And the replies queued
    when it was killed are sent after the restart. Telegram takes no
    idempotency key: a reply sent in the instant before the kill, its outcome not yet recorded,
    is sent again, so at most one a chat (a chat's replies go one after another) may arrive
    twice; none may be missing."""
    async with telegram() as (emulator, api_url):
        product = Product(tmp_path, api_url, webhook=False)
        product.start()
        await product.wait_until("/readyz")
        posts = {
            chat: emulator.post_to_channel(f"Post {chat}")["message_id"]
            for chat in range(0, CHATS, PUBLIC_EVERY)
        }
        for number in range(1, MESSAGES + 1):
            write(emulator, number, posts)
            if number % 100 == 0:
                await asyncio.sleep(0.01)  # customers write over time, not all in one poll
            if number == MESSAGES // 2:
                await until(lambda: len(product.stored()) >= MESSAGES // 4, 30)
                killed_at = len(product.stored())
                await asyncio.to_thread(product.stop, signal.SIGKILL)
                product.start()
        await until(lambda: len(product.stored()) >= MESSAGES, SETTLE_S)
        await until(lambda: product.replies()["queued"] == 0, SETTLE_S)
        stored, replies = product.stored(), product.replies()
        threads = product.public_threads()
        sent = product.sent_per_chat()
        received = Counter(
            {str(10_000 + n): len(emulator.bot_messages(10_000 + n)) for n in range(CHATS)}
        )
        assert await asyncio.to_thread(product.stop, signal.SIGTERM) == 0

    missing = sum((sent - received).values())
    again = sum((received - sent).values())
    print(
        f"replies: {dict(replies)}; the customers received {received.total()}"
        f" ({missing} missing, {again} twice)"
    )
    assert threads == len(posts), "each post's comments are one public thread"
    assert replies["queued"] == 0, "what was queued when the process died is sent after"
    assert replies["sent"] > 0 and missing == 0, "every reply reached its customer"
    assert again <= CHATS, "only a send in flight at the kill, one a chat, may come twice"
    written = set(range(1, MESSAGES + 1))
    lost, doubled = report(
        f"long polling, SIGKILL warm after {killed_at} stored", MESSAGES, written, stored
    )
    assert (lost, doubled) == (0, 0)
