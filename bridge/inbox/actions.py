"""What agents do to a conversation, as service functions the inbox and the REST API call."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Sequence

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.bus import Bus
from bridge.domain import (
    MAX_TEXT_CHARS,
    Attachment,
    AuthorKind,
    ConversationState,
    DecisionOutcome,
    DeliveryStatus,
    Direction,
    Event,
    EventKind,
    HandoffReason,
    OutboundMessage,
)
from bridge.inbox.ratings import ask_for_rating
from bridge.store.models import agents, conversations, decisions, messages, utcnow
from bridge.store.outbox import load_outbound


class ConversationNotFound(LookupError):
    pass


async def reply_as_agent(
    engine: AsyncEngine,
    bus: Bus,
    conversation_id: int,
    agent_id: int,
    text: str,
    attachments: Sequence[Attachment] = (),
    reply_to: int | None = None,
    answers: int | None = None,
) -> OutboundMessage:
    """Store the agent's reply, queue it on the customer's network, and take the conversation
    (an agent who answers has it: state `assigned`, first response time noted). `attachments`:
    files already kept (bridge.inbox.outgoing_files), with which the text may be empty. In a
    public thread the reply is public, under the comment `reply_to` (a message id; by default
    the latest comment still there). `answers`: in a private conversation, the public comment
    (a message id) this message answers privately (bridge.inbox.public)."""
    text = text.strip()
    if len(text) > MAX_TEXT_CHARS or not (text or attachments):
        raise ValueError(f"a reply needs 1 to {MAX_TEXT_CHARS} characters, or a file")
    now = utcnow()
    key = f"agent:{uuid.uuid4().hex}"
    async with engine.begin() as conn:
        row = (
            await conn.execute(
                sa.select(
                    conversations.c.network,
                    conversations.c.chat_id,
                    conversations.c.last_message_at,
                    conversations.c.public,
                ).where(conversations.c.id == conversation_id)
            )
        ).first()
        if row is None:
            raise ConversationNotFound(conversation_id)
        answered = (
            await _answered_comment(conn, conversation_id, reply_to) if row.public else answers
        )
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
                    attachments=[a.model_dump(mode="json") for a in attachments] or None,
                    idempotency_key=key,
                    delivery_status=DeliveryStatus.QUEUED,
                    in_reply_to_id=answered,
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
                assigned_at=sa.case((c.assignee_id.is_(None), now), else_=c.assigned_at),
                first_response_at=sa.func.coalesce(c.first_response_at, now),
                awaiting_since=None,
            )
        )
        (outbound,) = await load_outbound(conn, messages.c.id == message_id)
    await bus.publish_outbound([outbound])
    await bus.publish_events(
        [
            Event(
                kind=EventKind.MESSAGE_CREATED,
                conversation_id=conversation_id,
                data={"message_id": message_id},
            )
        ]
    )
    return outbound


async def _answered_comment(
    conn: AsyncConnection, conversation_id: int, reply_to: int | None
) -> int | None:
    """The comment a public reply answers: `reply_to`, which must be a customer's comment of
    the thread still there, or the latest such one (None: there is none, the reply stands
    alone under the post)."""
    m = messages.c
    query = sa.select(m.id).where(
        m.conversation_id == conversation_id,
        m.direction == Direction.INBOUND,
        m.deleted_at.is_(None),
    )
    if reply_to is not None:
        found = (await conn.execute(query.where(m.id == reply_to))).scalar_one_or_none()
        if found is None:
            raise ActionRefused(f"message {reply_to} is no comment of this thread still there")
        return int(found)
    latest = (await conn.execute(query.order_by(m.id.desc()).limit(1))).scalar_one_or_none()
    return int(latest) if latest is not None else None


class SuggestionNotFound(LookupError):
    pass


async def judge_suggestion(
    engine: AsyncEngine,
    conversation_id: int,
    question_message_id: int,
    agent_id: int,
    *,
    accepted: bool,
) -> str:
    """Shadow mode: the agent's verdict on the article the bot suggested for a question, kept as
    evidence of how right the bot would have been. Returns the article's id."""
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
        article = (
            await conn.execute(sa.select(d.article_id).where(d.message_id == question_message_id))
        ).scalar_one()
    return str(article)


class ActionRefused(ValueError):
    """An action that does not fit the conversation's state, with the reason."""


class AgentNotFound(LookupError):
    """The agent a conversation is given to does not exist."""


class HeldByColleague(ActionRefused):
    """A colleague has the conversation: claiming it takes it from them, so the agent is asked."""

    def __init__(self, colleague: str) -> None:
        super().__init__(f"{colleague} has this conversation: take it over to answer it")
        self.colleague = colleague


async def _assignable_name(conn: AsyncConnection, agent_id: int) -> str:
    """The name of an agent a conversation is given to; only an active agent is given one, as a
    disabled one would never answer it."""
    row = (
        await conn.execute(
            sa.select(agents.c.active, agents.c.display_name).where(agents.c.id == agent_id)
        )
    ).one_or_none()
    if row is None:
        raise AgentNotFound(agent_id)
    if not row.active:
        raise ActionRefused(f"agent {agent_id} is disabled and cannot be given a conversation")
    return str(row.display_name)


Then = Callable[[AsyncConnection], Awaitable[OutboundMessage | None]]
"""What else a change of state sends the customer, given the change's transaction."""


async def _set_state(
    engine: AsyncEngine,
    bus: Bus,
    conversation_id: int,
    values: dict[str, object],
    *,
    allowed_from: tuple[ConversationState, ...],
    refusal: str,
    assignee: int | None = None,
    take_over: bool = True,
    then: Then | None = None,
) -> None:
    """`assignee`: the agent the conversation is given to, if it is given to one (`take_over`:
    even from a colleague who has it); `then`: what else the change sends the customer, queued
    in the same transaction."""
    c = conversations.c
    news: dict[str, object] = {}
    async with engine.begin() as conn:
        current = (
            await conn.execute(
                sa.select(c.state, c.assignee_id).where(c.id == conversation_id).with_for_update()
            )
        ).one_or_none()
        if current is None:
            raise ConversationNotFound(conversation_id)
        if current.state not in allowed_from:
            raise ActionRefused(refusal)
        if assignee is not None:
            name = await _assignable_name(conn, assignee)
            held_by = current.assignee_id
            if held_by is not None and held_by != assignee:
                if not take_over:
                    colleague = sa.select(agents.c.display_name).where(agents.c.id == held_by)
                    raise HeldByColleague(str(await conn.scalar(colleague)))
                # the colleague's pages tell them who has it now
                news = {"previous_assignee_id": held_by, "assignee_name": name}
            values = {**values, "assignee_id": assignee}
            if held_by != assignee:  # the new assignee's time to answer starts now
                values["assigned_at"] = utcnow()
        await conn.execute(sa.update(conversations).where(c.id == conversation_id).values(values))
        sent = await then(conn) if then is not None else None
    events = [
        Event(
            kind=EventKind.CONVERSATION_STATE,
            conversation_id=conversation_id,
            data={k: v for k, v in values.items() if k in ("state", "assignee_id")} | news,
        )
    ]
    if sent is not None:
        await bus.publish_outbound([sent])
        events.append(
            Event(
                kind=EventKind.MESSAGE_CREATED,
                conversation_id=conversation_id,
                data={"message_id": sent.message_id},
            )
        )
    await bus.publish_events(events)


async def assign(
    engine: AsyncEngine, bus: Bus, conversation_id: int, agent_id: int, *, take_over: bool = True
) -> None:
    """Give the conversation to an active agent (claiming it is assigning it to oneself); the bot
    stops answering it. The inbox's form and the API both transfer through here. A claim passes
    `take_over` only once the agent said yes: without it, one a colleague has is refused
    (`HeldByColleague`). The colleague is told who has it now."""
    await _set_state(
        engine,
        bus,
        conversation_id,
        {
            "state": ConversationState.ASSIGNED,
            "handoff_reason": sa.func.coalesce(
                conversations.c.handoff_reason, HandoffReason.AGENT_TOOK_OVER.value
            ),
        },
        allowed_from=(ConversationState.BOT, ConversationState.WAITING, ConversationState.ASSIGNED),
        refusal="a resolved conversation is reopened before it is assigned",
        assignee=agent_id,
        take_over=take_over,
    )


async def resolve(
    engine: AsyncEngine, bus: Bus, conversation_id: int, *, ask_rating: bool = True
) -> None:
    """Close the conversation; with `ask_rating` (the `csat_enabled` setting) the customer is
    asked to rate the help, if an agent replied since the last time they were asked."""
    now = utcnow()

    async def ask(conn: AsyncConnection) -> OutboundMessage | None:
        return await ask_for_rating(conn, conversation_id, now)

    await _set_state(
        engine,
        bus,
        conversation_id,
        {"state": ConversationState.RESOLVED, "resolved_at": now, "awaiting_since": None},
        allowed_from=(ConversationState.BOT, ConversationState.WAITING, ConversationState.ASSIGNED),
        refusal="the conversation is resolved already",
        then=ask if ask_rating else None,
    )


async def reopen(engine: AsyncEngine, bus: Bus, conversation_id: int, agent_id: int) -> None:
    """Back to the agent who reopens it (the customer's next message reopens it for the bot)."""
    await _set_state(
        engine,
        bus,
        conversation_id,
        {"state": ConversationState.ASSIGNED, "resolved_at": None},
        allowed_from=(ConversationState.RESOLVED,),
        refusal="only a resolved conversation can be reopened",
        assignee=agent_id,
    )


async def add_note(
    engine: AsyncEngine, bus: Bus, conversation_id: int, agent_id: int, text: str
) -> int:
    """An internal note: kept in the conversation for the agents, never sent to the customer."""
    text = text.strip()
    if not text or len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"a note needs 1 to {MAX_TEXT_CHARS} characters")
    async with engine.begin() as conn:
        network = (
            await conn.execute(
                sa.select(conversations.c.network).where(conversations.c.id == conversation_id)
            )
        ).scalar_one_or_none()
        if network is None:
            raise ConversationNotFound(conversation_id)
        note_id = (
            await conn.execute(
                sa.insert(messages)
                .values(
                    conversation_id=conversation_id,
                    network=network,
                    direction=Direction.INTERNAL,
                    author_kind=AuthorKind.AGENT,
                    agent_id=agent_id,
                    text=text,
                    created_at=utcnow(),
                )
                .returning(messages.c.id)
            )
        ).scalar_one()
    await bus.publish_events(
        [
            Event(
                kind=EventKind.MESSAGE_CREATED,
                conversation_id=conversation_id,
                data={"message_id": note_id},
            )
        ]
    )
    return int(note_id)


async def retry_delivery(
    engine: AsyncEngine,
    bus: Bus,
    conversation_id: int,
    message_id: int,
    stuck_after: dt.timedelta = dt.timedelta(minutes=10),
) -> None:
    """Queue an outgoing message again: a failed one, or one queued for longer than
    `stuck_after` (same idempotency key: the networks that honour one still deliver it once,
    and a sender never sends one that is no longer queued)."""
    m = messages.c
    async with engine.begin() as conn:
        found = (
            await conn.execute(
                sa.select(m.id).where(
                    m.id == message_id,
                    m.conversation_id == conversation_id,
                    m.direction == Direction.OUTBOUND,
                )
            )
        ).first()
        if found is None:
            raise ConversationNotFound(conversation_id)
        stuck = sa.and_(
            m.delivery_status == DeliveryStatus.QUEUED, m.created_at < utcnow() - stuck_after
        )
        updated = await conn.execute(
            sa.update(messages)
            .where(m.id == message_id, sa.or_(m.delivery_status == DeliveryStatus.FAILED, stuck))
            # published again now: the outbox sweep leaves it a period from here
            .values(
                delivery_status=DeliveryStatus.QUEUED, delivery_error=None, requeued_at=utcnow()
            )
        )
        if updated.rowcount != 1:
            raise ActionRefused("only a failed or a stuck message can be sent again")
        outbound = await load_outbound(conn, m.id == message_id)
    await bus.publish_outbound(outbound)
    await bus.publish_events(
        [
            Event(
                kind=EventKind.MESSAGE_STATUS,
                conversation_id=conversation_id,
                data={"message_id": message_id, "status": DeliveryStatus.QUEUED.value},
            )
        ]
    )
