"""`supportbridge bench`: the benchmarks of bench/, which print figures (JSON on the last line)."""

from __future__ import annotations

import click

from supportbridge.kb_commands import embeddings_option
from supportbridge.startup import run_or_exit, settings_or_exit


@click.group()
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
@click.option(
    "--per-publish",
    type=click.IntRange(min=1),
    default=500,
    show_default=True,
    help="Messages per publish call (1: each message acknowledged on its own, as webhooks).",
)
def bench_pipeline(
    mode: str, messages: int, conversations: int, rate: float | None, cores: int, per_publish: int
) -> None:
    """Push synthetic inbound messages through the real pipeline."""
    from bench.pipeline import BenchOptions, run_bench

    settings = settings_or_exit()
    options = BenchOptions(mode, messages, conversations, rate, cores, per_publish)
    run_or_exit(lambda: run_bench(settings, options))


@bench.command("delivery")
@click.option("--messages", type=click.IntRange(min=1), default=300, show_default=True)
@click.option("--chats", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--senders", type=click.IntRange(min=1), default=2, show_default=True)
def bench_delivery(messages: int, chats: int, senders: int) -> None:
    """Outbound throughput to the Telegram emulator with the shared rate limits on."""
    from bench.delivery import DeliveryOptions, run

    settings_or_exit()
    run_or_exit(lambda: run(DeliveryOptions(messages, chats, senders)))


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
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    help="A soak: write at --rate for this many seconds (instead of --messages) and report how "
    "much each role's memory grew.",
)
@click.option(
    "--inbox",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Fill this many conversations (as bench inbox does) and time the inbox's heaviest "
    "requests, from a web process, before and while the messages come.",
)
@click.option(
    "--agents",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="With --inbox: agents whose list stays open while the messages come, each fetched "
    "every 2 s as the live page does.",
)
def bench_load(
    messages: int,
    conversations: int,
    rate: float | None,
    cores: str,
    bots: int,
    duration: float | None,
    inbox: int,
    agents: int,
) -> None:
    """The distributed mode end to end: customers on three emulated networks, real processes."""
    from bench.load import LoadOptions, run

    if duration is not None:
        if rate is None:
            raise click.BadParameter("a soak needs --rate", param_hint="--duration")
        messages = max(1, round(rate * duration))

    try:
        counts = [int(n) for n in cores.split(",")]
    except ValueError:
        raise click.BadParameter(
            "a comma-separated list of numbers", param_hint="--cores"
        ) from None
    settings_or_exit()
    options = LoadOptions(messages, conversations, rate, counts, bots, inbox, agents)
    run_or_exit(lambda: run(options))


@bench.command("kb")
@click.option("--articles", type=click.IntRange(min=2), default=10_000, show_default=True)
@click.option("--queries", type=click.IntRange(min=1), default=2_000, show_default=True)
@embeddings_option
def bench_kb(articles: int, queries: int, embeddings: str, embeddings_model: str) -> None:
    """Knowledge-base query latency, index memory and fit time, with an embedding backend or not."""
    from bench.kb import run_kb_bench
    from kb.embedding import EmbeddingError, load_embedder

    try:
        embedder = load_embedder(embeddings, embeddings_model)
    except EmbeddingError as exc:
        raise click.ClickException(str(exc)) from exc
    run_kb_bench(articles, queries, embedder)  # prints its figures, as the other benches do


@bench.command("inbox")
@click.option("--conversations", type=click.IntRange(min=1), default=10_000, show_default=True)
@click.option(
    "--messages-each",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Messages of every conversation.",
)
@click.option(
    "--messages",
    type=click.IntRange(min=1),
    default=2_000,
    show_default=True,
    help="Messages of the one long conversation.",
)
@click.option("--requests", type=click.IntRange(min=1), default=30, show_default=True)
def bench_inbox(conversations: int, messages_each: int, messages: int, requests: int) -> None:
    """Server time of the inbox list, its search and a long conversation on PostgreSQL."""
    import json

    from bench.inbox import InboxBenchOptions, run

    settings_or_exit()
    options = InboxBenchOptions(
        conversations=conversations,
        messages_per_conversation=messages_each,
        long_conversation=messages,
        requests=requests,
    )
    click.echo(json.dumps(run(options)))
