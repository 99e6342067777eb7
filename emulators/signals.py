"""A signal an emulator fires when its state changes, for whoever waits on that state (a test
waiting for the bot's messages, a pusher waiting for events, a long poll waiting for updates)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Signal:
    """Wakes everyone waiting when it fires; a waiter takes the event before checking its state,
    so a change between the check and the wait is not missed."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def event(self) -> asyncio.Event:
        return self._event

    async def wait_until(self, ready: Callable[[], bool], *, within: float | None = None) -> None:
        """Return once `ready()` holds, checked again each time the signal fires; TimeoutError
        after `within` seconds (None: no limit)."""
        async with asyncio.timeout(within):
            while True:
                fired = self.event()
                if ready():
                    return
                await fired.wait()
