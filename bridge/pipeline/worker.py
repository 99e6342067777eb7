"""The core worker's batch handler: decode -> (dead-letter | ingest -> route -> store replies)
in one transaction, then queue the replies and tell the inboxes.

The bus acknowledges the batch only after `handle` returns, i.e. after the commit and the
queueing. A batch delivered again finds its messages stored and re-queues their replies that
are still queued (the senders drop a second copy by idempotency key), so nothing is lost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import orjson
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.bus import Bus, BusEntry
from bridge.bus.base import UNREADABLE
from bridge.domain import (
    ConversationState,
    DecisionOutcome,
    DeliveryStatus,
    Direction,
    Event,
    EventKind,
    InboundMessage,
    OutboundMessage,
    Unreadable,
    storable,
)
from bridge.pipeline import batch_pg
from bridge.pipeline.ingest import (
    ConversationRow,
    Stored,
    apply_deletes,
    apply_edits,
    apply_permissions,
    edited_comments,
    ingest,
)
from bridge.pipeline.responder import Responder
from bridge.pipeline.route import Reply, Routed, Router, StateChange
from bridge.pipeline.team_routing import LiveRules
from bridge.pipeline.thresholds import LiveThresholds
from bridge.settings import Settings
from bridge.store import ratings
from bridge.store.engine import insert_ignoring_conflicts
from bridge.store.models import (
    conversation_labels,
    conversations,
    dead_letters,
    decisions,
    labels,
    messages,
    teams,
    utcnow,
)
from bridge.store.outbox import load_outbound, to_outbound
from bridge.util import json_text, metrics

log = logging.getLogger(__name__)

POISON_TRIES = 3
POISON_PAUSE_S = 0.2


def is_transient(error: BaseException) -> bool:
    """An error of reaching the database (worth retrying the same batch), not of what it holds."""
    if isinstance(error, OSError | TimeoutError | sa.exc.DisconnectionError | sa.exc.TimeoutError):
        return True
    if isinstance(error, sa.exc.DBAPIError):
        # Lost connections, a database starting up or locked, a serialization conflict.
        return error.connection_invalidated or isinstance(
            error, sa.exc.OperationalError | sa.exc.InterfaceError
        )
    return False


@dataclass(slots=True)
class PipelineStats:
    batches: int = 0
    stored: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    replies_queued: int = 0


@dataclass(frozen=True, slots=True)
class Rejected:
    reason: str
    payload: bytes


def decode(entries: Iterable[BusEntry]) -> tuple[list[InboundMessage], list[Rejected]]:
    accepted: list[InboundMessage] = []
    rejected: list[Rejected] = []
    for entry in entries:
        try:
            data = json_text.loads(entry.payload)
            if isinstance(data, dict) and UNREADABLE in data:
                event = Unreadable.model_validate(data[UNREADABLE])
                reason = f"unreadable {event.network.value} event: {event.reason}"
                rejected.append(Rejected(reason, event.payload.encode()))
                continue
            accepted.append(InboundMessage.model_validate(data))
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'message'}: {e['msg']}" for e in exc.errors()
            )
            rejected.append(Rejected(f"invalid inbound message: {reasons}", entry.payload))
        except ValueError as exc:  # orjson's and json's decoding errors are ValueErrors
            rejected.append(Rejected(f"not JSON: {exc}", entry.payload))
    return accepted, rejected


class Pipeline:
    def __init__(
        self, engine: AsyncEngine, bus: Bus, settings: Settings, responder: Responder | None
    ) -> None:
        self.engine = engine
        self.bus = bus
        self.settings = settings
        self.router = Router(
            settings,
            responder,
            LiveThresholds(engine, settings),
            LiveRules(engine, settings.kb_refresh_seconds),
        )
        self.stats = PipelineStats()

    async def handle(self, entries: Sequence[BusEntry]) -> None:
        """One batch in one transaction; a batch that fails for what it holds (not for an
        unreachable database, which the bus retries) is split until the entry that fails alone
        is found, and that one goes to `dead_letters` with its reason after `POISON_TRIES`:
        the rest of its shard goes on."""
        try:
            await self._handle(entries)
        except Exception as exc:
            if is_transient(exc) or not entries:
                raise
            if len(entries) == 1:
                await self._isolate(entries[0], exc)
                return
            log.warning("a batch of %d entries failed (%s); splitting it", len(entries), exc)
            middle = len(entries) // 2
            await self.handle(entries[:middle])
            await self.handle(entries[middle:])

    async def _isolate(self, entry: BusEntry, error: Exception) -> None:
        for attempt in range(1, POISON_TRIES):
            await asyncio.sleep(POISON_PAUSE_S * attempt)  # a passing cause (a lock) may clear
            try:
                await self._handle([entry])
                return
            except Exception as exc:
                if is_transient(exc):
                    raise
                error = exc
        reason = f"failed {POISON_TRIES} times: {type(error).__name__}: {error}"
        async with self.engine.begin() as conn:
            await self._dead_letter(conn, [Rejected(reason, entry.payload)], utcnow())
        metrics.DEAD_LETTERS.inc()
        self.stats.dead_lettered += 1

    async def _handle(self, entries: Sequence[BusEntry]) -> None:
        now = utcnow()
        accepted, rejected = decode(entries)
        edits = [m for m in accepted if m.kind == "edit"]
        deletes = [m for m in accepted if m.kind == "delete"]
        permissions = [m for m in accepted if m.kind == "permission"]
        accepted = [m for m in accepted if m.kind not in ("edit", "delete", "permission")]
        async with self.engine.begin() as conn:
            if rejected:
                await self._dead_letter(conn, rejected, now)
            edited: list[tuple[int, int]] = []
            if edits:
                edited, unknown = await apply_edits(conn, edits, now)
                accepted += unknown
            if permissions:
                await apply_permissions(conn, permissions, now)
            result = await ingest(conn, accepted, now)
            # after the batch's new messages, so a comment written and deleted at once is marked
            if deletes:
                edited += await apply_deletes(conn, deletes, now)
            asks = await ratings.load_asks(conn, _may_rate(result.stored))
            routed = await self.router.route(result.stored, now, asks)
            heard = await edited_comments(conn, edits, result.stored) if edits else []
            await self.router.listen_to_edits(heard, routed)
            new_replies = await _store_replies(conn, routed.replies, now)
            await _store_decisions(conn, routed, now)
            await ratings.write_back(conn, (ask for found in asks.values() for ask in found))
            routed_rows = [*result.stored, *heard]
            await _keep_routing(conn, routed, routed_rows, now)
            await _write_back(
                {s.conversation.id: s.conversation for s in routed_rows}.values(), conn
            )
            requeued = (
                await _still_queued_replies(conn, result.duplicate_ids)
                if result.duplicate_ids
                else []
            )
        outbound = new_replies + requeued
        await self.bus.publish(
            outbound,
            _events(result.stored, routed.changes, new_replies)
            + [
                Event(kind=EventKind.MESSAGE_EDITED, conversation_id=cid, data={"message_id": mid})
                for mid, cid in edited
            ],
        )
        _count(result.stored, routed, rejected, result.duplicate_ids, new_replies)
        self.stats.batches += 1
        self.stats.stored += len(result.stored)
        self.stats.duplicates += len(result.duplicate_ids)
        self.stats.dead_lettered += len(rejected)
        self.stats.replies_queued += len(outbound)

    async def _dead_letter(
        self, conn: AsyncConnection, rejected: list[Rejected], now: dt.datetime
    ) -> None:
        cap = self.settings.dead_letter_max_bytes
        for item in rejected:
            log.warning("inbound entry dead-lettered: %s", item.reason)
        await conn.execute(
            sa.insert(dead_letters),
            [
                {
                    "source": "inbound",
                    "reason": storable(item.reason[:2000]),
                    "payload": storable(item.payload[:cap].decode("utf-8", errors="replace")),
                    "payload_bytes": len(item.payload),
                    "created_at": now,
                }
                for item in rejected
            ],
        )


def _count(
    stored: list[Stored],
    routed: Routed,
    rejected: list[Rejected],
    duplicate_ids: list[int],
    replies: list[OutboundMessage],
) -> None:
    for item in stored:
        metrics.INBOUND.labels(item.inbound.network.value).inc()
    metrics.DUPLICATES.inc(len(duplicate_ids))
    metrics.DEAD_LETTERS.inc(len(rejected))
    for change in routed.changes:
        if change.state is ConversationState.WAITING and change.reason:
            metrics.HANDOFFS.labels(change.reason).inc()
    for decision in routed.decisions:
        if decision.outcome is DecisionOutcome.ANSWERED:
            metrics.AUTO_ANSWERS.labels(decision.network.value).inc()
    now = time.time()
    for reply in replies:
        if reply.received_at is not None:
            metrics.PIPELINE_LATENCY.observe(max(0.0, now - reply.received_at))


def _may_rate(stored: list[Stored]) -> set[int]:
    """The conversations whose requests for a rating routing may need: where a rating button was
    pressed, and the resolved ones (a rating's comment may come)."""
    return {
        item.conversation.id
        for item in stored
        if item.conversation.state is ConversationState.RESOLVED
        or ratings.is_rating_data(item.inbound.button_data)
    }


async def _store_replies(
    conn: AsyncConnection, replies: list[Reply], now: dt.datetime
) -> list[OutboundMessage]:
    if not replies:
        return []
    if batch_pg.is_postgres(conn):
        ids = await batch_pg.insert_replies(
            conn,
            {
                "conversation_id": [r.conversation.id for r in replies],
                "network": [r.conversation.network for r in replies],
                "author_kind": [r.author_kind for r in replies],
                "text": [r.text for r in replies],
                "idempotency_key": [r.idempotency_key for r in replies],
                "in_reply_to_id": [r.cause.message_id for r in replies],
                "buttons": [_buttons_json(r) for r in replies],
            },
            now,
        )
    else:
        ids = await _insert_replies(conn, replies, now)
    message_ids = [ids[r.idempotency_key] for r in replies]
    return [
        to_outbound(
            {
                "message_id": message_id,
                "conversation_id": r.conversation.id,
                "network": r.conversation.network,
                "author_kind": r.author_kind,
                "text": r.text,
                "idempotency_key": r.idempotency_key,
                "buttons": r.buttons,  # the models themselves: not validated again
                "chat_id": r.conversation.chat_id,
                "in_reply_to": r.cause.inbound.network_message_id,
                "last_message_at": r.conversation.last_message_at,
                "public": r.conversation.public,
            },
            received_at=r.cause.inbound.received_at,
        )
        for message_id, r in zip(message_ids, replies, strict=True)
    ]


def _buttons_json(reply: Reply) -> str | None:
    return orjson.dumps([b.model_dump() for b in reply.buttons]).decode() if reply.buttons else None


async def _insert_replies(
    conn: AsyncConnection, replies: list[Reply], now: dt.datetime
) -> dict[str, int]:
    """The ids of the replies inserted, by idempotency key (unique): read back in any order, so
    that SQLite inserts them all in one statement (in the parameters' order, it takes one each)."""
    m = messages.c
    result = await conn.execute(
        sa.insert(messages).returning(m.id, m.idempotency_key),
        [
            {
                "conversation_id": r.conversation.id,
                "network": r.conversation.network,
                "direction": Direction.OUTBOUND,
                "author_kind": r.author_kind,
                "text": r.text,
                "idempotency_key": r.idempotency_key,
                "in_reply_to_id": r.cause.message_id,
                "delivery_status": DeliveryStatus.QUEUED,
                "buttons": [b.model_dump() for b in r.buttons] or None,
                "created_at": now,
            }
            for r in replies
        ],
    )
    return {key: message_id for message_id, key in result}


async def _store_decisions(conn: AsyncConnection, routed: Routed, now: dt.datetime) -> None:
    made = routed.decisions
    if made and batch_pg.is_postgres(conn):
        await batch_pg.insert_decisions(
            conn,
            {
                "message_id": [d.message_id for d in made],
                "conversation_id": [d.conversation_id for d in made],
                "network": [d.network for d in made],
                "outcome": [d.outcome for d in made],
                "reason": [d.reason for d in made],
                "article_id": [d.article_id for d in made],
                "confidence": [d.confidence for d in made],
                "threshold": [d.threshold for d in made],
            },
            now,
        )
    elif made:
        await conn.execute(
            sa.insert(decisions),
            [
                {
                    "message_id": d.message_id,
                    "conversation_id": d.conversation_id,
                    "network": d.network,
                    "outcome": d.outcome,
                    "reason": d.reason,
                    "article_id": d.article_id,
                    "confidence": d.confidence,
                    "threshold": d.threshold,
                    "created_at": now,
                }
                for d in made
            ],
        )
    d = decisions.c
    for item in routed.feedback:
        # within its own conversation: a button's data comes from the customer's device
        await conn.execute(
            sa.update(decisions)
            .where(
                d.message_id == item.question_message_id,
                d.conversation_id == item.conversation_id,
            )
            .values(feedback=item.feedback, feedback_at=now)
        )


async def _keep_routing(
    conn: AsyncConnection, routed: Routed, stored: list[Stored], now: dt.datetime
) -> None:
    """The routing rules' labels and teams, of those that still exist: the rules were read up
    to `kb_refresh_seconds` ago, and a team or label deleted since must not fail the batch."""
    routed_teams = {s.conversation.team_id for s in stored} - {None}
    if routed_teams:
        known = set(await conn.scalars(sa.select(teams.c.id).where(teams.c.id.in_(routed_teams))))
        for item in stored:
            if item.conversation.team_id not in known:
                item.conversation.team_id = None
    if not routed.labels:
        return
    wanted = {added.label_id for added in routed.labels}
    known = set(await conn.scalars(sa.select(labels.c.id).where(labels.c.id.in_(wanted))))
    rows = [
        {"conversation_id": a.conversation_id, "label_id": a.label_id, "added_at": now}
        for a in dict.fromkeys(routed.labels)
        if a.label_id in known
    ]
    if rows:
        await conn.execute(insert_ignoring_conflicts(conn, conversation_labels), rows)


async def _write_back(rows: Iterable[ConversationRow], conn: AsyncConnection) -> None:
    changed = [row for row in rows if row.changed]
    if not changed:
        return
    if batch_pg.is_postgres(conn):
        changed.sort(key=lambda row: row.id)  # the order every batch locks them in
        await batch_pg.write_back(
            conn,
            {
                "id": [row.id for row in changed],
                "state": [row.state for row in changed],
                "handoff_reason": [row.handoff_reason for row in changed],
                "language": [row.language for row in changed],
                "handed_off_at": [row.handed_off_at for row in changed],
                "first_response_at": [row.first_response_at for row in changed],
                "resolved_at": [row.resolved_at for row in changed],
                "last_message_at": [row.last_message_at for row in changed],
                "misses": [row.misses for row in changed],
                "answered_message_id": [row.answered_message_id for row in changed],
                "awaiting_since": [row.awaiting_since for row in changed],
                "team_id": [row.team_id for row in changed],
                "priority": [row.priority for row in changed],
            },
        )
        return
    c = conversations.c
    await conn.execute(
        sa.update(conversations)
        .where(c.id == sa.bindparam("row_id"))
        .values(
            state=sa.bindparam("state"),
            handoff_reason=sa.bindparam("handoff_reason"),
            language=sa.bindparam("language"),
            handed_off_at=sa.bindparam("handed_off_at"),
            first_response_at=sa.bindparam("first_response_at"),
            resolved_at=sa.bindparam("resolved_at"),
            last_message_at=sa.bindparam("last_message_at"),
            misses=sa.bindparam("misses"),
            answered_message_id=sa.bindparam("answered_message_id"),
            awaiting_since=sa.bindparam("awaiting_since"),
            team_id=sa.bindparam("team_id"),
            priority=sa.bindparam("priority"),
        ),
        [
            {
                "row_id": row.id,
                "state": row.state,
                "handoff_reason": row.handoff_reason,
                "language": row.language,
                "handed_off_at": row.handed_off_at,
                "first_response_at": row.first_response_at,
                "resolved_at": row.resolved_at,
                "last_message_at": row.last_message_at,
                "misses": row.misses,
                "answered_message_id": row.answered_message_id,
                "awaiting_since": row.awaiting_since,
                "team_id": row.team_id,
                "priority": row.priority,
            }
            for row in changed
        ],
    )


async def _still_queued_replies(
    conn: AsyncConnection, inbound_ids: list[int]
) -> list[OutboundMessage]:
    """Replies of already-stored messages that may not have reached the outbound stream."""
    return await load_outbound(
        conn,
        messages.c.in_reply_to_id.in_(inbound_ids),
        messages.c.delivery_status == DeliveryStatus.QUEUED,
    )


def _events(
    stored: list[Stored], changes: list[StateChange], outbound: list[OutboundMessage]
) -> list[Event]:
    events = [
        Event(
            kind=EventKind.MESSAGE_CREATED,
            conversation_id=s.conversation.id,
            # a customer's message, and whose conversation it is: the agent's page may alert
            data={
                "message_id": s.message_id,
                "author": "customer",
                "assignee_id": s.conversation.assignee_id,
            },
        )
        for s in stored
    ]
    events += [
        Event(
            kind=EventKind.MESSAGE_CREATED,
            conversation_id=o.conversation_id,
            data={"message_id": o.message_id},
        )
        for o in outbound
    ]
    events += [
        Event(
            kind=EventKind.CONVERSATION_STATE,
            conversation_id=change.conversation_id,
            data={"state": change.state.value, "reason": change.reason},
        )
        for change in changes
    ]
    return events
