"""CPU time per message and peak memory, per role, read from the processes' own counters.

Throughput on a shared machine says as much about the neighbours as about the code; the CPU a
process spent on the same messages does not, so it is the figure to compare between runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping, Sequence

import psutil

# The database and Redis servers run as several processes (one backend per connection).
SERVER_NAMES = {"postgres": ("postgres", "postmaster"), "redis": ("redis-server",)}


def server_pids(names: Sequence[str]) -> list[int]:
    pids = []
    for process in psutil.process_iter(["name"]):
        if process.info["name"] in names:
            pids.append(process.pid)
    return pids


def _cpu_seconds(pid: int) -> float | None:
    with contextlib.suppress(psutil.Error):
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    return None


class CpuMeter:
    """CPU seconds each role spent between `start` and `stop`; a role is found by its pids."""

    def __init__(self, roles: Mapping[str, Callable[[], Sequence[int]]]) -> None:
        self.roles = roles
        self.started: dict[str, dict[int, float]] = {}
        self.spent: dict[str, float] = {}

    def _read(self) -> dict[str, dict[int, float]]:
        readings: dict[str, dict[int, float]] = {}
        for role, pids in self.roles.items():
            readings[role] = {}
            for pid in pids():
                seconds = _cpu_seconds(pid)
                if seconds is not None:
                    readings[role][pid] = seconds
        return readings

    def start(self) -> None:
        self.started = self._read()

    def stop(self) -> None:
        # A process that appeared during the run (a new database connection) counts from zero.
        for role, now in self._read().items():
            before = self.started.get(role, {})
            self.spent[role] = sum(seconds - before.get(pid, 0.0) for pid, seconds in now.items())

    def ms_per_message(self, messages: int) -> dict[str, float]:
        return {role: round(s * 1000 / max(messages, 1), 3) for role, s in self.spent.items()}


def with_servers(
    roles: Mapping[str, Callable[[], Sequence[int]]],
) -> dict[str, Callable[[], Sequence[int]]]:
    """The given roles plus the PostgreSQL and Redis servers of this machine."""
    servers = {
        role: (lambda names=names: server_pids(names)) for role, names in SERVER_NAMES.items()
    }
    return {**roles, **servers}


class PeakMemory:
    """The most memory each role held at once (its processes summed), sampled while `run` runs;
    a role is found by its pids, read again at every sample. Each process counts its proportional
    set size where the system tells it: PostgreSQL's backends share their buffers, and their
    resident sizes added up would count the shared pages once per backend."""

    def __init__(self, roles: Mapping[str, Callable[[], Sequence[int]]]) -> None:
        self.roles = roles
        self.peak_bytes: dict[str, int] = dict.fromkeys(roles, 0)
        self.samples: list[dict[str, int]] = []

    def sample(self) -> None:
        now: dict[str, int] = {}
        for role, pids in self.roles.items():
            total = 0
            for pid in pids():
                with contextlib.suppress(psutil.Error):
                    total += _proportional_bytes(psutil.Process(pid))
            now[role] = total
            self.peak_bytes[role] = max(self.peak_bytes[role], total)
        self.samples.append(now)

    async def run(self, stop: asyncio.Event, every_s: float = 0.5) -> None:
        while not stop.is_set():
            self.sample()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)

    def megabytes(self) -> dict[str, float]:
        return {role: round(n / 1024 / 1024, 1) for role, n in self.peak_bytes.items()}

    def growth_megabytes(self) -> dict[str, float] | None:
        """Per role, the mean of the last fifth of the samples less that of the second fifth
        (the first is the warm-up: caches and pools filling); None with too few samples."""
        fifth = len(self.samples) // 5
        if fifth < 2:
            return None
        early, late = self.samples[fifth : 2 * fifth], self.samples[-fifth:]

        def mean(samples: list[dict[str, int]], role: str) -> float:
            return sum(sample[role] for sample in samples) / len(samples)

        return {
            role: round((mean(late, role) - mean(early, role)) / 1024 / 1024, 1)
            for role in self.roles
        }


def _proportional_bytes(process: psutil.Process) -> int:
    full = process.memory_full_info()
    return int(getattr(full, "pss", full.rss))
