"""The files kept for customers' networks that keep none for us (web chat, Messenger): kept once
per key, forgotten after `kept_files_days`, and an agent opening a forgotten one is told why."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.store.kept_files import StoredFiles, forget_old_files, prune_kept_files
from bridge.store.models import kept_files, utcnow


async def age(engine: AsyncEngine, key: str, days: float) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(kept_files)
            .where(kept_files.c.key == key)
            .values(created_at=utcnow() - dt.timedelta(days=days))
        )


async def test_a_second_file_under_the_same_key_keeps_the_first(engine: AsyncEngine) -> None:
    files = StoredFiles(engine)
    await files.keep("webchat:v1:m1", b"first")
    await files.keep("webchat:v1:m1", b"second")

    assert await files.load("webchat:v1:m1") == b"first"


async def test_files_older_than_the_days_kept_are_forgotten_and_newer_ones_stay(
    engine: AsyncEngine,
) -> None:
    files = StoredFiles(engine)
    await files.keep("old", b"last year")
    await files.keep("new", b"this week")
    await age(engine, "old", 31)
    await age(engine, "new", 29)

    forgotten = await forget_old_files(engine, days=30)

    assert forgotten == 1
    assert await files.load("new") == b"this week"
    with pytest.raises(LookupError, match="kept_files_days"):
        await files.load("old")


async def test_the_core_processes_prune_as_they_run_and_stop_when_told(
    engine: AsyncEngine,
) -> None:
    files = StoredFiles(engine)
    await files.keep("old", b"x")
    await age(engine, "old", 400)
    stop = asyncio.Event()

    pruning = asyncio.ensure_future(prune_kept_files(engine, 365, stop))
    for _ in range(100):
        async with engine.connect() as conn:
            left = (await conn.execute(sa.select(sa.func.count()).select_from(kept_files))).scalar()
        if left == 0:
            break
        await asyncio.sleep(0.02)
    stop.set()
    await asyncio.wait_for(pruning, 5)

    assert left == 0
