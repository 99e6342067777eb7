"""`supportbridge user`: the inbox's agents and admins, their passwords and API tokens."""

from __future__ import annotations

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
def user_token(login: str, name: str) -> None:
    """Issue a REST API token acting as LOGIN (printed once; send it as a Bearer token)."""
    from bridge.inbox.agents import AgentError, find_agent
    from bridge.web.auth import issue_api_token

    async def issue(engine: AsyncEngine) -> str:
        return await issue_api_token(engine, (await find_agent(engine, login)).id, name)

    try:
        click.echo(on_migrated_store(issue))
    except AgentError as exc:
        raise click.ClickException(str(exc)) from None


@user.command("password")
@click.argument("login")
@_password_option()
def user_password(login: str, password: str) -> None:
    """Set an agent's password."""
    from bridge.inbox.agents import AgentError, find_agent, update_agent

    async def change(engine: AsyncEngine) -> None:
        await update_agent(engine, (await find_agent(engine, login)).id, password=password)

    try:
        on_migrated_store(change)
    except AgentError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"password of {login} changed")
