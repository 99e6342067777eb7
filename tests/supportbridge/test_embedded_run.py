"""`supportbridge run` as a user starts it: one process, SQLite, migrations applied by itself."""

from __future__ import annotations

import asyncio
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson
import pytest
from alembic.script import ScriptDirectory

from bench.ports import free_port
from bridge.inbox.agents import authenticate
from bridge.store.engine import make_engine
from bridge.store.migrate import alembic_config, current_revision


def get_json(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, orjson.loads(response.read())


def lines_until(stream: IO[str], marker: str, timeout: float) -> list[str]:
    """The stream's lines up to the first that holds `marker`, or an error if it does not come
    in time (instead of hanging)."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line)
            if marker in line:
                return

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while not seen or marker not in seen[-1]:
        try:
            seen.append(lines.get(timeout=max(0.0, deadline - time.monotonic())))
        except queue.Empty:
            raise AssertionError(f"{marker!r} not printed within {timeout} s: {seen}") from None
    return seen


class Running:
    def __init__(self, process: subprocess.Popen[str], port: int, data_dir: Path) -> None:
        self.process, self.port, self.data_dir = process, port, data_dir
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path: str) -> tuple[int, Any]:
        return get_json(self.base + path)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    """`supportbridge run` in an empty directory, with no settings but the data dir and port."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SB_")} | {
        "SB_CONFIG": str(tmp_path / "absent.toml"),
        "SB_DATA_DIR": str(tmp_path),
        "SB_HTTP_PORT": str(port),
    }
    with (tmp_path / "stderr.log").open("w") as stderr:
        process = subprocess.Popen(
            [Path(sys.executable).with_name("supportbridge"), "run"],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
    try:
        yield Running(process, port, tmp_path)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def test_run_migrates_serves_health_and_stops_on_sigterm(running: Running) -> None:
    assert running.process.stdout is not None
    printed = lines_until(running.process.stdout, "supportbridge is running at", timeout=30)
    assert f"{running.base}/" in printed[-1], (running.data_dir / "stderr.log").read_text()

    deadline = time.monotonic() + 10
    while True:
        try:
            health = running.get("/healthz")
            break
        except OSError:
            assert time.monotonic() < deadline, "the HTTP port never answered"
            time.sleep(0.1)
    status, ready = running.get("/readyz")

    running.process.send_signal(signal.SIGTERM)
    sent = time.monotonic()
    code = running.process.wait(timeout=15)
    stopped_in = time.monotonic() - sent

    assert health == (200, {"status": "ok"})
    assert status == 200 and ready["checks"]["database"] == "ok"
    assert (code, stopped_in < 5) == (0, True), (running.data_dir / "stderr.log").read_text()
    database = f"sqlite+aiosqlite:///{running.data_dir / 'supportbridge.db'}"
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert asyncio.run(current_revision(database)) == head


def test_run_prints_where_the_inbox_is_and_a_password_that_signs_in(running: Running) -> None:
    assert running.process.stdout is not None
    printed = lines_until(running.process.stdout, "inbox:", timeout=30)
    found = re.search(
        r"inbox: open (\S+) and sign in as admin with the password (\S+) ", printed[-1]
    )
    assert found is not None, printed
    assert found[1] == f"{running.base}/"

    database = f"sqlite+aiosqlite:///{running.data_dir / 'supportbridge.db'}"

    async def sign_in() -> object:
        engine = make_engine(database)
        try:
            return await authenticate(engine, "admin", found[2])
        finally:
            await engine.dispose()

    agent = asyncio.run(sign_in())
    assert agent is not None and agent.is_admin  # type: ignore[attr-defined]
