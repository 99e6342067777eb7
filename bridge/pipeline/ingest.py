"""Dedupe and store a batch of inbound messages: identities, conversations, message rows.

Everything here runs inside the caller's transaction with a constant number of round trips per
batch (not per message), so throughput is bounded by the database's bulk write speed: on
PostgreSQL one statement per table (`batch_pg`), on SQLite a lookup and an insert of what is
missing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.domain import AuthorKind, ConversationState, Direction, InboundMessage, Network
from bridge.pipeline import batch_pg
from bridge.store.engine import insert_ignoring_conflicts
from bridge.store.models import conversations, customers, identities, messages


@dataclass(slots=True)
class ConversationRow:
    """The routing-relevant columns of a conversation, changed in memory and written back once."""

    id: int
    network: Network
    chat_id: str
    state: ConversationState
    handoff_reason: str | None
    language: str | None
    handed_off_at: dt.datetime | None
    first_response_at: dt.datetime | None
    resolved_at: dt.datetime | None
    last_message_at: dt.datetime
    misses: int
    answered_message_id: int | None
    awaiting_since: dt.datetime | None
    assignee_id: int | None  # read only: whom the live inbox tells of the customer's message
    team_id: int | None
    public: bool  # read only: a public thread (under a post) rather than a private chat
    priority: int  # a public thread's urgency (listening rules): 0, 1 or 2
    changed: bool = False


@dataclass(slots=True)
class Stored:
    """An inbound message that this batch stored for the first time."""

    message_id: int
    inbound: InboundMessage
    conversation: ConversationRow


@dataclass(slots=True)
class IngestResult:
    stored: list[Stored]
    duplicate_ids: list[int]


def unique_in_batch(batch: Iterable[InboundMessage]) -> list[InboundMessage]:
    seen: set[tuple[Network, str]] = set()
    unique: list[InboundMessage] = []
    for message in batch:
        key = (message.network, message.network_message_id)
        if key not in seen:
            seen.add(key)
            unique.append(message)
    return unique


async def ingest(
    conn: AsyncConnection, batch: Sequence[InboundMessage], now: dt.datetime
) -> IngestResult:
    batch = unique_in_batch(batch)
    if not batch:
        return IngestResult([], [])
    identity_ids = await identities_of(conn, batch, now)
    rows = await _conversations(conn, batch, identity_ids, now)
    inserted = await _insert_messages(conn, batch, rows, identity_ids)
    stored = [
        Stored(inserted[key], message, rows[message.conversation_key])
        for message in batch
        if (key := (message.network, message.network_message_id)) in inserted
    ]
    duplicates = [m for m in batch if (m.network, m.network_message_id) not in inserted]
    if duplicates:
        await _drop_empty_conversations(conn, duplicates, stored, rows)
    duplicate_ids = list((await _existing_message_ids(conn, duplicates)).values())
    return IngestResult(stored, duplicate_ids)


async def _insert_messages(
    conn: AsyncConnection,
    batch: Sequence[InboundMessage],
    rows: dict[str, ConversationRow],
    identity_ids: IdentityIds,
) -> dict[tuple[Network, str], int]:
    """The ids of the messages inserted, by (network, network message id). The unique key on
    those two is the dedupe: a second copy inserts nothing."""
    if batch_pg.is_postgres(conn):
        inserted = await batch_pg.insert_inbound(
            conn,
            {
                "conversation_id": [rows[m.conversation_key].id for m in batch],
                "network": [m.network for m in batch],
                "text": [m.text for m in batch],
                "attachments": [_attachments_json(m) for m in batch],
                "network_message_id": [m.network_message_id for m in batch],
                "created_at": [dt.datetime.fromtimestamp(m.received_at, dt.UTC) for m in batch],
                "author_identity_id": [identity_ids[(m.network, m.user_id)][0] for m in batch],
                "reply_to_network_id": [m.public.reply_to if m.public else None for m in batch],
            },
        )
        return {(network, nmid): message_id for message_id, network, nmid in inserted}
    m = messages.c
    result = await conn.execute(
        insert_ignoring_conflicts(conn, messages).returning(m.id, m.network, m.network_message_id),
        [
            {
                "conversation_id": rows[message.conversation_key].id,
                "network": message.network,
                "direction": Direction.INBOUND,
                "author_kind": AuthorKind.CUSTOMER,
                "text": message.text,
                "attachments": [a.model_dump(mode="json") for a in message.attachments] or None,
                "network_message_id": message.network_message_id,
                "created_at": dt.datetime.fromtimestamp(message.received_at, dt.UTC),
                "author_identity_id": identity_ids[(message.network, message.user_id)][0],
                "reply_to_network_id": message.public.reply_to if message.public else None,
            }
            for message in batch
        ],
    )
    return {(network, nmid): message_id for message_id, network, nmid in result.all()}


def _attachments_json(message: InboundMessage) -> str | None:
    if not message.attachments:
        return None
    return orjson.dumps([a.model_dump(mode="json") for a in message.attachments]).decode()


async def _drop_empty_conversations(
    conn: AsyncConnection,
    duplicates: Sequence[InboundMessage],
    stored: Sequence[Stored],
    rows: dict[str, ConversationRow],
) -> None:
    """A duplicate never makes a conversation: one this batch created for a chat whose only
    message was a duplicate goes again (the rare path: checked only when there are duplicates)."""
    kept = {item.inbound.conversation_key for item in stored}
    candidates = {rows[m.conversation_key].id for m in duplicates if m.conversation_key not in kept}
    if candidates:
        c = conversations.c
        await conn.execute(
            sa.delete(conversations).where(
                c.id.in_(candidates),
                ~sa.exists().where(messages.c.conversation_id == c.id),
            )
        )


async def apply_edits(
    conn: AsyncConnection, edits: Sequence[InboundMessage], now: dt.datetime
) -> tuple[list[tuple[int, int]], list[InboundMessage]]:
    """Replace the text of edited messages. Returns (message id, conversation id) of each, and
    the edits of messages never stored (sent before the bridge was connected) as new messages."""
    m = messages.c
    found: dict[tuple[Network, str], tuple[int, int]] = {}
    for network, ids in _group_by_network((e.network, e.network_message_id) for e in edits):
        result = await conn.execute(
            sa.select(m.network_message_id, m.id, m.conversation_id).where(
                m.network_message_id.in_(ids), m.network == network
            )
        )
        found.update({(network, nmid): (mid, cid) for nmid, mid, cid in result.all()})
    known = [e for e in edits if (e.network, e.network_message_id) in found]
    if known:
        await conn.execute(
            sa.update(messages)
            .where(m.id == sa.bindparam("row_id"))
            # a message edited is there: one restored after its author deleted it comes back,
            # marked edited only if its text changed
            .values(
                text=sa.bindparam("new_text"),
                edited_at=sa.case((m.text != sa.bindparam("new_text"), now), else_=m.edited_at),
                deleted_at=None,
            ),
            [
                {"row_id": found[(e.network, e.network_message_id)][0], "new_text": e.text}
                for e in known
            ],
        )
    unknown = [
        e.model_copy(update={"kind": "message"})
        for e in edits
        if (e.network, e.network_message_id) not in found
    ]
    return [found[(e.network, e.network_message_id)] for e in known], unknown


async def edited_comments(
    conn: AsyncConnection, edits: Sequence[InboundMessage], stored: Sequence[Stored]
) -> list[Stored]:
    """The edits of comments stored before, in public threads, each with its message and its
    thread's row (the one the batch's new messages have, so that it is written back once): for
    the listening rules, since an edit may add their words. An edit of a message this batch
    stored first was heard as a new one."""
    ids = await _existing_message_ids(conn, edits)
    new = {item.message_id for item in stored}
    known = [e for e in edits if ids.get((e.network, e.network_message_id), 0) not in new | {0}]
    rows = {item.inbound.conversation_key: item.conversation for item in stored}
    rows |= await _select_conversations(conn, [e for e in known if e.conversation_key not in rows])
    return [
        Stored(ids[(e.network, e.network_message_id)], e, rows[e.conversation_key])
        for e in known
        if e.conversation_key in rows and rows[e.conversation_key].public
    ]


async def apply_deletes(
    conn: AsyncConnection, deletes: Sequence[InboundMessage], now: dt.datetime
) -> list[tuple[int, int]]:
    """Mark the messages their authors deleted on the network (kept, for the agents' record).
    Returns (message id, conversation id) of each; a message never stored has nothing to mark."""
    m = messages.c
    marked: list[tuple[int, int]] = []
    for network, ids in _group_by_network((d.network, d.network_message_id) for d in deletes):
        result = await conn.execute(
            sa.update(messages)
            .where(m.network_message_id.in_(ids), m.network == network, m.deleted_at.is_(None))
            .values(deleted_at=now)
            .returning(m.id, m.conversation_id)
        )
        marked += [(mid, cid) for mid, cid in result.all()]
    return marked


async def apply_permissions(
    conn: AsyncConnection, permissions: Sequence[InboundMessage], now: dt.datetime
) -> None:
    """Keep whether each person lets the community write to them privately; the last word of a
    batch wins, as the network said it last."""
    found = await identities_of(conn, permissions, now)
    latest = {(p.network, p.user_id): p.allows_private for p in permissions}
    await conn.execute(
        sa.update(identities)
        .where(identities.c.id == sa.bindparam("row_id"))
        .values(allows_private=sa.bindparam("allows")),
        [{"row_id": found[key][0], "allows": allows} for key, allows in latest.items()],
    )


async def _existing_message_ids(
    conn: AsyncConnection, batch: Sequence[InboundMessage]
) -> dict[tuple[Network, str], int]:
    """Ids of messages stored before (a redelivered batch: the rare path)."""
    found: dict[tuple[Network, str], int] = {}
    for network, ids in _group_by_network((m.network, m.network_message_id) for m in batch):
        result = await conn.execute(
            sa.select(messages.c.id, messages.c.network_message_id).where(
                messages.c.network == network, messages.c.network_message_id.in_(ids)
            )
        )
        found.update({(network, nmid): mid for mid, nmid in result.all()})
    return found


def _group_by_network(pairs: Iterable[tuple[Network, str]]) -> list[tuple[Network, list[str]]]:
    groups: dict[Network, list[str]] = {}
    for network, value in pairs:
        groups.setdefault(network, []).append(value)
    return list(groups.items())


IdentityIds = dict[tuple[Network, str], tuple[int, int]]


async def identities_of(
    conn: AsyncConnection, batch: Sequence[InboundMessage], now: dt.datetime
) -> IdentityIds:
    """(identity id, customer id) per (network, user id) of the batch, created when new."""
    wanted: dict[tuple[Network, str], InboundMessage] = {}
    for message in batch:
        wanted.setdefault((message.network, message.user_id), message)
    if batch_pg.is_postgres(conn):
        # in the unique key's order (user id, network), as every batch locks them: one person
        # may write in chats of several shards, worked by several consumers at once
        ordered = sorted(wanted.values(), key=lambda m: (m.user_id, m.network))
        found: IdentityIds = {
            (network, uid): (iid, cid)
            for iid, cid, network, uid in await batch_pg.find_identities(
                conn,
                {
                    "network": [m.network for m in ordered],
                    "external_user_id": [m.user_id for m in ordered],
                    "display_name": [m.display_name for m in ordered],
                    "language": [m.language for m in ordered],
                },
                now,
            )
        }
    else:
        found = await _select_identities(conn, wanted)
        await _make_identities(conn, [m for key, m in wanted.items() if key not in found], now)
    # made just now (SQLite), or by another transaction meanwhile (PostgreSQL): read them
    missing = {key: m for key, m in wanted.items() if key not in found}
    if missing:
        found.update(await _select_identities(conn, missing))
    return found


async def _make_identities(
    conn: AsyncConnection, missing: Sequence[InboundMessage], now: dt.datetime
) -> None:
    if not missing:
        return
    new_customers = await conn.execute(
        sa.insert(customers).returning(customers.c.id, sort_by_parameter_order=True),
        [{"display_name": m.display_name, "created_at": now} for m in missing],
    )
    await conn.execute(
        insert_ignoring_conflicts(conn, identities),
        [
            {
                "customer_id": customer_id,
                "network": m.network,
                "external_user_id": m.user_id,
                "display_name": m.display_name,
                "language": m.language,
                "created_at": now,
            }
            for customer_id, m in zip(new_customers.scalars().all(), missing, strict=True)
        ],
    )


async def _select_identities(
    conn: AsyncConnection, wanted: dict[tuple[Network, str], InboundMessage]
) -> IdentityIds:
    i = identities.c
    found: IdentityIds = {}
    for network, user_ids in _group_by_network(wanted):
        result = await conn.execute(
            sa.select(i.id, i.customer_id, i.external_user_id).where(
                i.network == network, i.external_user_id.in_(user_ids)
            )
        )
        found.update({(network, uid): (iid, cid) for iid, cid, uid in result.all()})
    return found


async def _conversations(
    conn: AsyncConnection,
    batch: Sequence[InboundMessage],
    identity_ids: IdentityIds,
    now: dt.datetime,
) -> dict[str, ConversationRow]:
    """Find or create the conversation of every chat in the batch, keyed by conversation key."""
    first_by_key: dict[str, InboundMessage] = {}
    for message in batch:
        first_by_key.setdefault(message.conversation_key, message)
    if batch_pg.is_postgres(conn):
        # in arrival order: a chat's conversation is one shard's, which one consumer works
        ordered = list(first_by_key.values())
        found = await batch_pg.find_conversations(
            conn,
            {
                "network": [m.network for m in ordered],
                "chat_id": [m.chat_id for m in ordered],
                "identity_id": [identity_ids[(m.network, m.user_id)][0] for m in ordered],
                "customer_id": [identity_ids[(m.network, m.user_id)][1] for m in ordered],
                "public": [m.public is not None for m in ordered],
                "post_text": [m.public.post_text if m.public else None for m in ordered],
                "post_url": [m.public.post_url if m.public else None for m in ordered],
            },
            now,
        )
        rows = _by_key(found)
    else:
        rows = await _select_conversations(conn, first_by_key.values())
        await _make_conversations(
            conn, [m for key, m in first_by_key.items() if key not in rows], identity_ids, now
        )
    # made just now (SQLite), or by another transaction meanwhile (PostgreSQL): read them
    missing = [m for key, m in first_by_key.items() if key not in rows]
    if missing:
        rows.update(await _select_conversations(conn, missing))
    return rows


async def _make_conversations(
    conn: AsyncConnection,
    missing: Sequence[InboundMessage],
    identity_ids: IdentityIds,
    now: dt.datetime,
) -> None:
    if not missing:
        return
    await conn.execute(
        insert_ignoring_conflicts(conn, conversations),
        [
            {
                "network": m.network,
                "chat_id": m.chat_id,
                "identity_id": identity_ids[(m.network, m.user_id)][0],
                "customer_id": identity_ids[(m.network, m.user_id)][1],
                "state": ConversationState.BOT,
                "created_at": now,
                "last_message_at": now,
                "public": m.public is not None,
                "post_text": m.public.post_text if m.public else None,
                "post_url": m.public.post_url if m.public else None,
            }
            for m in missing
        ],
    )


async def _select_conversations(
    conn: AsyncConnection, batch: Iterable[InboundMessage]
) -> dict[str, ConversationRow]:
    c = conversations.c
    rows: dict[str, ConversationRow] = {}
    for network, chat_ids in _group_by_network((m.network, m.chat_id) for m in batch):
        result = await conn.execute(
            sa.select(*(c[name] for name in batch_pg.CONVERSATION_COLUMNS)).where(
                c.network == network, c.chat_id.in_(chat_ids)
            )
        )
        rows.update(_by_key(result))
    return rows


def _by_key(result: Iterable[Sequence[Any]]) -> dict[str, ConversationRow]:
    """Rows of `CONVERSATION_COLUMNS` (the fields of `ConversationRow`, in order) by key."""
    rows: dict[str, ConversationRow] = {}
    for row in result:
        conversation = ConversationRow(*row)
        rows[f"{conversation.network.value}:{conversation.chat_id}"] = conversation
    return rows
