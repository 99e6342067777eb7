"""A free TCP port on loopback, for the processes benchmarks and tests start."""

from __future__ import annotations

import socket

# The caller binds the port later, in a process it starts: until then the kernel may hand the
# same port to the next probe (2 calls of 200 got one already given), and two servers started
# one after the other would be given one port. So a port handed out is never handed out again.
_HANDED_OUT: set[int] = set()
_TRIES = 1000


def free_port() -> int:
    for _ in range(_TRIES):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError(f"no loopback port that was not handed out already, in {_TRIES} tries")
