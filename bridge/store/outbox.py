"""Where a stored reply becomes what its network's sender is given (`OutboundMessage`): the one
place that knows which columns a send needs, for every path that queues a reply (the pipeline,
a batch delivered again, an agent's reply, a retry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.domain import Attachment, Button, OutboundMessage
from bridge.store.models import conversations, messages


def to_outbound(row: Mapping[str, Any], received_at: float | None = None) -> OutboundMessage:
    """`row`: a reply's stored columns (`messages`), `message_id`, and its conversation's
    `chat_id`, `last_message_at` and `public`; `in_reply_to` is the customer message's network
    id (in a public thread, the comment the reply answers).
    `received_at`, known only in the batch that accepted the cause, feeds the latency metric."""
    return OutboundMessage(
        message_id=row["message_id"],
        conversation_id=row["conversation_id"],
        network=row["network"],
        chat_id=row["chat_id"],
        text=row["text"],
        idempotency_key=row["idempotency_key"],
        author_kind=row["author_kind"],
        buttons=[Button.model_validate(b) for b in row["buttons"] or ()],
        # the files an agent sends (the bot's replies, built without the column, carry none)
        attachments=[Attachment.model_validate(a) for a in row.get("attachments") or ()],
        in_reply_to=row["in_reply_to"],
        public=row["public"],
        received_at=received_at,
        customer_last_message_at=row["last_message_at"].timestamp(),
    )


async def load_outbound(
    conn: AsyncConnection, *where: sa.ColumnElement[bool]
) -> list[OutboundMessage]:
    """The stored replies that match `where` (on `messages`), oldest first."""
    cause_table = messages.alias("cause")
    reply, cause, c = messages.c, cause_table.c, conversations.c
    result = await conn.execute(
        sa.select(
            reply.id.label("message_id"),
            reply.conversation_id,
            reply.network,
            c.chat_id,
            reply.text,
            reply.idempotency_key,
            reply.author_kind,
            reply.buttons,
            reply.attachments,
            cause.network_message_id.label("in_reply_to"),
            c.last_message_at,
            c.public,
        )
        .join(conversations, c.id == reply.conversation_id)
        .outerjoin(cause_table, cause.id == reply.in_reply_to_id)
        .where(*where)
        .order_by(reply.id)
    )
    return [to_outbound(row._asdict()) for row in result]
