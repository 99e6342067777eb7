"""`supportbridge kb`: import and export the stored articles, measure the matcher."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import click

from kb.embedding import BACKENDS
from supportbridge.startup import on_migrated_store

CSV = click.Path(exists=True, dir_okay=False, path_type=Path)


def embeddings_option(command: Callable[..., None]) -> Callable[..., None]:
    """--embeddings and, for sentence-transformers, --embeddings-model (never downloaded)."""
    backend = click.option(
        "--embeddings",
        type=click.Choice(BACKENDS),
        default="none",
        show_default=True,
        help="Sentence-embedding backend beside the lexical matcher.",
    )
    model = click.option(
        "--embeddings-model",
        default="",
        help="For sentence-transformers: a model in the local cache, or its folder.",
    )
    return backend(model(command))


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
@embeddings_option
@click.option(
    "--oos-share",
    type=click.FloatRange(0.0, 0.95),
    help="The share of questions no article answers, if known: the confidence allows for it"
    " (a share below the 3 % or so assumed by default changes nothing).",
)
@click.option(
    "--draws",
    type=click.IntRange(1, 20),
    default=1,
    show_default=True,
    help="Fit again on this many draws of the calibration's folds and print each one's figures"
    " at 0.9: how much of them is the draw's luck.",
)
def eval_command(
    kb_csv: Path,
    test_csv: Path,
    calibrate_csv: Path | None,
    json_out: Path | None,
    plot_out: Path | None,
    embeddings: str,
    embeddings_model: str,
    oos_share: float | None,
    draws: int,
) -> None:
    """Precision, coverage and out-of-scope answers of the matcher at every threshold."""
    # Imported here: scikit-learn and matplotlib would slow down every `supportbridge` start.
    from kb.datasets import DatasetError
    from kb.embedding import EmbeddingError, load_embedder
    from kb.evaluate import format_table, run_eval

    try:
        embedder = load_embedder(embeddings, embeddings_model)
        result = run_eval(
            kb_csv, test_csv, calibrate_csv, json_out, plot_out, embedder, oos_share, draws
        )
    except DatasetError as exc:
        raise click.ClickException("\n".join([f"{exc.path}:", *exc.problems])) from exc
    except EmbeddingError as exc:
        raise click.ClickException(str(exc)) from exc
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
    on_migrated_store(lambda engine: write(engine, articles))
    click.echo(
        f"imported {len(articles)} articles from {file}" + (" (replaced)" if replace else "")
    )


@kb.command(name="export")
@click.argument("file", type=OUT)
def export_command(file: Path) -> None:
    """Write every stored article to FILE; the format follows the extension (.yaml/.yml/.csv)."""
    from bridge.knowledge.articles import load_articles
    from kb.io import KbFileError, file_format, write_articles

    try:
        file_format(file)
    except KbFileError as exc:
        raise click.ClickException(str(exc)) from exc

    articles = on_migrated_store(load_articles)
    try:
        with click.progressbar(
            length=len(articles), label=f"Writing {file.name}", file=sys.stderr
        ) as bar:
            write_articles(file, articles, progress=lambda: bar.update(1))
    except KbFileError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"exported {len(articles)} articles to {file}")
