"""`kb` commands: part of the `supportbridge` command line, runnable alone as `python -m kb.cli`."""

from __future__ import annotations

from pathlib import Path

import click

CSV = click.Path(exists=True, dir_okay=False, path_type=Path)
OUT = click.Path(dir_okay=False, writable=True, path_type=Path)


@click.group(name="kb")
def kb() -> None:
    """Knowledge base: measure the matcher."""


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


if __name__ == "__main__":
    kb()
