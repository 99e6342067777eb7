"""Waiting that ends as soon as the process is asked to stop."""

from __future__ import annotations

import asyncio
import contextlib


async def pause(stop: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds`, but wake as soon as `stop` is set. asyncio.timeout rather than
    wait_for: on Python 3.11 wait_for can lose a cancellation that meets a finished wait."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
