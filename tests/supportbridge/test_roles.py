"""The roles' processes: what each loads (a bot, started and restarted often, starts light), and
how a role's loops end together."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from supportbridge.runtime import role_tasks

KNOWLEDGE_BASE_MODULES = (
    "sklearn",
    "scipy",
    "kb.matcher",
    "bridge.knowledge.responder",
    "bridge.web.app",
)


def test_a_bot_process_does_not_load_the_knowledge_base_or_the_inbox() -> None:
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, supportbridge.roles.bot; "
            f"print(','.join(m for m in {KNOWLEDGE_BASE_MODULES!r} if m in sys.modules))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert loaded == ""


async def test_a_failing_loop_stops_the_others_and_its_error_ends_the_role() -> None:
    stop = asyncio.Event()
    ended: list[str] = []

    async def until_stopped() -> None:
        await stop.wait()
        ended.append("the other loop")

    async def failing() -> None:
        await asyncio.sleep(0)
        raise RuntimeError("broken")

    with pytest.raises(ExceptionGroup) as raised:
        async with asyncio.timeout(5), role_tasks(stop) as start:
            start(until_stopped())
            start(failing())
    assert raised.group_contains(RuntimeError, match="broken")
    assert ended == ["the other loop"]


async def test_a_loop_that_ignores_cancellation_still_ends_when_another_fails() -> None:
    stop = asyncio.Event()
    ended: list[str] = []

    async def swallowing_cancellation() -> None:
        # What redis-py's wait_for does on Python 3.11 when the cancellation meets a finished read.
        while not stop.is_set():
            try:
                await asyncio.sleep(0.01)
            except asyncio.CancelledError:
                continue
        ended.append("ended by stop")

    async def failing() -> None:
        await asyncio.sleep(0.05)
        raise RuntimeError("broken")

    with pytest.raises(ExceptionGroup):
        async with asyncio.timeout(5), role_tasks(stop) as start:
            start(swallowing_cancellation())
            start(failing())
    assert ended == ["ended by stop"]


async def test_roles_end_cleanly_when_stopped() -> None:
    stop = asyncio.Event()
    ended: list[str] = []

    async def loop(name: str) -> None:
        await stop.wait()
        ended.append(name)

    async with asyncio.timeout(5), role_tasks(stop) as start:
        start(loop("a"))
        start(loop("b"))
        stop.set()
    assert sorted(ended) == ["a", "b"]
