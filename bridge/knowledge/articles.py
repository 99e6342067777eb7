"""The knowledge base in the conversation store: `kb.articles.Article` rows in and out.

kb/ knows nothing of the store; converting between its Articles and the `articles` table is done
here. Every write is one transaction, so that an import is all or nothing. Admins' edits of one
article at a time, recorded with who made them, are in `article_edits`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.store.models import articles, utcnow
from kb.articles import Article
from kb.io import read_articles
from kb.language import detect_language

# Rows per DELETE ... IN (...): well under both backends' limits on bound parameters.
_CHUNK = 1000


async def load_articles(engine: AsyncEngine) -> list[Article]:
    """Every article, enabled or not (the matcher skips disabled ones), ordered by id."""
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(articles).order_by(articles.c.id))).mappings()
        return [stored_article(row) for row in rows]


async def load_article(engine: AsyncEngine, article_id: str) -> Article | None:
    """The article with this id, or None."""
    async with engine.connect() as conn:
        row = (
            (await conn.execute(sa.select(articles).where(articles.c.id == article_id)))
            .mappings()
            .first()
        )
    return stored_article(row) if row is not None else None


async def seed_articles(engine: AsyncEngine, path: Path) -> int:
    """Import `path` when the store has no article yet (a new installation); returns how many."""
    async with engine.connect() as conn:
        if (await conn.execute(sa.select(sa.func.count()).select_from(articles))).scalar_one():
            return 0
    items = read_articles(path)
    await upsert_articles(engine, items)
    return len(items)


async def upsert_articles(engine: AsyncEngine, items: Sequence[Article]) -> None:
    """Insert new articles and update those whose id exists; others stay as they are."""
    async with engine.begin() as conn:
        await _upsert(conn, items)


async def replace_articles(engine: AsyncEngine, items: Sequence[Article]) -> None:
    """Make the stored articles exactly `items` (creation times kept for ids that stay)."""
    async with engine.begin() as conn:
        existing = await _upsert(conn, items)
        gone = sorted(existing - {article.id for article in items})
        for start in range(0, len(gone), _CHUNK):
            await conn.execute(
                sa.delete(articles).where(articles.c.id.in_(gone[start : start + _CHUNK]))
            )


async def _upsert(conn: AsyncConnection, items: Sequence[Article]) -> set[str]:
    """Write `items`; return the ids that were stored before."""
    existing = set((await conn.execute(sa.select(articles.c.id))).scalars())
    now = utcnow()
    new = [article_row(article) | {"created_at": now, "updated_at": now} for article in items]
    inserts = [row for row in new if row["id"] not in existing]
    updates = [
        {f"b_{key}": value for key, value in row.items() if key != "created_at"}
        for row in new
        if row["id"] in existing
    ]
    if inserts:
        await conn.execute(sa.insert(articles), inserts)
    if updates:
        # Bound names differ from the column names: SQLAlchemy reserves those for the SET clause.
        columns = [key.removeprefix("b_") for key in updates[0] if key != "b_id"]
        await conn.execute(
            sa.update(articles)
            .where(articles.c.id == sa.bindparam("b_id"))
            .values({column: sa.bindparam(f"b_{column}") for column in columns}),
            updates,
        )
    return existing


def article_row(article: Article) -> dict[str, Any]:
    """The article's columns, each example with the language read from its text."""
    return {
        "id": article.id,
        "title": article.title,
        "answers": dict(article.answers),
        "examples": [
            {"text": text, "language": detect_language(text)} for text in article.examples
        ],
        "tags": list(article.tags),
        "never_auto": article.never_auto,
        "threshold": article.threshold,
        "enabled": article.enabled,
    }


def stored_article(row: sa.RowMapping) -> Article:
    """The Article an `articles` row holds."""
    return Article(
        id=row["id"],
        title=row["title"],
        answers=dict(row["answers"]),
        examples=tuple(example["text"] for example in row["examples"]),
        tags=tuple(row["tags"]),
        never_auto=row["never_auto"],
        threshold=row["threshold"],
        enabled=row["enabled"],
    )
