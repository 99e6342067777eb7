"""Admins editing the knowledge base one article at a time, from the pages or the API.

Each creation, change or deletion is one transaction that writes the article and, in
`article_changes`, who did it, when, and each field that really changed (before and after); a
change that changes nothing writes nothing. Every process's responder notices a write within
`kb_refresh_seconds` by the articles' count and latest `updated_at`. Ids never change: decisions
name the article they answered with.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypedDict

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.domain import MAX_TEXT_CHARS, storable
from bridge.knowledge.articles import article_row, load_article, stored_article
from bridge.store.models import agents, article_changes, articles, utcnow
from kb.articles import Article, ArticleError
from kb.language import LANGUAGES, detect_language

MAX_ID_CHARS = 128  # the store's column sizes
MAX_TITLE_CHARS = 255
MAX_ANSWER_CHARS = MAX_TEXT_CHARS  # an answer is sent as one message
MAX_EXAMPLES = 1000
MAX_EXAMPLE_CHARS = 1000  # as long as a question the knowledge base is searched with
MAX_TAGS = 20
MAX_TAG_CHARS = 64
# Latin or Cyrillic letters, digits, "_", "." and "-": an id goes into page and API paths as is.
ID_PATTERN = r"^[0-9A-Za-zА-Яа-яЁё_][0-9A-Za-zА-Яа-яЁё_.-]*$"
RESERVED_IDS = frozenset({"new"})  # /admin/kb/new is the page that makes an article
FIELDS = ("title", "answers", "examples", "tags", "never_auto", "threshold", "enabled")


class ArticleNotFound(ArticleError):
    """No article has the id."""


class ArticleExists(ArticleError):
    """An article with the id exists already."""


class Action(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    DELETED = "deleted"


class ArticleFields(TypedDict, total=False):
    """The fields an update sets; those left out stay as they are. `answers` sets the languages
    it names (an empty text removes one) and keeps the other."""

    title: str
    answers: Mapping[str, str]
    examples: tuple[str, ...]
    tags: tuple[str, ...]
    never_auto: bool
    threshold: float | None
    enabled: bool


@dataclass(frozen=True, slots=True)
class ArticleEdit:
    """One entry of an article's history: field -> (before, after), as JSON values."""

    action: Action
    changes: Mapping[str, tuple[object, object]]
    agent_id: int | None
    agent_login: str | None
    agent_name: str | None
    at: dt.datetime


def checked(article: Article) -> Article:
    """The article as it is stored: texts trimmed and made storable, empty answers, examples and
    tags left out, repeated ones once, examples in language order (ru, then en, as `kb import`
    orders them); ArticleError when it cannot be used."""
    title = storable(article.title).strip()
    if len(title) > MAX_TITLE_CHARS:
        raise ArticleError(f"title: longer than {MAX_TITLE_CHARS} characters")
    answers = {
        language: text
        for language in LANGUAGES
        if (text := storable(article.answers.get(language, "")).strip())
    }
    if not answers:
        raise ArticleError("answers: needs an answer in Russian or English")
    if any(len(text) > MAX_ANSWER_CHARS for text in answers.values()):
        raise ArticleError(f"answers: longer than {MAX_ANSWER_CHARS} characters")
    examples = _examples(article.examples)
    tags = _unique(article.tags)
    if len(tags) > MAX_TAGS:
        raise ArticleError(f"tags: more than {MAX_TAGS}")
    for tag in tags:
        if len(tag) > MAX_TAG_CHARS:
            raise ArticleError(f"tags: {tag[:60]!r}… is longer than {MAX_TAG_CHARS} characters")
        # the page lists tags separated by commas, the CSV export by "|"
        if "," in tag or "|" in tag:
            raise ArticleError(f"tags: {tag!r} has a comma or '|'")
    return dataclasses.replace(article, title=title, answers=answers, examples=examples, tags=tags)


def _unique(texts: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(t for text in texts if (t := storable(text).strip())))


def _examples(texts: tuple[str, ...]) -> tuple[str, ...]:
    examples = _unique(texts)
    if len(examples) > MAX_EXAMPLES:
        raise ArticleError(f"examples: more than {MAX_EXAMPLES}")
    ordered: list[tuple[int, str]] = []
    for text in examples:
        language = detect_language(text)
        if language is None:
            raise ArticleError(f"examples: {text[:60]!r} has no words")
        if len(text) > MAX_EXAMPLE_CHARS:
            raise ArticleError(f"examples: {text[:60]!r}… is longer than {MAX_EXAMPLE_CHARS}")
        ordered.append((LANGUAGES.index(language), text))
    ordered.sort(key=lambda pair: pair[0])  # stable: the admin's order within each language
    return tuple(text for _, text in ordered)


def check_new_id(article_id: str) -> None:
    if len(article_id) > MAX_ID_CHARS:
        raise ArticleError(f"id: longer than {MAX_ID_CHARS} characters")
    if not re.fullmatch(ID_PATTERN, article_id):
        raise ArticleError(
            f"id: {article_id!r} is not letters, digits, '_', '.' and '-' (starting with one of"
            " the first three)"
        )
    if article_id in RESERVED_IDS:
        raise ArticleError(f"id: {article_id!r} is reserved")


def _json(article: Article, name: str) -> object:
    value = getattr(article, name)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def changes_between(before: Article | None, after: Article | None) -> dict[str, list[object]]:
    """field -> [before, after] for each field that differs (None stands for no article)."""
    changes: dict[str, list[object]] = {}
    for name in FIELDS:
        old = _json(before, name) if before is not None else None
        new = _json(after, name) if after is not None else None
        if old != new:
            changes[name] = [old, new]
    return changes


async def create_article(engine: AsyncEngine, article: Article, agent_id: int | None) -> Article:
    """Store a new article (ArticleExists if its id is taken) and its creation."""
    check_new_id(article.id)
    article = checked(article)
    now = utcnow()
    try:
        async with engine.begin() as conn:
            if await _locked(conn, article.id) is not None:
                raise ArticleExists(f"an article with the id {article.id!r} exists already")
            row = article_row(article) | {"created_at": now, "updated_at": now}
            await conn.execute(sa.insert(articles).values(row))
            await _record(
                conn, article.id, Action.CREATED, changes_between(None, article), agent_id
            )
    except sa.exc.IntegrityError:
        # another admin created it between the check and the insert
        if await load_article(engine, article.id) is None:
            raise
        raise ArticleExists(f"an article with the id {article.id!r} exists already") from None
    return article


async def update_article(
    engine: AsyncEngine, article_id: str, fields: ArticleFields, agent_id: int | None
) -> Article:
    """Set `fields` of the article and record those that changed; the article as stored."""
    async with engine.begin() as conn:
        before = await _locked(conn, article_id)
        if before is None:
            raise ArticleNotFound(f"no article {article_id!r}")
        if "answers" in fields:
            fields = fields | {"answers": {**before.answers, **fields["answers"]}}
        after = checked(dataclasses.replace(before, **fields))
        changes = changes_between(before, after)
        if not changes:
            return after
        row = article_row(after)
        await conn.execute(
            sa.update(articles)
            .where(articles.c.id == article_id)
            .values({name: row[name] for name in changes} | {"updated_at": utcnow()})
        )
        await _record(conn, article_id, Action.UPDATED, changes, agent_id)
    return after


async def delete_article(engine: AsyncEngine, article_id: str, agent_id: int | None) -> None:
    """Delete the article; its history stays, ending with what it was."""
    async with engine.begin() as conn:
        before = await _locked(conn, article_id)
        if before is None:
            raise ArticleNotFound(f"no article {article_id!r}")
        await conn.execute(sa.delete(articles).where(articles.c.id == article_id))
        await _record(conn, article_id, Action.DELETED, changes_between(before, None), agent_id)


async def article_history(
    engine: AsyncEngine, article_id: str, limit: int = 100
) -> list[ArticleEdit]:
    """The article's creation, changes and deletion, newest first, with who made each."""
    c = article_changes.c
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(
                    c.action,
                    c.changes,
                    c.agent_id,
                    agents.c.login,
                    agents.c.display_name,
                    c.created_at,
                )
                .outerjoin(agents, agents.c.id == c.agent_id)
                .where(c.article_id == article_id)
                .order_by(c.id.desc())
                .limit(limit)
            )
        ).all()
    return [
        ArticleEdit(
            action=Action(row.action),
            changes={name: (pair[0], pair[1]) for name, pair in row.changes.items()},
            agent_id=row.agent_id,
            agent_login=row.login,
            agent_name=row.display_name,
            at=row.created_at,
        )
        for row in rows
    ]


async def _locked(conn: AsyncConnection, article_id: str) -> Article | None:
    """The stored article, locked until the transaction ends (PostgreSQL; SQLite has one
    writer at a time anyway)."""
    row = (
        (
            await conn.execute(
                sa.select(articles).where(articles.c.id == article_id).with_for_update()
            )
        )
        .mappings()
        .first()
    )
    return stored_article(row) if row is not None else None


async def _record(
    conn: AsyncConnection,
    article_id: str,
    action: Action,
    changes: dict[str, list[object]],
    agent_id: int | None,
) -> None:
    await conn.execute(
        sa.insert(article_changes).values(
            article_id=article_id,
            action=action.value,
            changes=changes,
            agent_id=agent_id,
            created_at=utcnow(),
        )
    )
