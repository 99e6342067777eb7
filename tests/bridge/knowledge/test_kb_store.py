"""The knowledge base in the store on both backends: load, upsert, replace, `kb import/export`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.knowledge.articles import load_articles, replace_articles, upsert_articles
from bridge.store.engine import make_engine
from bridge.store.migrate import downgrade, upgrade
from bridge.store.models import articles
from kb.articles import Article
from kb.io import read_articles
from supportbridge.cli import main
from tests.conftest import REPO

SAMPLE = REPO / "config" / "kb" / "sample.yaml"


def article(article_id: str, **changes: Any) -> Article:
    base = Article(
        id=article_id,
        title=f"Title {article_id}",
        answers={"ru": "Ответ.", "en": "Answer."},
        examples=("где мой счёт", "where is my bill"),
        tags=("billing",),
    )
    return replace(base, **changes)


async def test_articles_come_back_as_they_were_stored(engine: AsyncEngine) -> None:
    stored = [
        article("b", threshold=0.9, never_auto=True),
        article("a", enabled=False, answers={"en": "Only English."}),
    ]

    await replace_articles(engine, stored)

    assert await load_articles(engine) == sorted(stored, key=lambda a: a.id)


async def test_each_example_is_stored_with_its_language(engine: AsyncEngine) -> None:
    await upsert_articles(engine, [article("a")])

    async with engine.connect() as conn:
        examples = (await conn.execute(sa.select(articles.c.examples))).scalar_one()
    assert examples == [
        {"text": "где мой счёт", "language": "ru"},
        {"text": "where is my bill", "language": "en"},
    ]


async def test_upsert_updates_and_adds_and_keeps_the_rest(engine: AsyncEngine) -> None:
    await replace_articles(engine, [article("a"), article("b")])
    async with engine.connect() as conn:
        created = dict((await conn.execute(sa.select(articles.c.id, articles.c.created_at))).all())

    await upsert_articles(engine, [article("b", title="New title"), article("c")])

    assert await load_articles(engine) == [
        article("a"),
        article("b", title="New title"),
        article("c"),
    ]
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(articles).where(articles.c.id == "b"))).one()
    assert rows.created_at == created["b"]
    assert rows.updated_at > rows.created_at


async def test_replace_deletes_what_the_new_set_does_not_have(engine: AsyncEngine) -> None:
    await replace_articles(engine, [article("a"), article("b")])

    await replace_articles(engine, [article("c")])

    assert await load_articles(engine) == [article("c")]


async def test_the_sample_knowledge_base_imports_cleanly(engine: AsyncEngine) -> None:
    await replace_articles(engine, read_articles(SAMPLE))

    loaded = await load_articles(engine)
    assert len(loaded) >= 30
    assert all(set(a.answers) == {"ru", "en"} for a in loaded)


async def table_names(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda sync: sa.inspect(sync).get_table_names()))
    finally:
        await engine.dispose()


@pytest.fixture
async def emptied_url(database_url: str) -> AsyncIterator[str]:
    """The empty database, reverted to base afterwards even when the test fails half-way."""
    yield database_url
    await downgrade(database_url, "base")


async def test_migration_0002_adds_and_removes_only_the_articles_table(emptied_url: str) -> None:
    await upgrade(emptied_url, "0001")
    before = await table_names(emptied_url)

    await upgrade(emptied_url, "0002")
    assert await table_names(emptied_url) == before | {"articles"}

    await downgrade(emptied_url, "0001")
    assert await table_names(emptied_url) == before


# --- the command line ----------------------------------------------------------------------


def kb_command(url: str, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    monkeypatch.setenv("SB_CONFIG", "/dev/null")
    monkeypatch.setenv("SB_DATABASE_URL", url)
    return CliRunner().invoke(main, ["kb", *args], catch_exceptions=False)


def stored(url: str) -> list[Article]:
    async def load() -> list[Article]:
        engine = make_engine(url)
        try:
            return await load_articles(engine)
        finally:
            await engine.dispose()

    return asyncio.run(load())


@pytest.mark.parametrize("suffix", [".yaml", ".csv"])
def test_import_export_import_gives_the_same_articles(
    emptied_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, suffix: str
) -> None:
    imported = kb_command(emptied_url, monkeypatch, "import", str(SAMPLE))
    assert imported.exit_code == 0, imported.output
    assert f"imported {len(read_articles(SAMPLE))} articles" in imported.stdout
    first = stored(emptied_url)

    exported = tmp_path / f"kb{suffix}"
    result = kb_command(emptied_url, monkeypatch, "export", str(exported))
    assert result.exit_code == 0, result.output
    result = kb_command(emptied_url, monkeypatch, "import", "--replace", str(exported))
    assert result.exit_code == 0, result.output

    assert stored(emptied_url) == first
    assert read_articles(exported) == first


def test_a_file_with_bad_rows_reports_them_all_and_imports_nothing(
    emptied_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert kb_command(emptied_url, monkeypatch, "import", str(SAMPLE)).exit_code == 0
    before = stored(emptied_url)
    bad = tmp_path / "kb.csv"
    bad.write_text(
        "id,title,answer_en,examples,threshold\n"
        "internet-down,Changed,Changed.,internet is down,\n"
        "new,New,Answer.,,\n"
        "other,Other,Answer.,hello there,1.5\n"
    )

    result = kb_command(emptied_url, monkeypatch, "import", "--replace", str(bad))

    assert result.exit_code == 1
    assert "2 problem(s), nothing imported" in result.output
    assert f"{bad}:3: article new: needs at least one example question" in result.output
    assert f"{bad}:4: article other: threshold 1.5 is not in [0, 1]" in result.output
    assert stored(emptied_url) == before


def test_export_refuses_an_unknown_format(
    emptied_url: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    result = kb_command(emptied_url, monkeypatch, "export", str(tmp_path / "kb.json"))

    assert result.exit_code == 1
    assert "unknown format .json: use .yaml or .csv" in result.output
