"""Moving one customer's identities and conversations to another, kept as a link that can be
undone exactly: what an agent does when they say two customers are one person
(bridge.inbox.customers), and what a private chat keyed anew does when the network names a
person already known (bridge.store.rekey)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from bridge.store.models import conversations, customer_links, identities, utcnow


@dataclass(frozen=True, slots=True)
class Moved:
    link_id: int
    conversation_ids: list[int]


async def move_customer(
    conn: AsyncConnection, keep: int, merge: int, agent_id: int | None
) -> Moved | None:
    """Move `merge`'s identities and conversations to `keep` and keep the link (`agent_id`
    None: the product linked them itself); None when `merge` has no identity left."""
    i, c = identities.c, conversations.c
    identity_ids = list(
        (await conn.execute(sa.select(i.id).where(i.customer_id == merge))).scalars()
    )
    if not identity_ids:
        return None
    conversation_ids = list(
        (await conn.execute(sa.select(c.id).where(c.customer_id == merge))).scalars()
    )
    await conn.execute(sa.update(identities).where(i.id.in_(identity_ids)).values(customer_id=keep))
    if conversation_ids:
        await conn.execute(
            sa.update(conversations).where(c.id.in_(conversation_ids)).values(customer_id=keep)
        )
    link_id = (
        await conn.execute(
            sa.insert(customer_links)
            .values(
                customer_id=keep,
                merged_customer_id=merge,
                identity_ids=identity_ids,
                conversation_ids=conversation_ids,
                agent_id=agent_id,
                created_at=utcnow(),
            )
            .returning(customer_links.c.id)
        )
    ).scalar_one()
    return Moved(int(link_id), conversation_ids)
