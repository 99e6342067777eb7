"""What the bus's streams are (families of sharded streams) and how an entry's payload is read."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from bridge.domain import Network

PAYLOAD_FIELD = "p"

Fields = dict[bytes, bytes]


@dataclass(frozen=True, slots=True)
class Family:
    """Sharded streams worked under leases, one consumer per shard at a time: the inbound
    shards (by conversation), or one network's outbound shards (by chat)."""

    name: str
    group: str


INBOUND = Family("in", "core")


def outbound(network: Network) -> Family:
    return Family(f"out:{network.value}", "senders")


def entry_payload(fields: Fields) -> bytes:
    """The payload; an entry some other writer added without one is handed on as its fields in
    JSON, so that the pipeline records it as bad input instead of it blocking the shard."""
    payload = fields.get(PAYLOAD_FIELD.encode())
    if payload is not None:
        return payload
    return orjson.dumps({text(k): v.decode(errors="replace") for k, v in fields.items()})


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
