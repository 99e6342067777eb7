"""`supportbridge run` as a user starts it: one process, SQLite, migrations applied by itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import orjson


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> tuple[int, dict[str, object]]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, orjson.loads(response.read())


def test_run_migrates_serves_health_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SB_")} | {
        "SB_CONFIG": os.devnull,
        "SB_DATA_DIR": str(tmp_path),
        "SB_HTTP_PORT": str(port),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "bridge.cli", "run"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/" in banner
        deadline = time.monotonic() + 20
        while True:
            try:
                health = get_json(f"http://127.0.0.1:{port}/healthz")
                break
            except OSError:
                assert time.monotonic() < deadline, "the HTTP port never answered"
                time.sleep(0.1)
        ready = get_json(f"http://127.0.0.1:{port}/readyz")
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=15)

    assert health == (200, {"status": "ok"})
    assert ready[0] == 200 and ready[1]["checks"]["database"] == "ok"  # type: ignore[index]
    assert (tmp_path / "supportbridge.db").exists()
    assert code == 0
