"""What each agent has read: opening a conversation marks its messages read for that agent, and
a customer's newer message makes it unread again (the list's marker)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.inbox.views import ConversationView
from bridge.store.engine import dialect_insert
from bridge.store.models import conversation_reads, utcnow


async def mark_seen(engine: AsyncEngine, agent_id: int, view: ConversationView) -> None:
    """The agent was shown the conversation: read up to its newest message."""
    newest = max((m.id for m in view.history if m.conversation_id == view.id), default=None)
    if newest is not None:
        await mark_read(engine, agent_id, view.id, newest)


async def mark_read(
    engine: AsyncEngine, agent_id: int, conversation_id: int, newest_message_id: int
) -> None:
    """The agent has seen the conversation up to `newest_message_id`; never moves back (a page
    rendered earlier may report after a later one)."""
    r = conversation_reads.c
    statement = dialect_insert(engine.dialect.name, conversation_reads).values(
        agent_id=agent_id,
        conversation_id=conversation_id,
        read_message_id=newest_message_id,
        read_at=utcnow(),
    )
    statement = statement.on_conflict_do_update(
        index_elements=[r.agent_id, r.conversation_id],
        set_={"read_message_id": statement.excluded.read_message_id, "read_at": utcnow()},
        where=r.read_message_id < statement.excluded.read_message_id,
    )
    async with engine.begin() as conn:
        await conn.execute(statement)
