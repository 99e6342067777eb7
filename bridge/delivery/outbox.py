"""The outbox: an outgoing message is committed `queued` first and published on the outbound bus
after, so a reply written while the bus is unreachable (Redis restarting) is in the store but on
no stream. Nothing else would publish it again: the pipeline's own replies come again with their
inbound batch, but an agent's reply, a move to private messages, a rating request or any other
message the web role writes does not. The sweep (`sweep_unsent`, run by every process that sends
a network's messages) publishes again each queued message of its network that no sender holds
and that was written (or last published again) `requeue_after_s` ago.

Sending it twice is what the claims (`SendClaims`) prevent. A message on the bus may be waiting
for a while before a sender takes it, and a sender may hold it for long: waiting on the network's
rate limit, retrying for up to `RetryPolicy.give_up_after_s` (ten minutes), uploading a file; a
sweep that waited out all of that would leave a lost reply unsent for more than ten minutes. So
instead a sender claims the messages of its batch in the store before sending any (an atomic
`UPDATE ... WHERE still queued and not claimed`, under a lease it renews while the batch is in
hand, and confirms before each try) and gives back what it did not send when the batch ends. The
sweep leaves a claimed message alone; a copy on the bus (published again, or an entry delivered
again) finds its message claimed by another sender, or no longer queued, and is skipped. A
message still waiting on the bus when the sweep comes only gets a copy behind it: one per
`requeue_after_s` at most, which its senders skip once the first copy is sent.

Several processes sweep the same network at once (every `bot` process of it, every `web` process
for the web chat): each message is taken by one of them per period, by the same kind of atomic
`UPDATE` (stamping `requeued_at`), so it is published once.

Leases are read on the store's clock where many processes share it (PostgreSQL), so that hosts
whose clocks differ still agree on whose a message is."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
import uuid
from collections.abc import Collection

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.bus import Bus
from bridge.domain import DeliveryStatus, Direction, Network
from bridge.store.models import conversations, messages, utcnow
from bridge.store.outbox import load_outbound
from bridge.util import metrics
from bridge.util.stopping import pause

log = logging.getLogger(__name__)

SEND_LEASE_S = 60.0
"""How long a sender's claim on a message lasts unless renewed: longer than one try of a send
(the networks' HTTP timeouts are 30 s, an upload's more, and the claim is renewed meanwhile)."""

SWEEP_LIMIT = 500
"""The most messages one pass of the sweep publishes again; the next pass takes the rest."""

Where = tuple[int, str]
"""Where a message goes: its conversation's id and chat id."""


async def store_now(conn: AsyncConnection) -> dt.datetime:
    """The shared clock: PostgreSQL's where many processes use one store; this process's own on
    SQLite, which one process uses."""
    if conn.dialect.name == "postgresql":
        value: dt.datetime = (await conn.execute(sa.select(sa.func.now()))).scalar_one()
        return value
    return utcnow()


class SendClaims:
    """The messages of one batch a sender holds: claimed before any of them is sent, the lease
    renewed while the batch is in hand (`keep`), given back at its end (`release`)."""

    def __init__(self, engine: AsyncEngine, lease_s: float = SEND_LEASE_S) -> None:
        self.engine = engine
        self.lease_s = lease_s
        self.token = uuid.uuid4().hex
        self.held: set[int] = set()
        # when (monotonic, taken before asking) the store last confirmed `held`
        self.confirmed_at = -math.inf
        self._done = asyncio.Event()

    async def take(self, ids: Collection[int]) -> dict[int, Where]:
        """Claim those of `ids` still queued and held by no other sender; each one claimed,
        with where it goes as stored now (a chat keyed anew is sent to anew)."""
        if not ids:
            return {}
        m, c = messages.c, conversations.c
        asked = time.monotonic()
        async with self.engine.begin() as conn:
            now = await store_now(conn)
            claimed = await _updated(
                conn,
                [
                    m.id.in_(set(ids)),
                    m.delivery_status == DeliveryStatus.QUEUED,
                    sa.or_(m.claimed_until.is_(None), m.claimed_until < now),
                ],
                claimed_by=self.token,
                claimed_until=self._until(now),
            )
            if not claimed:
                return {}
            rows = await conn.execute(
                sa.select(m.id, m.conversation_id, c.chat_id)
                .join(conversations, c.id == m.conversation_id)
                .where(m.id.in_(claimed))
            )
            where = {row.id: (row.conversation_id, row.chat_id) for row in rows}
        self.held = set(where)
        self.confirmed_at = asked
        return where

    async def holds(self, message_id: int) -> bool:
        """Whether this sender may send the message now: claimed, and surely still its own for
        half a lease (asked to the store again when the last confirmation is older)."""
        if message_id in self.held and time.monotonic() - self.confirmed_at > self.lease_s / 2:
            await self.renew()
        return message_id in self.held

    async def renew(self) -> None:
        """Extend the lease of the messages still claimed by this sender and still queued; one
        taken over meanwhile (the lease had run out) is not this sender's to send any more."""
        if not self.held:
            return
        m = messages.c
        asked = time.monotonic()
        async with self.engine.begin() as conn:
            now = await store_now(conn)
            kept = await _updated(
                conn,
                [
                    m.id.in_(self.held),
                    m.claimed_by == self.token,
                    m.delivery_status == DeliveryStatus.QUEUED,
                ],
                claimed_until=self._until(now),
            )
        self.held = set(kept)
        self.confirmed_at = asked

    async def keep(self) -> None:
        """Renew the lease every quarter of it until `release`; a store that cannot be reached
        meanwhile is asked again at the next turn (and `holds` asks before each send)."""
        while not self._done.is_set():
            await pause(self._done, self.lease_s / 4)
            if self._done.is_set() or not self.held:
                return
            try:
                await self.renew()
            except (sa.exc.DBAPIError, OSError) as exc:
                log.warning("claims of a batch not renewed: %s", exc)

    async def release(self) -> None:
        """Give back what was not sent, so that the next sender of the batch takes it at once;
        should the store not be reached, the lease runs out and the sweep publishes it again."""
        self._done.set()
        if not self.held:
            return
        m = messages.c
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    sa.update(messages)
                    .where(m.id.in_(self.held), m.claimed_by == self.token)
                    .values(claimed_by=None, claimed_until=None)
                )
        except (sa.exc.DBAPIError, OSError) as exc:
            log.warning("claims of a batch not given back (they run out): %s", exc)
        self.held = set()

    def _until(self, now: dt.datetime) -> dt.datetime:
        return now + dt.timedelta(seconds=self.lease_s)


async def _updated(
    conn: AsyncConnection, where: list[sa.ColumnElement[bool]], **values: object
) -> list[int]:
    """Set `values` on the messages `where` holds; the ids of those it changed."""
    changed = await conn.execute(
        sa.update(messages).where(*where).values(**values).returning(messages.c.id)
    )
    return list(changed.scalars().all())


async def requeue_stale(
    engine: AsyncEngine, bus: Bus, network: Network, requeue_after_s: float
) -> int:
    """One pass of the sweep: publish again the queued messages of `network` no sender holds
    that were written or published again `requeue_after_s` ago, or whose sender's lease ran out
    (it died, or lost the store); how many. Concurrent passes take each message once."""
    m = messages.c
    async with engine.begin() as conn:
        now = await store_now(conn)
        lapsed = m.claimed_until < now
        due = sa.and_(
            m.network == network,
            m.delivery_status == DeliveryStatus.QUEUED,
            m.direction == Direction.OUTBOUND,
            sa.or_(m.claimed_until.is_(None), lapsed),
            sa.or_(
                sa.func.coalesce(m.requeued_at, m.created_at)
                < now - dt.timedelta(seconds=requeue_after_s),
                lapsed,
            ),
        )
        candidates = sa.select(m.id).where(due).order_by(m.id).limit(SWEEP_LIMIT)
        if conn.dialect.name == "postgresql":
            # another sweeper's rows are left to it; `due`, checked again on the row itself
            # below, keeps a message taken by a sweep that committed meanwhile from being taken
            candidates = candidates.with_for_update(skip_locked=True)
        taken = (
            (
                await conn.execute(
                    sa.update(messages)
                    .where(m.id.in_(candidates.scalar_subquery()), due)
                    .values(requeued_at=now, claimed_by=None, claimed_until=None)
                    .returning(m.id)
                )
            )
            .scalars()
            .all()
        )
        if not taken:
            return 0
        unsent = await load_outbound(conn, m.id.in_(taken))
    try:
        await bus.publish_outbound(unsent)
    except Exception:
        # Still unpublished: due again at the next pass, not a period later.
        await _not_requeued(engine, taken, now)
        raise
    metrics.OUTBOX_REPUBLISHED.labels(network.value).inc(len(unsent))
    log.info("%s: %d queued messages published again", network.value, len(unsent))
    return len(unsent)


async def _not_requeued(engine: AsyncEngine, ids: Collection[int], stamped: dt.datetime) -> None:
    m = messages.c
    try:
        async with engine.begin() as conn:
            await conn.execute(
                sa.update(messages)
                .where(m.id.in_(ids), m.requeued_at == stamped)
                .values(requeued_at=None)
            )
    except (sa.exc.DBAPIError, OSError) as exc:
        log.warning("messages not published again stay due a period later: %s", exc)


async def sweep_unsent(
    engine: AsyncEngine,
    bus: Bus,
    network: Network,
    stop: asyncio.Event,
    *,
    every_s: float,
    requeue_after_s: float,
) -> None:
    """Until `stop`: every `every_s`, publish again the queued messages of `network` that were
    lost on the way to its senders (`requeue_stale`). A store or bus that cannot be reached is
    tried again at the next pass."""
    while not stop.is_set():
        try:
            await requeue_stale(engine, bus, network, requeue_after_s)
        except Exception as exc:
            log.warning("%s outbox sweep: %s; trying again", network.value, exc)
        await pause(stop, every_s)
