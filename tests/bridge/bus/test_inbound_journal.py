"""The embedded mode's durable inbound queue (bridge.bus.journal) and the in-process bus on it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bridge.bus import journal as journal_module
from bridge.bus.base import BusEntry
from bridge.bus.journal import InboundJournal
from bridge.bus.memory import MemoryBus


async def test_what_was_appended_and_not_forgotten_is_found_again_after_a_restart(
    tmp_path: Path,
) -> None:
    first = InboundJournal(tmp_path / "queue.sqlite3")
    ids = await first.append({0: [b"a", b"b"], 3: [b"c"]})
    first.forget([ids[0][0]])
    await first.close()

    again = InboundJournal(tmp_path / "queue.sqlite3")
    try:
        assert [(shard, payload) for _, shard, payload in again.pending()] == [
            (0, b"b"),
            (3, b"c"),
        ]
    finally:
        await again.close()


async def test_appends_made_while_a_commit_runs_are_committed_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commits: list[int] = []
    real_commit = journal_module._commit

    def counting(db, groups, forgotten):  # type: ignore[no-untyped-def]
        commits.append(len(groups))
        return real_commit(db, groups, forgotten)

    monkeypatch.setattr(journal_module, "_commit", counting)
    journal = InboundJournal(tmp_path / "queue.sqlite3")
    try:
        await asyncio.gather(*(journal.append({0: [f"m{n}".encode()]}) for n in range(200)))
        assert sum(commits) == 200
        assert len(commits) < 20, commits  # a few commits, not one per message
        assert len(journal.pending()) == 200
    finally:
        await journal.close()


async def test_a_bus_on_a_journal_hands_over_what_the_killed_process_had_not_handled(
    tmp_path: Path,
) -> None:
    path = tmp_path / "queue.sqlite3"
    killed = MemoryBus(2, InboundJournal(path))
    await killed.publish_inbound_raw({0: [b"first", b"second"], 1: [b"third"]})
    handled: list[bytes] = []

    async def handle_one_then_die(batch: list[BusEntry]) -> None:
        handled.extend(entry.payload for entry in batch)
        stop.set()

    stop = asyncio.Event()
    await killed.consume_inbound("core", handle_one_then_die, batch_size=1, stop=stop)
    await killed.close()  # (a SIGKILL would not even close: the file holds the same)

    restarted = MemoryBus(2, InboundJournal(path))
    try:
        assert await restarted.inbound_backlog() == 3 - len(handled)
        left = [entry.payload for queue in restarted._inbound for entry in queue._queue]  # type: ignore[attr-defined]
        assert sorted(left + handled) == [b"first", b"second", b"third"]
    finally:
        await restarted.close()
