"""Canned responses: ready replies an admin keeps and agents insert into the reply box."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import MAX_TEXT_CHARS
from bridge.store.models import canned_responses, utcnow


class CannedError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Canned:
    id: int
    title: str
    text: str
    language: str | None


async def list_canned(engine: AsyncEngine, language: str | None = None) -> list[Canned]:
    """All of them, or those for `language` and those for any language."""
    c = canned_responses.c
    query = sa.select(c.id, c.title, c.text, c.language).order_by(c.title)
    if language is not None:
        query = query.where(sa.or_(c.language == language, c.language.is_(None)))
    async with engine.connect() as conn:
        return [Canned(*row) for row in (await conn.execute(query)).all()]


async def add_canned(engine: AsyncEngine, title: str, text: str, language: str | None) -> int:
    title, text = title.strip(), text.strip()
    if not title or len(title) > 128:
        raise CannedError("a title needs 1 to 128 characters")
    if not text or len(text) > MAX_TEXT_CHARS:
        raise CannedError(f"a text needs 1 to {MAX_TEXT_CHARS} characters")
    if language not in (None, "ru", "en"):
        raise CannedError("the language is ru, en or any")
    async with engine.begin() as conn:
        return int(
            (
                await conn.execute(
                    sa.insert(canned_responses)
                    .values(title=title, text=text, language=language, created_at=utcnow())
                    .returning(canned_responses.c.id)
                )
            ).scalar_one()
        )


async def delete_canned(engine: AsyncEngine, canned_id: int) -> None:
    async with engine.begin() as conn:
        await conn.execute(sa.delete(canned_responses).where(canned_responses.c.id == canned_id))
