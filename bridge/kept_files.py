"""The files customers send where no network keeps them for us (the web chat has no network,
Messenger's addresses expire), kept in the conversation store (`kept_files`), where every
process can serve them."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.channel import StoreUnavailable
from bridge.pipeline.ingest import insert_ignoring_conflicts
from bridge.store.models import kept_files, utcnow


class StoredFiles:
    """The store as a channel's FileKeeper."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def keep(self, key: str, name: str | None, mime_type: str | None, content: bytes) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    insert_ignoring_conflicts(conn, kept_files).values(
                        key=key,
                        name=name,
                        mime_type=mime_type,
                        size=len(content),
                        content=content,
                        created_at=utcnow(),
                    )
                )
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

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
            raise LookupError("the file was not kept when it came")
        return bytes(content)
