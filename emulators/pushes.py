"""What the emulators' pushes to the product share (Telegram's webhook, VK's Callback API,
Messenger's webhooks): one HTTP client, pusher tasks stopped on close, doubling retry delays."""

from __future__ import annotations

import asyncio
import contextlib
import math

import aiohttp


class PushClient:
    """The HTTP session the pushes go out on: made on first use, inside the running event loop,
    and closed with the emulator. `timeout` bounds a whole call (None: aiohttp's default)."""

    def __init__(self, timeout: float | None = None) -> None:
        self._timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            if self._timeout is None:
                self._session = aiohttp.ClientSession()
            else:
                self._session = aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=self._timeout)
                )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


class Backoff:
    """Retry delays that double from `first` up to `cap`, and start again after a success."""

    def __init__(self, first: float, cap: float = math.inf) -> None:
        self._first = first
        self._cap = cap
        self._next = first

    def reset(self) -> None:
        self._next = self._first

    async def wait(self, seconds: float | None = None) -> None:
        """Sleep the next delay, or `seconds` when the receiver named its own (Retry-After)."""
        await asyncio.sleep(self._next if seconds is None else seconds)
        self._next = min(self._next * 2, self._cap)


async def stop(task: asyncio.Task[None] | None) -> None:
    """Cancel a pusher and wait until it has ended."""
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
