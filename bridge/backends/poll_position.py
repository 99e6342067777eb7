"""Where a network's poller left off (`bridge.channel.PollPosition`): in Redis in the
distributed mode, shared by every process that may take the poll over; in a file of the data
directory in the embedded mode, so that a restart goes on from there."""

from __future__ import annotations

import asyncio
from pathlib import Path

import redis.asyncio as aioredis


class RedisPollPosition:
    def __init__(self, client: aioredis.Redis, key: str) -> None:
        self.client = client
        self.key = key

    async def load(self) -> str | None:
        value = await self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    async def save(self, position: str) -> None:
        await self.client.set(self.key, position)


class FilePollPosition:
    def __init__(self, path: Path) -> None:
        self.path = path

    async def load(self) -> str | None:
        return await asyncio.to_thread(self._read)

    async def save(self, position: str) -> None:
        await asyncio.to_thread(self._write, position)

    def _read(self) -> str | None:
        try:
            return self.path.read_text().strip() or None
        except FileNotFoundError:
            return None

    def _write(self, position: str) -> None:
        # Written aside, then renamed: a crash mid-write leaves the old position, not half of one.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_suffix(".partial")
        partial.write_text(position)
        partial.replace(self.path)
