"""One person across networks: an agent says "same person as ...", and the identities and
conversations of one customer move to the other (and can be moved back, exactly)."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.domain import Event, EventKind, Network
from bridge.store.links import move_customer
from bridge.store.models import conversations, customer_links, identities, utcnow

SEARCH_LIMIT = 10


class LinkRefused(ValueError):
    """A link that cannot be made or undone, with the reason."""


@dataclass(frozen=True, slots=True)
class CustomerMatch:
    customer_id: int
    name: str
    networks: list[Network]


@dataclass(frozen=True, slots=True)
class Link:
    id: int
    merged_customer_id: int
    identities: int
    conversations: int


async def customer_of(engine: AsyncEngine, conversation_id: int) -> int | None:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                sa.select(conversations.c.customer_id).where(conversations.c.id == conversation_id)
            )
        ).scalar_one_or_none()


async def find_customers(engine: AsyncEngine, text: str, *, other_than: int) -> list[CustomerMatch]:
    """Customers whose name contains `text`, or whose network user id is `text`."""
    text = text.strip()
    if not text:
        return []
    i = identities.c
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    query = (
        sa.select(i.customer_id, i.display_name, i.external_user_id, i.network)
        .where(
            sa.or_(i.display_name.ilike(pattern, escape="\\"), i.external_user_id == text),
            i.customer_id != other_than,
        )
        .order_by(i.customer_id)
        .limit(SEARCH_LIMIT * 4)
    )
    async with engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    found: dict[int, CustomerMatch] = {}
    for row in rows:
        match = found.setdefault(
            row.customer_id,
            CustomerMatch(row.customer_id, row.display_name or row.external_user_id, []),
        )
        if row.network not in match.networks:
            match.networks.append(row.network)
    return list(found.values())[:SEARCH_LIMIT]


async def link_customers(
    engine: AsyncEngine, bus: Bus, keep: int, merge: int, agent_id: int | None
) -> int:
    """Move `merge`'s identities and conversations to `keep`; the link's id (for undo)."""
    if keep == merge:
        raise LinkRefused("a customer is already the same person as themselves")
    async with engine.begin() as conn:
        moved = await move_customer(conn, keep, merge, agent_id)
    if moved is None:
        raise LinkRefused(f"customer {merge} has no identity left to link")
    await _tell(bus, moved.conversation_ids, "linked")
    return moved.link_id


async def undo_link(engine: AsyncEngine, bus: Bus, link_id: int) -> None:
    """Move exactly what the link moved back to the customer it came from."""
    link = customer_links.c
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                sa.select(customer_links).where(link.id == link_id, link.undone_at.is_(None))
            )
        ).first()
        if row is None:
            raise LinkRefused("this link does not exist or was undone already")
        await conn.execute(
            sa.update(identities)
            .where(identities.c.id.in_(row.identity_ids))
            .values(customer_id=row.merged_customer_id)
        )
        # by identity: conversations those identities started after the link go back too
        moved_back = list(
            (
                await conn.execute(
                    sa.update(conversations)
                    .where(conversations.c.identity_id.in_(row.identity_ids))
                    .values(customer_id=row.merged_customer_id)
                    .returning(conversations.c.id)
                )
            ).scalars()
        )
        await conn.execute(
            sa.update(customer_links).where(link.id == link_id).values(undone_at=utcnow())
        )
    await _tell(bus, moved_back, "unlinked")


async def links_of(engine: AsyncEngine, customer_id: int) -> list[Link]:
    link = customer_links.c
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                sa.select(customer_links)
                .where(link.customer_id == customer_id, link.undone_at.is_(None))
                .order_by(link.id.desc())
            )
        ).all()
    return [
        Link(row.id, row.merged_customer_id, len(row.identity_ids), len(row.conversation_ids))
        for row in rows
    ]


async def _tell(bus: Bus, conversation_ids: list[int], change: str) -> None:
    await bus.publish_events(
        [
            Event(kind=EventKind.CUSTOMER_LINKED, conversation_id=cid, data={"change": change})
            for cid in conversation_ids
        ]
    )
