"""`supportbridge run` as a user starts it: one process, SQLite, migrations applied by itself."""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import socket
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

from bridge.store.migrate import alembic_config, current_revision


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> tuple[int, Any]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, orjson.loads(response.read())


def first_line(stream: IO[str], timeout: float) -> str:
    """The stream's first line, or an error if none comes in time (instead of hanging)."""
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: lines.put(stream.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        raise AssertionError(f"nothing printed within {timeout} s") from None


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
    banner = first_line(running.process.stdout, timeout=30)
    assert f"{running.base}/" in banner, (running.data_dir / "stderr.log").read_text()

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
