"""Sender workers: take a network's outbound stream, respect its shared rate limits, retry what
can be retried, and record every outcome (sent with the network's id, or failed with its reason).

Within a batch, chats are served concurrently and each chat's messages one after another, so a
rate-limited chat does not hold up the others and a chat's replies keep their order.

A message goes to its conversation's chat as the store has it when the batch is taken: a
private conversation the network named anew (`Delivered.chat_id`, a Messenger private reply's
PSID) is keyed by that id with the outcome (bridge.store.rekey), and its later replies go there.

Asked to stop, a sender starts no new send and waits neither on a rate limit nor for a retry: the
sends in flight finish and are recorded, and the batch is handed back unacknowledged (`Stopped`),
so what it did not send stays queued for the next sender.

A sender claims the messages of its batch in the store before sending any, and holds them while
the batch is in hand (`bridge.delivery.outbox.SendClaims`): another copy of one (published again
by the outbox sweep, or by an agent's "send again") is skipped by any other sender meanwhile, and
after, as the message is no longer queued.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

import aiohttp
import orjson
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus, BusEntry
from bridge.channel import Channel, Delivered, DeliveryError
from bridge.delivery.outbox import SEND_LEASE_S, SendClaims, Where
from bridge.delivery.ratelimit import RateLimiter
from bridge.domain import DeliveryStatus, Direction, Event, EventKind, Network, OutboundMessage
from bridge.store.models import messages, utcnow
from bridge.store.outbox import load_outbound
from bridge.store.rekey import Rekeyed, rekey_private_chat
from bridge.util import metrics
from bridge.util.logs import about_conversation
from bridge.util.stopping import pause

log = logging.getLogger(__name__)

TRANSIENT = (aiohttp.ClientError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_delay_s: float = 0.5
    max_delay_s: float = 60.0
    give_up_after_s: float = 600.0

    def backoff(self, attempt: int) -> float:
        """Exponential with full jitter, so that many senders do not retry in step."""
        return random.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


@dataclass(slots=True)
class SenderStats:
    sent: int = 0
    failed: int = 0
    retries: int = 0
    skipped_duplicates: int = 0
    rate_limited_s: float = 0.0


class Stopped(Exception):
    """The sender was asked to stop with sends of its batch not done: hand the batch back."""


class Sender:
    def __init__(
        self,
        engine: AsyncEngine,
        bus: Bus,
        channel: Channel,
        limiter: RateLimiter,
        policy: RetryPolicy | None = None,
        stop: asyncio.Event | None = None,
        lease_s: float = SEND_LEASE_S,
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.channel = channel
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.stop = stop or asyncio.Event()
        self.lease_s = lease_s
        self.stats = SenderStats()

    async def handle(self, entries: Sequence[BusEntry]) -> None:
        outbound = [m for m in map(_decode, entries) if m is not None]
        # Only the messages still queued that no other sender holds: a message already sent or
        # failed is never sent again, nor one another sender is sending.
        claims = SendClaims(self.engine, self.lease_s)
        pending = await claims.take({each.message_id for each in outbound})
        keeping = asyncio.ensure_future(claims.keep())
        try:
            await self._deliver_claimed(outbound, pending, claims)
        finally:
            await claims.release()  # what was not sent; this ends `keep` too
            await keeping

    async def _deliver_claimed(
        self, outbound: list[OutboundMessage], pending: dict[int, Where], claims: SendClaims
    ) -> None:
        by_chat: dict[str, list[OutboundMessage]] = {}
        for message in outbound:
            if (where := pending.pop(message.message_id, None)) is not None:
                # a copy later in the batch is skipped too; a chat keyed anew is sent to anew
                conversation_id, chat_id = where
                message = message.model_copy(
                    update={"conversation_id": conversation_id, "chat_id": chat_id}
                )
                by_chat.setdefault(message.chat_id, []).append(message)
            else:
                self.stats.skipped_duplicates += 1
        # Every chat finishes before the batch is given back, even when one of them failed:
        # a batch handed out again while a send of it is still in flight would send it twice.
        outcomes = await asyncio.gather(
            *(self._deliver_chat(chat, claims) for chat in by_chat.values()),
            return_exceptions=True,
        )
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def _deliver_chat(self, chat: list[OutboundMessage], claims: SendClaims) -> None:
        anew: Where | None = None
        for message in chat:
            if anew is not None:  # the network named the chat anew: the rest go there
                conversation_id, chat_id = anew
                update = {"conversation_id": conversation_id, "chat_id": chat_id}
                message = message.model_copy(update=update)
            with about_conversation(message.conversation_id):
                anew = await self._deliver(message, claims) or anew

    async def _deliver(self, message: OutboundMessage, claims: SendClaims) -> Where | None:
        """Send one message and record the outcome; where the chat's next messages go, when
        the network named the chat anew."""
        started = time.monotonic()
        attempt = 0
        while True:
            waited = await self.limiter.acquire(self.channel.limits(message), self.stop)
            if self.stop.is_set():
                raise Stopped(f"message {message.message_id} left queued")
            self.stats.rate_limited_s += waited
            metrics.RATE_LIMIT_WAIT.labels(message.network.value).inc(waited)
            if not await claims.holds(message.message_id):
                # Its lease ran out meanwhile (the store unreachable) and another sender took a
                # copy of it: that one sends it.
                log.info("message %d is another sender's now; not sent here", message.message_id)
                self.stats.skipped_duplicates += 1
                return None
            try:
                delivered = await self.channel.send(message)
            except DeliveryError as exc:
                if exc.permanent:
                    metrics.DELIVERY_FAILURES.labels(message.network.value, "permanent").inc()
                    await self._record(message, DeliveryStatus.FAILED, error=exc.reason)
                    return None
                reason, delay = exc.reason, exc.retry_after
            except TRANSIENT as exc:
                reason, delay = f"network unreachable: {exc!r}", None
            else:
                return await self._record_sent(message, delivered)
            attempt += 1
            delay = delay if delay is not None else self.policy.backoff(attempt)
            if time.monotonic() - started + delay > self.policy.give_up_after_s:
                metrics.DELIVERY_FAILURES.labels(message.network.value, "gave_up").inc()
                await self._record(
                    message, DeliveryStatus.FAILED, error=f"gave up after {attempt} tries: {reason}"
                )
                return None
            self.stats.retries += 1
            metrics.RETRIES.labels(message.network.value).inc()
            log.info("message %d: %s; retrying in %.1f s", message.message_id, reason, delay)
            await pause(self.stop, delay)

    async def _record_sent(self, message: OutboundMessage, delivered: Delivered) -> Where | None:
        """Record a sent message; where the chat's next messages go when the network named the
        chat anew (its conversation keyed so with the outcome)."""
        anew = delivered.chat_id if delivered.chat_id not in (None, message.chat_id) else None
        rekeyed = await self._record(
            message, DeliveryStatus.SENT, network_id=delivered.network_message_id, chat_id=anew
        )
        return (rekeyed.conversation_id, anew) if rekeyed is not None and anew else None

    async def _record(
        self,
        message: OutboundMessage,
        status: DeliveryStatus,
        *,
        network_id: str | None = None,
        error: str | None = None,
        chat_id: str | None = None,
    ) -> Rekeyed | None:
        now = utcnow()
        values: dict[str, object] = {
            "delivery_status": status,
            "delivery_error": error,
            "claimed_by": None,
            "claimed_until": None,
        }
        metrics.OUTBOUND.labels(message.network.value, status.value).inc()
        if status is DeliveryStatus.SENT:
            values |= {"sent_at": now, "network_message_id": network_id}
            self.stats.sent += 1
        else:
            self.stats.failed += 1
            log.warning("message %d failed: %s", message.message_id, error)
        rekeyed = await self._write_outcome(message, values, chat_id)
        conversation_id = rekeyed.conversation_id if rekeyed else message.conversation_id
        status_data = {"message_id": message.message_id, "status": status.value, "error": error}
        events = [
            Event(kind=EventKind.MESSAGE_STATUS, conversation_id=conversation_id, data=status_data)
        ]
        if rekeyed is not None and rekeyed.merged_from is not None:
            events.append(
                Event(
                    kind=EventKind.CONVERSATION_MERGED,
                    conversation_id=rekeyed.merged_from,
                    data={"into": rekeyed.conversation_id},
                )
            )
        try:
            await self.bus.publish_events(events)
        except Exception as exc:
            # The status is stored; an open inbox only misses the live update of it.
            log.warning("message %d: live update not published: %s", message.message_id, exc)
        return rekeyed

    async def _write_outcome(
        self, message: OutboundMessage, values: dict[str, object], chat_id: str | None
    ) -> Rekeyed | None:
        """Store the outcome, waiting out an outage of the database: a message already sent
        must not stay `queued`, or it would be sent again. With `chat_id`, the network named
        the chat so: its conversation is keyed by it in the same transaction (a conflict with
        the person's own message stored meanwhile is tried again, and merges)."""
        delay = self.policy.base_delay_s
        while True:
            try:
                async with self.engine.begin() as conn:
                    await conn.execute(
                        sa.update(messages)
                        .where(messages.c.id == message.message_id)
                        .values(values)
                    )
                    if chat_id is None:
                        return None
                    return await rekey_private_chat(
                        conn, message.conversation_id, chat_id, utcnow()
                    )
            except (sa.exc.DBAPIError, OSError) as exc:
                log.warning(
                    "message %d: outcome not stored (%s); retrying", message.message_id, exc
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


async def requeue_unsent(engine: AsyncEngine, bus: Bus, network: Network) -> int:
    """Publish again every reply of `network` the store holds as queued, for a bus that lost
    them with the process; the sender sends each once (a sent one is no longer queued). Only
    where one process sends (the in-process bus), before its sender starts: the claims of the
    process that died are given back, as nobody else can be sending."""
    where = (
        messages.c.network == network,
        messages.c.direction == Direction.OUTBOUND,
        messages.c.delivery_status == DeliveryStatus.QUEUED,
    )
    async with engine.begin() as conn:
        await conn.execute(
            sa.update(messages)
            .where(*where, messages.c.claimed_by.is_not(None))
            .values(claimed_by=None, claimed_until=None)
        )
        unsent = await load_outbound(conn, *where)
    if unsent:
        log.info("%s: %d replies queued before the start are sent now", network.value, len(unsent))
        await bus.publish_outbound(unsent)
    return len(unsent)


def _decode(entry: BusEntry) -> OutboundMessage | None:
    try:
        return OutboundMessage.model_validate(orjson.loads(entry.payload))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        # Only the bridge writes this stream; a bad entry is a bug to see in the log, not to retry.
        log.error("outbound entry %s is not a message (%s); skipped", entry.entry_id, exc)
        return None
