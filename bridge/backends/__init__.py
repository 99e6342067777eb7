"""What differs between one process and many, chosen once when a process starts: the bus, the
rate limiter's counters, the pollers' positions and leadership, shared secrets, broadcasts.
`LocalBackend` keeps them in this process and its data directory (the embedded mode);
`RedisBackend` keeps them in Redis, shared by every process (the distributed mode)."""

from bridge.backends.base import Backend

__all__ = ["Backend"]
