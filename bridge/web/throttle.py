"""The sign-in throttle: attempts counted per login and per client address, in the store, so that
every `web` process counts the same ones.

A key's first few attempts go through at once. After them, each attempt must come a delay after
the one before, and the delay doubles with every attempt, up to a ceiling. An attempt made sooner
is refused (429, with the time left) and not checked at all: while throttled, even the right
password is refused. An attempt is counted before its password is checked, so a burst of parallel
guesses gets no more through than the same guesses one after another. Signing in forgets the
login's attempts and gives the address back its own one; a key quiet for long starts afresh.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.settings import Settings
from bridge.store.engine import insert_ignoring_conflicts
from bridge.store.models import sign_in_attempts

# Attempts racing for one key are counted one at a time: a loser reads again (each round has a
# winner, so N at once settle within N rounds), and after this many lost races (a flood of
# parallel guesses, not people) it is simply told to wait.
_RACES = 50
_RACE_WAIT = 1.0
_MAX_DOUBLINGS = 40  # far past any ceiling; keeps 2**n a float


@dataclass(frozen=True, slots=True)
class Rule:
    free: int
    first_delay: float
    max_delay: float
    forget_after: float

    def wait(self, attempts: int, last: float, now: float) -> float:
        """Seconds to wait before the next attempt, after `attempts` made, the last at `last`."""
        if attempts < self.free or now - last >= self.forget_after:
            return 0.0
        doublings = min(attempts - self.free, _MAX_DOUBLINGS)
        delay = min(self.max_delay, self.first_delay * 2.0**doublings)
        return max(0.0, last + delay - now)

    def counted(self, attempts: int, last: float, now: float) -> int:
        """How many attempts a key has to its name now (none, once forgotten)."""
        return 0 if now - last >= self.forget_after else attempts


Key = tuple[str, Rule]


def login_rule(settings: Settings) -> Rule:
    return Rule(
        settings.sign_in_free_attempts,
        settings.sign_in_first_delay_seconds,
        settings.sign_in_max_delay_seconds,
        settings.sign_in_forget_seconds,
    )


def address_rule(settings: Settings) -> Rule:
    return Rule(
        settings.sign_in_free_attempts_per_address,
        settings.sign_in_first_delay_seconds,
        settings.sign_in_max_delay_seconds,
        settings.sign_in_forget_seconds,
    )


def login_key(login: str) -> str:
    return "login:" + login.strip().lower()[:128]


def address_key(remote: str | None) -> str:
    try:
        address = ipaddress.ip_address(remote or "")
    except ValueError:
        return "address:" + (remote or "unknown")[:120]
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return f"address:{address.ipv4_mapped}"
        # one IPv6 client usually holds a whole /64: counted as one address
        return f"address:{ipaddress.IPv6Network((address, 64), strict=False)}"
    return f"address:{address}"


class _Raced(Exception):
    """Another attempt changed a key between our reading and our writing it."""


async def claim(engine: AsyncEngine, keys: Sequence[Key]) -> float:
    """Count one attempt against every key; or, when any of them must still wait, count nothing
    and return the seconds to wait (0.0: go ahead)."""
    # one order of row locks for every transaction: no deadlock
    ordered = sorted(keys, key=lambda key: key[0])
    names = [name for name, _ in ordered]
    t = sign_in_attempts.c
    for _ in range(_RACES):
        now = time.time()
        async with engine.connect() as conn:
            found = await conn.execute(
                sa.select(t.key, t.attempts, t.last_attempt).where(t.key.in_(names))
            )
            rows = {row.key: (row.attempts, row.last_attempt) for row in found}
        wait = max(
            (rule.wait(*rows[name], now) for name, rule in ordered if name in rows), default=0.0
        )
        if wait > 0:
            return wait
        try:
            await _count(engine, ordered, rows, now)
        except _Raced:
            continue
        if len(rows) < len(ordered):  # a new key: time to drop the long-quiet ones
            await _forget_quiet(engine, now - max(rule.forget_after for _, rule in ordered))
        return 0.0
    return _RACE_WAIT


async def _count(
    engine: AsyncEngine, keys: Sequence[Key], rows: dict[str, tuple[int, float]], now: float
) -> None:
    """Add the attempt to each key, provided each is still as read (compare and set)."""
    t = sign_in_attempts.c
    async with engine.begin() as conn:
        for name, rule in keys:
            if name in rows:
                attempts, last = rows[name]
                statement = (
                    sa.update(sign_in_attempts)
                    .where(t.key == name, t.attempts == attempts, t.last_attempt == last)
                    .values(attempts=rule.counted(attempts, last, now) + 1, last_attempt=now)
                )
            else:
                statement = insert_ignoring_conflicts(conn, sign_in_attempts).values(
                    key=name, attempts=1, last_attempt=now
                )
            if (await conn.execute(statement)).rowcount != 1:
                raise _Raced  # rolls back the keys counted before it


async def _forget_quiet(engine: AsyncEngine, before: float) -> None:
    async with engine.begin() as conn:
        await conn.execute(
            sa.delete(sign_in_attempts).where(sign_in_attempts.c.last_attempt < before)
        )


async def signed_in(engine: AsyncEngine, login: str, address: str) -> None:
    """The right password: the login's attempts are forgotten, the address gets its one back."""
    t = sign_in_attempts.c
    async with engine.begin() as conn:  # address:… sorts before login:…, as in `claim`
        await conn.execute(
            sa.update(sign_in_attempts)
            .where(t.key == address, t.attempts > 0)
            .values(attempts=t.attempts - 1)
        )
        await conn.execute(sa.delete(sign_in_attempts).where(t.key == login))
