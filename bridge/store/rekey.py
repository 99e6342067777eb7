"""A private conversation keyed anew by the id its network delivered it to. A private reply to
a Facebook comment is addressed by the comment, and the answer names the person's PSID, which
their Messenger messages come from; the comment's author id is another (docs/networks.md 3.4).
The conversation opened under the author id goes under the PSID, with an identity for it of the
same customer, so that the person's next message lands there; where they already had a
conversation under it (they wrote to the page before), this one is merged into that one, and
their two customers become one (a link an agent can undo, as their own)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.engine import insert_ignoring_conflicts
from bridge.store.links import move_customer
from bridge.store.models import (
    conversation_labels,
    conversation_merges,
    conversations,
    csat_ratings,
    decisions,
    identities,
    messages,
)


@dataclass(frozen=True, slots=True)
class Rekeyed:
    conversation_id: int  # where the conversation's messages are now
    merged_from: int | None = None  # the conversation merged into it, now gone


async def rekey_private_chat(
    conn: AsyncConnection, conversation_id: int, chat_id: str, now: dt.datetime
) -> Rekeyed:
    """Key the private conversation `conversation_id` by `chat_id`, the id its network
    delivered to. Doing it again changes nothing: a conversation keyed so already, or merged
    away already, is where it is."""
    c = conversations.c
    found = (
        await conn.execute(
            sa.select(c.network, c.chat_id, c.customer_id, c.identity_id, c.public).where(
                c.id == conversation_id
            )
        )
    ).first()
    if found is None:
        return Rekeyed(await merged_into(conn, conversation_id) or conversation_id)
    if found.public or found.chat_id == chat_id:
        return Rekeyed(conversation_id)
    identity_id, customer_id = await _identity(conn, found, chat_id, now)
    existing = await conn.scalar(
        sa.select(c.id).where(c.network == found.network, c.chat_id == chat_id)
    )
    if existing is None:
        await conn.execute(
            sa.update(conversations)
            .where(c.id == conversation_id)
            .values(chat_id=chat_id, identity_id=identity_id)
        )
        rekeyed = Rekeyed(conversation_id)
    else:
        await _merge(conn, conversation_id, existing, now)
        rekeyed = Rekeyed(existing, merged_from=conversation_id)
    if customer_id != found.customer_id:
        await move_customer(conn, keep=customer_id, merge=found.customer_id, agent_id=None)
    return rekeyed


async def _identity(
    conn: AsyncConnection, found: Any, chat_id: str, now: dt.datetime
) -> tuple[int, int]:
    """(identity id, customer id) of the person under `chat_id`: theirs when they wrote from
    it before, else made for the conversation's customer, named as the comment named them."""
    i = identities.c
    named = (
        await conn.execute(sa.select(i.display_name, i.language).where(i.id == found.identity_id))
    ).first()
    await conn.execute(
        insert_ignoring_conflicts(conn, identities),
        [
            {
                "customer_id": found.customer_id,
                "network": found.network,
                "external_user_id": chat_id,
                "display_name": named.display_name if named else None,
                "language": named.language if named else None,
                "created_at": now,
            }
        ],
    )
    row = (
        await conn.execute(
            sa.select(i.id, i.customer_id).where(
                i.network == found.network, i.external_user_id == chat_id
            )
        )
    ).one()
    return int(row.id), int(row.customer_id)


async def _merge(conn: AsyncConnection, gone: int, into: int, now: dt.datetime) -> None:
    """Move the conversation `gone` into `into` and delete it: its messages and what hangs on
    them, its labels; `into` is handled as `gone` was (the agent who moved the person to
    private has it), its history kept; the address of `gone` leads to `into`."""
    c = conversations.c
    for table in (messages, decisions, csat_ratings):
        await conn.execute(
            sa.update(table).where(table.c.conversation_id == gone).values(conversation_id=into)
        )
    labels = conversation_labels.c
    carried = sa.select(sa.literal(into), labels.label_id, labels.added_by, labels.added_at).where(
        labels.conversation_id == gone
    )
    await conn.execute(
        insert_ignoring_conflicts(conn, conversation_labels).from_select(
            ["conversation_id", "label_id", "added_by", "added_at"], carried
        )
    )
    handled = (
        await conn.execute(
            sa.select(
                c.state,
                c.assignee_id,
                c.assigned_at,
                c.resolved_at,
                c.awaiting_since,
                c.first_response_at,
                c.team_id,
                c.language,
                c.last_message_at,
            ).where(c.id == gone)
        )
    ).one()
    await conn.execute(
        sa.update(conversations)
        .where(c.id == into)
        .values(
            state=handled.state,
            assignee_id=handled.assignee_id,
            assigned_at=handled.assigned_at,
            resolved_at=handled.resolved_at,
            awaiting_since=handled.awaiting_since,
            first_response_at=sa.func.coalesce(c.first_response_at, handled.first_response_at),
            team_id=sa.func.coalesce(c.team_id, handled.team_id),
            language=sa.func.coalesce(c.language, handled.language),
            last_message_at=sa.case(
                (c.last_message_at < handled.last_message_at, handled.last_message_at),
                else_=c.last_message_at,
            ),
        )
    )
    merges = conversation_merges.c
    await conn.execute(
        sa.update(conversation_merges).where(merges.into_id == gone).values(into_id=into)
    )
    await conn.execute(
        sa.insert(conversation_merges).values(conversation_id=gone, into_id=into, merged_at=now)
    )
    await conn.execute(sa.delete(conversations).where(c.id == gone))


async def merged_into(conn: AsyncConnection, conversation_id: int) -> int | None:
    """The conversation `conversation_id` was merged into, when it was."""
    merges = conversation_merges.c
    into = await conn.scalar(
        sa.select(merges.into_id).where(merges.conversation_id == conversation_id)
    )
    return int(into) if into is not None else None
