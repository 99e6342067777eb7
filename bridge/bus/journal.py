"""The embedded mode's durable inbound queue: a network's 200, a long-poll offset or a web-chat ack
is given only once the entry is committed here (a SQLite file of the data directory), and the
entry is forgotten only once the pipeline has committed it to the store. A process killed at any
moment finds its unprocessed entries here on the next start and hands them to the pipeline again
(which stores a message once, whatever how often it is handed over).

Writes are committed in groups: whatever was appended while the last commit ran goes in the next
one, so a burst of webhooks costs a few transactions, not one each. SQLite runs on one thread of
its own, off the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

Appended = dict[int, list[int]]
"""Per shard, the journal ids of the entries appended, in the order given."""


class InboundJournal:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbound-journal")
        self._db = self._thread.submit(_open, path).result()
        self._appends: list[tuple[dict[int, list[bytes]], asyncio.Future[Appended]]] = []
        self._forgotten: list[int] = []
        self._wake = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None

    def pending(self) -> list[tuple[int, int, bytes]]:
        """What was appended and not forgotten, oldest first: (id, shard, payload)."""
        return self._thread.submit(_pending, self._db).result()

    async def append(self, payloads_by_shard: dict[int, list[bytes]]) -> Appended:
        """Returns once the entries are committed to the file."""
        done: asyncio.Future[Appended] = asyncio.get_running_loop().create_future()
        self._appends.append((payloads_by_shard, done))
        self._kick()
        return await done

    def forget(self, ids: Sequence[int]) -> None:
        """The pipeline committed these: they are deleted with the next group (or when idle)."""
        self._forgotten.extend(ids)
        self._kick()

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._flush()  # what was forgotten meanwhile need not be replayed
        await asyncio.get_running_loop().run_in_executor(self._thread, self._db.close)
        self._thread.shutdown(wait=True)

    def _kick(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_forever())
        self._wake.set()

    async def _write_forever(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            await self._flush()

    async def _flush(self) -> None:
        appends, self._appends = self._appends, []
        forgotten, self._forgotten = self._forgotten, []
        if not appends and not forgotten:
            return
        # Shielded: a cancelled writer (close) must not leave a commit half-reported.
        work = asyncio.get_running_loop().run_in_executor(
            self._thread, _commit, self._db, [payloads for payloads, _ in appends], forgotten
        )
        try:
            ids = await asyncio.shield(work)
        except asyncio.CancelledError:
            ids = await work
            _resolve(appends, ids)
            raise
        except Exception as exc:
            self._forgotten = forgotten + self._forgotten  # tried again with the next group
            for _, done in appends:
                if not done.done():
                    done.set_exception(exc)
            return
        _resolve(appends, ids)


def _resolve(
    appends: list[tuple[dict[int, list[bytes]], asyncio.Future[Appended]]], ids: list[Appended]
) -> None:
    for (_, done), appended in zip(appends, ids, strict=True):
        if not done.done():
            done.set_result(appended)


def _open(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # WAL + NORMAL, as the store: a commit survives the process being killed at any moment.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS inbound"
        " (id INTEGER PRIMARY KEY AUTOINCREMENT, shard INTEGER NOT NULL, payload BLOB NOT NULL)"
    )
    return db


def _pending(db: sqlite3.Connection) -> list[tuple[int, int, bytes]]:
    return db.execute("SELECT id, shard, payload FROM inbound ORDER BY id").fetchall()


def _commit(
    db: sqlite3.Connection, groups: list[dict[int, list[bytes]]], forgotten: list[int]
) -> list[Appended]:
    appended: list[Appended] = []
    db.execute("BEGIN IMMEDIATE")
    try:
        for payloads_by_shard in groups:
            ids: Appended = {}
            for shard, payloads in payloads_by_shard.items():
                ids[shard] = [
                    db.execute(
                        "INSERT INTO inbound (shard, payload) VALUES (?, ?) RETURNING id",
                        (shard, payload),
                    ).fetchone()[0]
                    for payload in payloads
                ]
            appended.append(ids)
        db.executemany("DELETE FROM inbound WHERE id = ?", [(i,) for i in forgotten])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return appended
