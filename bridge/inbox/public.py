"""Public threads from the agent's side: taking a commenter to a private conversation on the
same network, and what is known beforehand of whether the network lets the community write to
them there."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import Bus
from bridge.domain import ConversationState, Direction
from bridge.inbox.actions import ActionRefused, ConversationNotFound, reply_as_agent
from bridge.store.engine import insert_ignoring_conflicts
from bridge.store.models import conversations, identities, messages, utcnow

# What an agent may answer in public to a customer the community may not write to privately, in
# the customer's language: the agent sees it in the composer before it goes out.
_INVITATIONS = {
    "en": "We would like to help you personally: please write to us in private messages.",
    "ru": "Мы хотим помочь вам лично: пожалуйста, напишите нам в личные сообщения.",
}


def invitation(language: str | None) -> str:
    return _INVITATIONS["ru" if language == "ru" else "en"]


class PrivateNotAllowed(ActionRefused):
    """The person told the network the community may not write to them privately."""


@dataclass(frozen=True, slots=True)
class MovedToPrivate:
    conversation_id: int  # the private conversation the agent's message went to
    message_id: int


async def move_to_private(
    engine: AsyncEngine,
    bus: Bus,
    conversation_id: int,
    comment_id: int,
    agent_id: int,
    text: str,
) -> MovedToPrivate:
    """Send the agent's `text` privately to the author of the comment `comment_id` of the public
    thread `conversation_id`, in their private conversation on the same network (made when they
    have none: a person's private chat has their user id as its chat id on every network). It
    goes through the same delivery; a network that refuses it marks it failed with its reason.
    Refused at once when the person told the network the community may not write to them."""
    m, c, i = messages.c, conversations.c, identities.c
    async with engine.begin() as conn:
        found = (
            await conn.execute(
                sa.select(i.id, i.customer_id, i.network, i.external_user_id, i.allows_private)
                .select_from(messages)
                .join(conversations, c.id == m.conversation_id)
                .join(identities, i.id == m.author_identity_id)
                .where(
                    m.id == comment_id,
                    m.conversation_id == conversation_id,
                    m.direction == Direction.INBOUND,
                    c.public,
                )
            )
        ).first()
        if found is None:
            raise ConversationNotFound(conversation_id)
        if found.allows_private is False:
            raise PrivateNotAllowed(
                "this customer does not allow the community to write to them privately: "
                "answer in public and invite them to write to the community"
            )
        now = utcnow()
        await conn.execute(
            insert_ignoring_conflicts(conn, conversations),
            [
                {
                    "network": found.network,
                    "chat_id": found.external_user_id,
                    "identity_id": found.id,
                    "customer_id": found.customer_id,
                    "state": ConversationState.WAITING,
                    "created_at": now,
                    "last_message_at": now,
                }
            ],
        )
        private_id = (
            await conn.execute(
                sa.select(c.id).where(
                    c.network == found.network, c.chat_id == found.external_user_id
                )
            )
        ).scalar_one()
    sent = await reply_as_agent(engine, bus, private_id, agent_id, text, moved_from=comment_id)
    return MovedToPrivate(int(private_id), sent.message_id)
