"""`supportbridge run`: everything in one process on the embedded database."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from pathlib import Path

from bots.facebook.channel import WEBHOOK_PATH as FACEBOOK_WEBHOOK_PATH
from bots.instagram.channel import WEBHOOK_PATH as INSTAGRAM_WEBHOOK_PATH
from bridge.domain import Network
from bridge.inbox.agents import ensure_first_admin
from bridge.knowledge.articles import seed_articles
from bridge.settings import Settings
from bridge.store.customer_history import customer_history
from bridge.store.engine import make_engine
from bridge.store.kept_files import StoredFiles
from bridge.store.migrate import upgrade
from bridge.web.app import add_inbox
from bridge.web.health import add_health_routes
from bridge.web.server import make_app, serve_http
from supportbridge.networks import configured_networks, make_channel, make_webchat
from supportbridge.roles.core import run_core
from supportbridge.roles.web import run_webchat
from supportbridge.runtime import (
    role_tasks,
    run_channel,
    services,
    stop_on_signals,
    webhook_app,
)

log = logging.getLogger(__name__)


async def first_of(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


PROJECT_ROOT = Path(__file__).resolve().parents[2]


async def embedded_main(settings: Settings, *, sandbox: bool = False) -> None:
    """`supportbridge run`: migrations, core, every configured network, the web chat and HTTP
    in one process; with `sandbox`, the networks without a token run against emulators on the
    same port."""
    await upgrade(settings.effective_database_url)
    await _seed_knowledge_base(settings)
    app = make_app()
    playground = None
    if sandbox:
        from emulators.sandbox.app import emulated_networks, mount_sandbox, sandbox_settings

        emulated = emulated_networks(configured_networks(settings))
        playground = mount_sandbox(app, emulated)
        settings = sandbox_settings(settings, emulated)
    stop = stop_on_signals(settings)
    async with services(settings) as (engine, backend):
        kept = StoredFiles(engine)
        channels = [make_channel(n, settings, kept) for n in configured_networks(settings)]
        webchat = await make_webchat(settings, backend, customer_history(engine), kept)
        started = asyncio.Event()  # ready once the knowledge base's matcher is fitted
        add_health_routes(
            app,
            engine,
            backend.bus,
            stalled_after_s=settings.stalled_shard_seconds,
            started=started,
        )
        webhook_app(app, [*channels, webchat], backend)
        files = {c.network: c.fetch_file for c in [*channels, webchat]}
        limits = {c.network: c.file_limits for c in [*channels, webchat]}
        add_inbox(app, engine, backend.bus, settings, files, limits)
        first_password = await ensure_first_admin(engine)
        async with role_tasks(stop) as start:
            # The port first: in the sandbox the channels poll emulators served on it.
            listening = asyncio.Event()
            start(serve_http(settings, app, stop, listening))
            start(run_core(settings, engine, backend.bus, stop, started))
            await listening.wait()  # what is printed next can be opened at once
            for channel in channels:
                start(run_channel(settings, engine, backend, channel, stop))
            start(run_webchat(settings, engine, backend, webchat, stop))
            base = f"http://{settings.http_host}:{settings.http_port}"
            if playground is not None:
                webhooks = {
                    Network.FACEBOOK: FACEBOOK_WEBHOOK_PATH,
                    Network.INSTAGRAM: INSTAGRAM_WEBHOOK_PATH,
                }
                await playground.start(base, webhooks)
            # Said once the bot can answer: messages that came meanwhile are kept and waiting.
            await first_of(started, stop)
            if stop.is_set():
                return
            print(
                f"supportbridge is running at {base}/ "
                f"(database: {settings.effective_database_url}); press Ctrl+C to stop",
                flush=True,
            )
            print(
                f'web chat: put <script src="{base}/widget.js" async></script> on a page',
                flush=True,
            )
            if playground is not None:
                print(f"sandbox: play a customer at {base}/sandbox/", flush=True)
                if not _loopback(settings.http_host):
                    print(DEMO_WARNING.format(host=settings.http_host), flush=True)
            print(f"inbox: open {base}/ and {_sign_in_hint(first_password)}", flush=True)


async def _seed_knowledge_base(settings: Settings) -> None:
    """A new installation answers from the sample knowledge base until its own is imported."""
    seed = settings.kb_seed
    if not settings.responder or seed is None:
        return
    if not seed.is_absolute() and not seed.is_file():
        seed = PROJECT_ROOT / seed  # started elsewhere than the checkout: its own sample
    if not seed.is_file():
        log.info("no knowledge base to start from: %s is not a file", seed)
        return
    engine = make_engine(settings.effective_database_url)
    try:
        count = await seed_articles(engine, seed)
    finally:
        await engine.dispose()
    if count:
        print(f"knowledge base: imported {count} articles from {seed}", flush=True)


DEMO_WARNING = """
!!! THE SANDBOX IS A DEMO, AND IT LISTENS ON {host}, NOT ONLY ON THIS MACHINE !!!
!!! Its emulated networks have no accounts: anyone who reaches this port can write as a
!!! customer. Playing a customer works from this machine only. Do not run --sandbox for real.
"""


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _sign_in_hint(first_password: str | None) -> str:
    if first_password is not None:
        return (
            f"sign in as admin with the password {first_password} (shown once; change it "
            "with `supportbridge user password admin`)"
        )
    return "sign in with your login (`supportbridge user add LOGIN --admin` creates one)"
