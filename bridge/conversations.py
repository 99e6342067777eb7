"""What agents do to a conversation, as service functions the inbox and the REST API call."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.domain import (
    MAX_TEXT_CHARS,
    AuthorKind,
    ConversationState,
    DecisionOutcome,
    DeliveryStatus,
    Direction,
    Event,
    OutboundMessage,
)
from bridge.store.models import conversations, decisions, messages, utcnow


class ConversationNotFound(LookupError):
    pass


async def reply_as_agent(
    engine: AsyncEngine, bus: Bus, conversation_id: int, agent_id: int, text: str
) -> OutboundMessage:
    """Store the agent's reply, queue it on the customer's network, and take the conversation
    (an agent who answers has it: state `assigned`, first response time noted)."""
    text = text.strip()
    if not text or len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"a reply needs 1 to {MAX_TEXT_CHARS} characters")
    now = utcnow()
    key = f"agent:{uuid.uuid4().hex}"
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                sa.select(
                    conversations.c.network,
                    conversations.c.chat_id,
                    conversations.c.last_message_at,
                ).where(conversations.c.id == conversation_id)
            )
        ).first()
        if row is None:
            raise ConversationNotFound(conversation_id)
        message_id = (
            await conn.execute(
                sa.insert(messages)
                .values(
                    conversation_id=conversation_id,
                    network=row.network,
                    direction=Direction.OUTBOUND,
                    author_kind=AuthorKind.AGENT,
                    agent_id=agent_id,
                    text=text,
                    idempotency_key=key,
                    delivery_status=DeliveryStatus.QUEUED,
                    created_at=now,
                )
                .returning(messages.c.id)
            )
        ).scalar_one()
        c = conversations.c
        await conn.execute(
            sa.update(conversations)
            .where(c.id == conversation_id)
            .values(
                state=ConversationState.ASSIGNED,
                assignee_id=sa.func.coalesce(c.assignee_id, agent_id),
                first_response_at=sa.func.coalesce(c.first_response_at, now),
            )
        )
    outbound = OutboundMessage(
        message_id=message_id,
        conversation_id=conversation_id,
        network=row.network,
        chat_id=row.chat_id,
        text=text,
        idempotency_key=key,
        author_kind=AuthorKind.AGENT,
        customer_last_message_at=row.last_message_at.timestamp(),
    )
    await bus.publish_outbound([outbound])
    await bus.publish_events(
        [
            Event(
                kind="message.created",
                conversation_id=conversation_id,
                data={"message_id": message_id},
            )
        ]
    )
    return outbound


class SuggestionNotFound(LookupError):
    pass


async def judge_suggestion(
    engine: AsyncEngine,
    conversation_id: int,
    question_message_id: int,
    agent_id: int,
    *,
    accepted: bool,
) -> None:
    """Shadow mode: the agent's verdict on the article the bot suggested for a question, kept as
    evidence of how right the bot would have been."""
    d = decisions.c
    async with engine.begin() as conn:
        result = await conn.execute(
            sa.update(decisions)
            .where(
                d.message_id == question_message_id,
                d.conversation_id == conversation_id,
                d.outcome == DecisionOutcome.SUGGESTED,
            )
            .values(
                verdict="accepted" if accepted else "rejected",
                verdict_agent_id=agent_id,
                verdict_at=utcnow(),
            )
        )
        if result.rowcount != 1:
            raise SuggestionNotFound(question_message_id)
