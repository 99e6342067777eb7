"""The `supportbridge` command and its sub-commands."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from pathlib import Path

import click

from bridge.domain import Network
from supportbridge.bench_commands import bench
from supportbridge.kb_commands import kb
from supportbridge.startup import run_or_exit, settings_or_exit
from supportbridge.user_commands import user


@click.group()
@click.version_option(package_name="supportbridge")
def main() -> None:
    """supportbridge: VK, Telegram, Messenger and web chat in one support inbox."""


@main.command()
@click.option(
    "--sandbox", is_flag=True, help="Emulate the networks without a token, and play a customer."
)
def run(sandbox: bool) -> None:
    """Start everything in one process on the embedded database (migrations included)."""
    from supportbridge.roles.embedded import embedded_main

    settings = settings_or_exit()
    run_or_exit(lambda: embedded_main(settings, sandbox=sandbox))


@main.command()
def core() -> None:
    """Start one core worker of the distributed mode (needs SB_REDIS_URL)."""
    from supportbridge.roles.core import core_main

    settings = settings_or_exit()
    if not settings.redis_url:
        click.echo("supportbridge: setting SB_REDIS_URL: required by `core`", err=True)
        sys.exit(2)
    run_or_exit(lambda: core_main(settings))


@main.command()
@click.argument(
    "network", type=click.Choice([n.value for n in Network if n is not Network.WEBCHAT])
)
def bot(network: str) -> None:
    """Start one network's worker: receive its events, send its outbound messages."""
    from supportbridge.networks import configured_networks
    from supportbridge.roles.bot import bot_main

    settings = settings_or_exit()
    if Network(network) not in configured_networks(settings):
        click.echo(
            f"supportbridge: {network} is not configured (its SB_{network.upper()}_* settings)",
            err=True,
        )
        sys.exit(2)
    run_or_exit(lambda: bot_main(settings, Network(network)))


@main.command()
def web() -> None:
    """Start the web inbox of the distributed mode (as many as you like)."""
    from supportbridge.roles.web import web_main

    settings = settings_or_exit()
    run_or_exit(lambda: web_main(settings))


@main.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.option("--down", is_flag=True, help="Revert down to --revision (e.g. base).")
def migrate(revision: str, down: bool) -> None:
    """Apply (or revert) the database migrations."""
    from alembic.util import CommandError

    from bridge.store import migrate as migrations

    settings = settings_or_exit()
    url = settings.effective_database_url
    step = migrations.downgrade if down else migrations.upgrade
    try:
        run_or_exit(lambda: step(url, revision))
    except CommandError as exc:  # e.g. an unknown --revision
        click.echo(f"supportbridge: migrate: {exc}", err=True)
        sys.exit(2)
    click.echo(f"database at revision {asyncio.run(migrations.current_revision(url))}")


@main.command()
@click.option("--week", is_flag=True, required=True, help="The last full week (Monday to Sunday).")
@click.option(
    "--before",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Report the full week before this day (default: today).",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Folder to write to.")
def report(week: bool, before: dt.datetime | None, out: Path | None) -> None:
    """Write the weekly report (HTML and JSON); e-mail it when SMTP is configured."""
    import smtplib

    from bridge.reports.weekly import build, last_full_week, send, write

    settings = settings_or_exit()
    period = last_full_week((before or dt.datetime.now(dt.UTC)).date())
    weekly = asyncio.run(build(settings, period))
    html_path, json_path = write(weekly, out or settings.data_dir / "reports")
    click.echo(f"report written: {html_path} and {json_path}")
    if settings.smtp_host and settings.report_to:
        try:
            send(settings, weekly, html_path, json_path)
        except (OSError, smtplib.SMTPException) as exc:
            raise click.ClickException(f"the report could not be e-mailed: {exc}") from None
        click.echo(f"report sent to {', '.join(settings.report_to)}")


main.add_command(user)
main.add_command(kb)
main.add_command(bench)


if __name__ == "__main__":
    main()
