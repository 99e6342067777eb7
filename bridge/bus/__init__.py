"""The message bus: inbound shards, outbound streams per network, live events."""

from bridge.bus.base import BatchHandler, Bus, BusEntry, shard_of

__all__ = ["BatchHandler", "Bus", "BusEntry", "shard_of"]
