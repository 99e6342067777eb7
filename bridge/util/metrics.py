"""Prometheus metrics of every role, served at `/metrics` on the role's HTTP port."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

INBOUND = Counter(
    "sb_inbound_messages_total", "Customer messages stored (first copies)", ["network"]
)
DUPLICATES = Counter("sb_inbound_duplicates_total", "Inbound copies dropped as already stored")
DEAD_LETTERS = Counter("sb_dead_letters_total", "Inbound entries dead-lettered (bad input)")
OUTBOUND = Counter(
    "sb_outbound_messages_total", "Outgoing messages by final status", ["network", "status"]
)
DELIVERY_FAILURES = Counter(
    "sb_delivery_failures_total",
    "Failed sends: permanent (the network refused) or given up after retries",
    ["network", "kind"],
)
RETRIES = Counter("sb_delivery_retries_total", "Sends retried after a transient error", ["network"])
RATE_LIMIT_WAIT = Counter(
    "sb_rate_limit_wait_seconds_total",
    "Time senders waited for the shared rate limits",
    ["network"],
)
OUTBOX_REPUBLISHED = Counter(
    "sb_outbox_republished_total",
    "Queued outgoing messages the outbox sweep published again: lost on the way to the senders "
    "(the bus unreachable as they were written), or left by a sender that died holding them",
    ["network"],
)
HANDOFFS = Counter("sb_handoffs_total", "Conversations handed to agents", ["reason"])
AUTO_ANSWERS = Counter("sb_auto_answers_total", "Questions the bot answered", ["network"])
PIPELINE_LATENCY = Histogram(
    "sb_pipeline_latency_seconds",
    "From accepted from the network to the reply stored and queued",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
HTTP_REQUEST_DURATION = Histogram(
    "sb_http_request_duration_seconds",
    "How long the HTTP port took to answer, template included, by method and route (live "
    "sockets left out)",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
STREAM_LAG = Gauge("sb_inbound_stream_lag", "Inbound entries appended but not yet acknowledged")
SHARD_AGE = Gauge(
    "sb_inbound_shard_oldest_seconds",
    "Per inbound shard, how long its oldest unacknowledged entry has waited",
    ["shard"],
)
SHARDS_STALLED = Gauge(
    "sb_inbound_shards_stalled",
    "Inbound shards whose oldest entry has waited longer than stalled_shard_seconds",
)

KB_EMBEDDINGS_ACTIVE = Gauge(
    "sb_kb_embeddings_active",
    "1 while the knowledge base matches with this embedding backend's model; 0 while it matches "
    "lexically instead, the backend having failed to load or to embed the examples",
    ["backend"],
)
KB_EMBEDDING_FAILURES = Counter(
    "sb_kb_embedding_failures_total",
    "Failures of the embedding backend: at load or fit (the knowledge base matched lexically "
    "instead) or on a question (not answered: handed to the agents)",
    ["backend", "stage"],
)


def exposition() -> tuple[bytes, str]:
    return generate_latest(), CONTENT_TYPE_LATEST
