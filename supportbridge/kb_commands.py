"""`supportbridge kb`: import and export the stored articles, measure the matcher."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from kb.articles import Article

CSV = click.Path(exists=True, dir_okay=False, path_type=Path)
OUT = click.Path(dir_okay=False, writable=True, path_type=Path)


@click.group(name="kb")
def kb() -> None:
    """Knowledge base: import and export articles, measure the matcher."""


@kb.command(name="eval")
@click.option(
    "--kb", "kb_csv", type=CSV, required=True, help="text,label rows: the articles' examples."
)
@click.option(
    "--test", "test_csv", type=CSV, required=True, help="text,label rows to score (`oos` allowed)."
)
@click.option("--calibrate", "calibrate_csv", type=CSV, help="text,label rows to calibrate on too.")
@click.option("--json", "json_out", type=OUT, help="Write the figures and the curve as JSON here.")
@click.option("--plot", "plot_out", type=OUT, help="Write the threshold chart as PNG here.")
def eval_command(
    kb_csv: Path,
    test_csv: Path,
    calibrate_csv: Path | None,
    json_out: Path | None,
    plot_out: Path | None,
) -> None:
    """Precision, coverage and out-of-scope answers of the matcher at every threshold."""
    # Imported here: scikit-learn and matplotlib would slow down every `supportbridge` start.
    from kb.datasets import DatasetError
    from kb.evaluate import format_table, run_eval

    try:
        result = run_eval(kb_csv, test_csv, calibrate_csv, json_out, plot_out)
    except DatasetError as exc:
        raise click.ClickException("\n".join([f"{exc.path}:", *exc.problems])) from exc
    click.echo(format_table(result))


@kb.command(name="import")
@click.argument("file", type=CSV)
@click.option("--replace", is_flag=True, help="Delete the stored articles that FILE does not have.")
def import_command(file: Path, replace: bool) -> None:
    """Import articles from FILE (.yaml/.yml or .csv): all of them, or none if a row is bad.

    Without --replace, articles with a new id are added and those with a stored id updated.
    """
    # Imported here: the store (SQLAlchemy, drivers) would slow down every `supportbridge` start.
    from bridge.knowledge.articles import replace_articles, upsert_articles
    from kb.io import KbFileError, articles_from_rows, read_rows

    url = _database_url()
    try:
        rows = read_rows(file)
        # Progress on stderr: stdout keeps only the one-line result, for scripts.
        with click.progressbar(rows, label=f"Checking {file.name}", file=sys.stderr) as bar:
            articles = articles_from_rows(file, bar)
    except KbFileError as exc:
        raise click.ClickException(
            f"{len(exc.problems)} problem(s), nothing imported:\n" + "\n".join(exc.problems)
        ) from exc
    write = replace_articles if replace else upsert_articles

    async def store() -> None:
        engine = await _migrated_engine(url)
        try:
            await write(engine, articles)
        finally:
            await engine.dispose()

    asyncio.run(store())
    click.echo(
        f"imported {len(articles)} articles from {file}" + (" (replaced)" if replace else "")
    )


@kb.command(name="export")
@click.argument("file", type=OUT)
def export_command(file: Path) -> None:
    """Write every stored article to FILE; the format follows the extension (.yaml/.yml/.csv)."""
    from bridge.knowledge.articles import load_articles
    from kb.io import KbFileError, file_format, write_articles

    url = _database_url()
    try:
        file_format(file)
    except KbFileError as exc:
        raise click.ClickException(str(exc)) from exc

    async def load() -> list[Article]:
        engine = await _migrated_engine(url)
        try:
            return await load_articles(engine)
        finally:
            await engine.dispose()

    articles = asyncio.run(load())
    try:
        with click.progressbar(
            length=len(articles), label=f"Writing {file.name}", file=sys.stderr
        ) as bar:
            write_articles(file, articles, progress=lambda: bar.update(1))
    except KbFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"exported {len(articles)} articles to {file}")


def _database_url() -> str:
    from bridge.settings import SettingsError, load_settings

    try:
        return load_settings().effective_database_url
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from exc


async def _migrated_engine(url: str) -> AsyncEngine:
    """The store's engine, migrated first: a fresh embedded install has no tables yet."""
    from bridge.store.engine import make_engine
    from bridge.store.migrate import upgrade

    await upgrade(url)
    return make_engine(url)
