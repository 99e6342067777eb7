"""What every command does first: load the settings (a bad one stops with exit code 2 and one line
naming it), configure the logs, and run its work."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bridge.settings import Settings, SettingsError, load_settings
from bridge.util.logs import configure

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

T = TypeVar("T")


def settings_or_exit(**overrides: Any) -> Settings:
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        click.echo(f"supportbridge: {exc}", err=True)
        sys.exit(2)
    configure(settings.log_level, settings.log_format)
    return settings


def run_or_exit(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    try:
        asyncio.run(main())
    except SettingsError as exc:
        click.echo(f"supportbridge: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        pass
    finally:
        # What is left is the exit, whose last garbage collection walks every object the imports
        # made (seconds of a stop: aiogram's models, scikit-learn); frozen, they are skipped.
        gc.freeze()


def on_migrated_store(work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    """`work` on the store's engine, migrated first: a fresh install has no tables yet."""
    from bridge.store.migrate import migrated_engine

    async def run() -> T:
        engine = await migrated_engine(settings_or_exit().effective_database_url)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(run())
