"""The `supportbridge` command and its sub-commands."""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import click

from bridge.domain import Network
from bridge.settings import Settings, SettingsError, load_settings
from bridge.util.logs import configure


def _settings(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        click.echo(f"supportbridge: {exc}", err=True)
        sys.exit(2)
    configure(settings.log_level, settings.log_format)
    return settings


def _run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        asyncio.run(main())
    except SettingsError as exc:
        click.echo(f"supportbridge: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        pass


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

    settings = _settings()
    _run(lambda: embedded_main(settings, sandbox=sandbox))


@main.command()
def core() -> None:
    """Start one core worker of the distributed mode (needs SB_REDIS_URL)."""
    from supportbridge.roles.core import core_main

    settings = _settings()
    if not settings.redis_url:
        click.echo("supportbridge: setting SB_REDIS_URL: required by `core`", err=True)
        sys.exit(2)
    _run(lambda: core_main(settings))


@main.command()
@click.argument(
    "network", type=click.Choice([n.value for n in Network if n is not Network.WEBCHAT])
)
def bot(network: str) -> None:
    """Start one network's worker: receive its events, send its outbound messages."""
    from supportbridge.networks import configured_networks
    from supportbridge.roles.bot import bot_main

    settings = _settings()
    if Network(network) not in configured_networks(settings):
        click.echo(
            f"supportbridge: {network} is not configured (its SB_{network.upper()}_* settings)",
            err=True,
        )
        sys.exit(2)
    _run(lambda: bot_main(settings, Network(network)))


@main.command()
def web() -> None:
    """Start the web inbox of the distributed mode (as many as you like)."""
    from supportbridge.roles.web import web_main

    settings = _settings()
    _run(lambda: web_main(settings))


@main.group()
def user() -> None:
    """Agents and admins of the inbox."""


def _password_option() -> Callable[[Callable[..., None]], Callable[..., None]]:
    return click.option(
        "--password",
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="Asked for when not given (or piped on standard input).",
    )


@user.command("add")
@click.argument("login")
@_password_option()
@click.option("--name", help="The name customers and colleagues see (default: the login).")
@click.option("--admin", is_flag=True, help="May manage agents, thresholds and reports.")
@click.option("--language", type=click.Choice(["en", "ru"]), default="en", show_default=True)
def user_add(login: str, password: str, name: str | None, admin: bool, language: str) -> None:
    """Create an agent (with --admin, an admin): the first admin starts here."""
    from bridge.inbox.agents import AgentError, Role, add_agent
    from bridge.store.migrate import migrated_engine

    async def create() -> str:
        engine = await migrated_engine(_settings().effective_database_url)
        try:
            role = Role.ADMIN if admin else Role.AGENT
            agent = await add_agent(
                engine, login, password, display_name=name, role=role, language=language
            )
            return f"{agent.role.value} {agent.login} created"
        finally:
            await engine.dispose()

    try:
        click.echo(asyncio.run(create()))
    except AgentError as exc:
        raise click.ClickException(str(exc)) from None


@user.command("token")
@click.argument("login")
@click.option("--name", required=True, help="What the token is for (e.g. the CRM's name).")
def user_token(login: str, name: str) -> None:
    """Issue a REST API token acting as LOGIN (printed once; send it as a Bearer token)."""
    from bridge.inbox.agents import AgentError, find_agent
    from bridge.store.migrate import migrated_engine
    from bridge.web.auth import issue_api_token

    async def issue() -> str:
        engine = await migrated_engine(_settings().effective_database_url)
        try:
            return await issue_api_token(engine, (await find_agent(engine, login)).id, name)
        finally:
            await engine.dispose()

    try:
        click.echo(asyncio.run(issue()))
    except AgentError as exc:
        raise click.ClickException(str(exc)) from None


@user.command("password")
@click.argument("login")
@_password_option()
def user_password(login: str, password: str) -> None:
    """Set an agent's password."""
    from bridge.inbox.agents import AgentError, find_agent, update_agent
    from bridge.store.migrate import migrated_engine

    async def change() -> None:
        engine = await migrated_engine(_settings().effective_database_url)
        try:
            await update_agent(engine, (await find_agent(engine, login)).id, password=password)
        finally:
            await engine.dispose()

    try:
        asyncio.run(change())
    except AgentError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"password of {login} changed")


@main.command()
@click.option("--revision", default="head", show_default=True, help="Target revision.")
@click.option("--down", is_flag=True, help="Revert down to --revision (e.g. base).")
def migrate(revision: str, down: bool) -> None:
    """Apply (or revert) the database migrations."""
    from alembic.util import CommandError

    from bridge.store import migrate as migrations

    settings = _settings()
    url = settings.effective_database_url
    step = migrations.downgrade if down else migrations.upgrade
    try:
        _run(lambda: step(url, revision))
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

    settings = _settings()
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


@main.group()
def bench() -> None:
    """Benchmarks: they print figures (JSON on the last line), they do not pass or fail."""


@bench.command("pipeline")
@click.option(
    "--mode", type=click.Choice(["embedded", "distributed"]), default="embedded", show_default=True
)
@click.option("--messages", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--conversations", type=click.IntRange(min=1), default=2_000, show_default=True)
@click.option("--rate", type=click.FloatRange(min=1), help="Offered load in messages/s.")
@click.option("--cores", type=click.IntRange(min=1), default=2, show_default=True)
def bench_pipeline(
    mode: str, messages: int, conversations: int, rate: float | None, cores: int
) -> None:
    """Push synthetic inbound messages through the real pipeline."""
    from bench.pipeline import BenchOptions, run_bench

    settings = _settings()
    options = BenchOptions(mode, messages, conversations, rate, cores)
    _run(lambda: run_bench(settings, options))


@bench.command("delivery")
@click.option("--messages", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--chats", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--senders", type=click.IntRange(min=1), default=2, show_default=True)
def bench_delivery(messages: int, chats: int, senders: int) -> None:
    """Outbound throughput to the Telegram emulator with the shared rate limits on."""
    from bench.delivery import DeliveryOptions, run

    _settings()
    _run(lambda: run(DeliveryOptions(messages, chats, senders)))


@bench.command("load")
@click.option("--messages", type=click.IntRange(min=1), default=20_000, show_default=True)
@click.option("--conversations", type=click.IntRange(min=1), default=2_000, show_default=True)
@click.option("--rate", type=click.FloatRange(min=1), help="Offered load in messages/s.")
@click.option("--cores", default="1,2", show_default=True, help="Core process counts, a run each.")
@click.option(
    "--bots",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Bot processes per network (receivers and senders).",
)
def bench_load(
    messages: int, conversations: int, rate: float | None, cores: str, bots: int
) -> None:
    """The distributed mode end to end: customers on three emulated networks, real processes."""
    from bench.load import LoadOptions, run

    try:
        counts = [int(n) for n in cores.split(",")]
    except ValueError:
        raise click.BadParameter(
            "a comma-separated list of numbers", param_hint="--cores"
        ) from None
    _settings()
    _run(lambda: run(LoadOptions(messages, conversations, rate, counts, bots)))


@bench.command("kb")
@click.option("--articles", type=click.IntRange(min=2), default=10_000, show_default=True)
@click.option("--queries", type=click.IntRange(min=1), default=2_000, show_default=True)
def bench_kb(articles: int, queries: int) -> None:
    """Knowledge-base query latency, index memory and fit time (default path, no embeddings)."""
    import json

    from bench.kb import run_kb_bench

    click.echo(json.dumps(run_kb_bench(articles, queries)))


@bench.command("inbox")
@click.option("--conversations", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option("--messages", type=click.IntRange(min=1), default=2_000, show_default=True)
@click.option("--requests", type=click.IntRange(min=1), default=30, show_default=True)
def bench_inbox(conversations: int, messages: int, requests: int) -> None:
    """Server time of the inbox list and of a long conversation on PostgreSQL."""
    import json

    from bench.inbox import InboxBenchOptions, run

    _settings()
    options = InboxBenchOptions(
        conversations=conversations, long_conversation=messages, requests=requests
    )
    click.echo(json.dumps(run(options)))


def _attach_kb() -> None:
    from supportbridge.kb_commands import kb

    main.add_command(kb)


_attach_kb()


if __name__ == "__main__":
    main()
