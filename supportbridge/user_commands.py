"""`supportbridge user`: the inbox's agents and admins, their passwords and API tokens."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from supportbridge.startup import on_migrated_store

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine


@click.group()
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

    async def create(engine: AsyncEngine) -> str:
        role = Role.ADMIN if admin else Role.AGENT
        agent = await add_agent(
            engine, login, password, display_name=name, role=role, language=language
        )
        return f"{agent.role.value} {agent.login} created"

    try:
        click.echo(on_migrated_store(create))
    except AgentError as exc:
        raise click.ClickException(str(exc)) from None


@user.command("token")
@click.argument("login")
@click.option("--name", required=True, help="What the token is for (e.g. the CRM's name).")
@click.option("--read-only", is_flag=True, help="May only read (GET); any change gets 403.")
@click.option(
    "--days", type=click.IntRange(1, 3650), help="Expires after this many days (default: never)."
)
def user_token(login: str, name: str, read_only: bool, days: int | None) -> None:
    """Issue a REST API token acting as LOGIN (printed once; send it as a Bearer token)."""
    from bridge.inbox.agents import AgentError, find_agent
    from bridge.web.auth import TokenScope, issue_api_token

    async def issue(engine: AsyncEngine) -> str:
        return await issue_api_token(
            engine,
            (await find_agent(engine, login)).id,
            name,
            scope=TokenScope.READ_ONLY if read_only else TokenScope.FULL,
            valid_for=dt.timedelta(days=days) if days is not None else None,
        )

    try:
        click.echo(on_migrated_store(issue))
    except AgentError as exc:
        raise click.ClickException(str(exc)) from None


@user.command("tokens")
@click.argument("login")
def user_tokens(login: str) -> None:
    """List LOGIN's API tokens: number, access, created, expires, name (never the token)."""
    from bridge.inbox.agents import AgentError, find_agent
    from bridge.store.models import utcnow
    from bridge.web.auth import TokenInfo, list_api_tokens

    async def tokens(engine: AsyncEngine) -> list[TokenInfo]:
        return await list_api_tokens(engine, (await find_agent(engine, login)).id)

    try:
        found = on_migrated_store(tokens)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from None
    if not found:
        click.echo(f"{login} has no API token")
    now = utcnow()
    for token in found:
        expires = "never" if token.expires_at is None else f"{token.expires_at:%Y-%m-%d %H:%M}"
        if token.expired(now):
            expires += " (expired)"
        click.echo(
            f"{token.id:>10}  {token.scope.value:<9}  {token.created_at:%Y-%m-%d %H:%M}  "
            f"{expires:<26}  {token.name}"
        )


@user.command("revoke")
@click.argument("login")
@click.argument("token_ids", metavar="[NUMBER]...", nargs=-1, type=int)
@click.option("--all", "revoke_all", is_flag=True, help="Every token of LOGIN.")
def user_revoke(login: str, token_ids: tuple[int, ...], revoke_all: bool) -> None:
    """Revoke LOGIN's API tokens by NUMBER (as `supportbridge user tokens` lists them), or --all;
    a revoked token stops working at once."""
    from bridge.inbox.agents import AgentError, find_agent
    from bridge.web.auth import list_api_tokens, revoke_api_token

    if bool(token_ids) == revoke_all:
        raise click.UsageError("give the tokens' numbers, or --all")

    async def revoke(engine: AsyncEngine) -> tuple[int, list[int]]:
        """How many were revoked, and the numbers LOGIN has no token by."""
        agent = await find_agent(engine, login)
        numbers = (
            [t.id for t in await list_api_tokens(engine, agent.id)] if revoke_all else token_ids
        )
        unknown = [n for n in numbers if not await revoke_api_token(engine, agent.id, n)]
        return len(numbers) - len(unknown), unknown

    try:
        revoked, unknown = on_migrated_store(revoke)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from None
    if unknown:
        raise click.ClickException(f"{login} has no token {', '.join(map(str, unknown))}")
    click.echo(f"revoked {revoked} token(s) of {login}")


@user.command("password")
@click.argument("login")
@_password_option()
def user_password(login: str, password: str) -> None:
    """Set an agent's password (their sessions and API tokens end: they sign in anew)."""
    from bridge.inbox.agents import AgentError, find_agent, update_agent

    async def change(engine: AsyncEngine) -> None:
        await update_agent(engine, (await find_agent(engine, login)).id, password=password)

    try:
        on_migrated_store(change)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"password of {login} changed; their sessions and API tokens have ended")
