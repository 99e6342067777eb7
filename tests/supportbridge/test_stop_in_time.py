"""Every role stops within `stop_timeout_seconds` of SIGTERM: one whose loop does not end by
itself (a network that never answers, a wait that ignores the stop) names what held it and
exits anyway; what it had taken stays queued, since nothing is acknowledged before it is done."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

STUBBORN_ROLE = """
import asyncio
from bridge.settings import Settings
from supportbridge.runtime import stop_on_signals

async def main():
    stop_on_signals(Settings(stop_timeout_seconds=1))
    async def wait_on_a_network_that_never_answers():
        await asyncio.sleep(3600)
    print("ready", flush=True)
    await asyncio.ensure_future(wait_on_a_network_that_never_answers())

asyncio.run(main())
"""


def test_a_role_still_running_after_the_stop_timeout_names_what_held_it_and_exits() -> None:
    role = subprocess.Popen(
        [sys.executable, "-c", STUBBORN_ROLE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert role.stdout is not None and role.stdout.readline().strip() == "ready"

    role.send_signal(signal.SIGTERM)
    asked = time.monotonic()
    code = role.wait(timeout=20)
    took = time.monotonic() - asked
    _, said = role.communicate()

    assert code == 1
    assert took < 10, "it exits soon after the timeout, not when the wait would end"
    assert "not stopped within 1 s" in said
    assert "wait_on_a_network_that_never_answers" in said
