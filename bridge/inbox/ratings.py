"""Asking the customer to rate the help an agent gave, when the agent resolves the conversation:
the question in the customer's language with five buttons, queued like an agent's reply (so the
sender's retries, rate limits and failure marks apply). The bot's other sentences are in
`bridge/pipeline/phrases.py`; this one is here because the inbox, below the pipeline, sends it."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.domain import AuthorKind, Button, DeliveryStatus, Direction, OutboundMessage
from bridge.store.engine import insert_ignoring_conflicts
from bridge.store.models import conversations, csat_ratings, messages
from bridge.store.outbox import load_outbound
from bridge.store.ratings import SCORES, rating_data

# Messenger takes automatic messages only within 24 h of the customer's last one, and a request
# a day late is stale on any network: after that, none is sent.
ASK_WITHIN = dt.timedelta(hours=24)

QUESTION = {
    "en": "How would you rate the help you got?",
    "ru": "Как вы оцените полученную помощь?",
}
# short, so that five fit one row on a phone (Telegram, VK) and Messenger's 20-character titles
LABELS = dict(zip(SCORES, ("1 😞", "2 🙁", "3 😐", "4 🙂", "5 😍"), strict=True))


def rating_buttons(request_message_id: int) -> list[Button]:
    return [
        Button(label=label, data=rating_data(request_message_id, score))
        for score, label in LABELS.items()
    ]


async def ask_for_rating(
    conn: AsyncConnection, conversation_id: int, now: dt.datetime
) -> OutboundMessage | None:
    """Queue the request for a rating (in the caller's transaction) and note whom it rates: the
    agent who has the conversation. None when there is nothing to ask: no agent replied since
    the last request (or ever), or the customer's last message is older than `ASK_WITHIN`."""
    c, m = conversations.c, messages.c
    newest_reply = (
        sa.select(sa.func.max(m.id))
        .where(
            m.conversation_id == c.id,
            m.direction == Direction.OUTBOUND,
            m.author_kind == AuthorKind.AGENT,
        )
        .scalar_subquery()
    )
    row = (
        await conn.execute(
            sa.select(
                c.network, c.language, c.assignee_id, c.last_message_at, newest_reply.label("reply")
            ).where(c.id == conversation_id)
        )
    ).first()
    if row is None or row.reply is None or now - row.last_message_at > ASK_WITHIN:
        return None
    # keyed by the agent's newest reply: a second resolution without a new reply asks nothing
    request_id = (
        await conn.execute(
            insert_ignoring_conflicts(conn, messages)
            .values(
                conversation_id=conversation_id,
                network=row.network,
                direction=Direction.OUTBOUND,
                # not the bot's answer: kept out of its figures (the bot's first response)
                author_kind=AuthorKind.SYSTEM,
                text=QUESTION["ru" if row.language == "ru" else "en"],
                idempotency_key=f"csat:{row.reply}",
                delivery_status=DeliveryStatus.QUEUED,
                created_at=now,
            )
            .returning(m.id)
        )
    ).scalar_one_or_none()
    if request_id is None:
        return None
    buttons = [b.model_dump() for b in rating_buttons(request_id)]
    await conn.execute(sa.update(messages).where(m.id == request_id).values(buttons=buttons))
    await conn.execute(
        sa.insert(csat_ratings).values(
            request_message_id=request_id,
            conversation_id=conversation_id,
            agent_id=row.assignee_id,
            network=row.network,
            asked_at=now,
        )
    )
    (outbound,) = await load_outbound(conn, m.id == request_id)
    return outbound
