"""What a customer may see of their own conversation: their messages and the replies sent to
them, never the agents' internal notes nor a reply that could not be delivered."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.channel import CustomerHistory, SeenMessage, StoreUnavailable
from bridge.domain import Attachment, Button, DeliveryStatus, Direction, Network
from bridge.store.models import conversations, messages


def customer_history(engine: AsyncEngine) -> CustomerHistory:
    """The store's reader of a chat's history, for the channels that show it to the customer."""

    async def read(network: Network, chat_id: str, limit: int) -> list[SeenMessage]:
        try:
            return await _latest(engine, network, chat_id, limit)
        except (sa.exc.SQLAlchemyError, OSError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    return read


async def _latest(
    engine: AsyncEngine, network: Network, chat_id: str, limit: int
) -> list[SeenMessage]:
    m, c = messages.c, conversations.c
    query = (
        sa.select(
            m.id,
            m.author_kind,
            m.text,
            m.buttons,
            m.network_message_id,
            m.created_at,
            m.attachments,
        )
        .join(conversations, c.id == m.conversation_id)
        .where(
            c.network == network,
            c.chat_id == chat_id,
            m.direction != Direction.INTERNAL,
            sa.or_(m.delivery_status.is_(None), m.delivery_status != DeliveryStatus.FAILED),
        )
        .order_by(m.id.desc())
        .limit(limit)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [
        SeenMessage(
            id=row.id,
            author_kind=row.author_kind,
            text=row.text,
            buttons=[Button.model_validate(b) for b in row.buttons or ()],
            network_message_id=row.network_message_id,
            created_at=row.created_at,
            files=[str(a.get("name") or a.get("kind") or "file") for a in row.attachments or ()],
            attachments=[Attachment.model_validate(a) for a in row.attachments or ()],
        )
        for row in reversed(rows)
    ]
