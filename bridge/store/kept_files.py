"""The files customers send where no network keeps them for us (the web chat has no network,
Messenger's addresses expire), kept in the conversation store (`kept_files`), where every
process can serve them."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.channel import StoreUnavailable
from bridge.store.engine import insert_ignoring_conflicts
from bridge.store.models import kept_files, utcnow
from bridge.util.stopping import pause

log = logging.getLogger(__name__)

PRUNE_EVERY_S = 3600.0


class StoredFiles:
    """The store as a channel's FileKeeper."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def keep(self, key: str, content: bytes) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert_ignoring_conflicts(conn, kept_files).values(
                        key=key, content=content, size=len(content), created_at=utcnow()
                    )
                )
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def kept_bytes(self, prefix: str) -> int:
        try:
            async with self.engine.connect() as conn:
                total = (
                    await conn.execute(
                        sa.select(sa.func.coalesce(sa.func.sum(kept_files.c.size), 0)).where(
                            kept_files.c.key.startswith(prefix, autoescape=True)
                        )
                    )
                ).scalar_one()
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        return int(total)

    async def load(self, key: str) -> bytes:
        try:
            async with self.engine.connect() as conn:
                content = (
                    await conn.execute(
                        sa.select(kept_files.c.content).where(kept_files.c.key == key)
                    )
                ).scalar_one_or_none()
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc
        if content is None:
            raise LookupError(
                "the file is not kept: it could not be had when it came, or it is older than the"
                " days files are kept (kept_files_days)"
            )
        return bytes(content)


async def forget_old_files(engine: AsyncEngine, days: int) -> int:
    """Delete the files kept longer than `days`; how many went."""
    cutoff = utcnow() - dt.timedelta(days=days)
    async with engine.begin() as conn:
        result = await conn.execute(sa.delete(kept_files).where(kept_files.c.created_at < cutoff))
    return result.rowcount


async def prune_kept_files(engine: AsyncEngine, days: int, stop: asyncio.Event) -> None:
    """Forget old files now and then, until `stop` (every core process does it: a delete that
    finds nothing costs nothing, and none of them is special)."""
    while not stop.is_set():
        try:
            if gone := await forget_old_files(engine, days):
                log.info("forgot %d kept files older than %d days", gone, days)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            log.warning("old kept files not forgotten now: %s", exc)
        await pause(stop, PRUNE_EVERY_S)
