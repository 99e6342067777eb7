"""Public threads from the agent's side: taking a commenter to a private conversation on the
same network, and what is known beforehand of whether the network lets the community write to
them there."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from bridge.bus import Bus
from bridge.domain import ConversationState, DeliveryStatus, Direction, Network
from bridge.inbox.actions import ActionRefused, ConversationNotFound, reply_as_agent
from bridge.store.engine import insert_ignoring_conflicts
from bridge.store.models import an_agents_answer, conversations, identities, messages, utcnow

# What an agent may answer in public to a customer the community may not write to privately, in
# the customer's language: the agent sees it in the composer before it goes out.
_INVITATIONS = {
    "en": "We would like to help you personally: please write to us in private messages.",
    "ru": "Мы хотим помочь вам лично: пожалуйста, напишите нам в личные сообщения.",
}


def invitation(language: str | None, link: str | None = None) -> str:
    """The invitation, with the link that opens the private chat where the network has one."""
    text = _INVITATIONS["ru" if language == "ru" else "en"]
    return f"{text} {link}" if link else text


def telegram_start_link(bot_username: str, conversation_id: int) -> str:
    """A deep link that opens the bot's private chat with a Start button: a bot may write
    privately only to whoever started it (docs/networks.md 1.8); the parameter names the thread
    the invitation came from."""
    return f"https://t.me/{bot_username}?start=c{conversation_id}"


def a_comment_of(conversation_id: int, message_id: int) -> list[sa.ColumnElement[bool]]:
    """The message `message_id` is a customer's comment of the public thread `conversation_id`
    (the query joins the message's conversation)."""
    m = messages.c
    return [
        m.id == message_id,
        m.conversation_id == conversation_id,
        m.direction == Direction.INBOUND,
        conversations.c.public,
    ]


class PrivateNotAllowed(ActionRefused):
    """The person told the network the community may not write to them privately, or (Telegram)
    never started the bot, which is all that lets a bot write to a person."""

    def __init__(self, message: str, *, network: Network) -> None:
        super().__init__(message)
        self.network = network


class PrivateReplyRefused(ActionRefused):
    """The network's rule for a private reply to a comment (PRIVATE_REPLY_RULES) allows none
    now: the comment is `too_old`, or has had its one."""

    def __init__(self, message: str, *, network: str, days: int, too_old: bool) -> None:
        super().__init__(message)
        self.network = network
        self.days = days
        self.too_old = too_old


@dataclass(frozen=True, slots=True)
class PrivateReplyRule:
    """A network that lets the page write privately to a commenter only as an answer to the
    comment: `once` per comment, within `within` of it (Meta's Private Replies,
    docs/networks.md 3.4); until they write back, nothing more goes to them."""

    name: str  # the network as agents know it, in the reasons they read
    within: dt.timedelta
    once: bool


PRIVATE_REPLY_RULES = {
    Network.FACEBOOK: PrivateReplyRule("Facebook", dt.timedelta(days=7), once=True),
    Network.INSTAGRAM: PrivateReplyRule("Instagram", dt.timedelta(days=7), once=True),
}


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
    goes through the same delivery, as the answer to that comment; a network that refuses it
    marks it failed with its reason. Refused at once when the person told the network the
    community may not write to them, on Telegram when they never wrote to the bot privately (it
    cannot write to them first), or when the network's rule for private replies
    (PRIVATE_REPLY_RULES) says the comment can have none now."""
    m, c, i = messages.c, conversations.c, identities.c
    async with engine.begin() as conn:
        found = (
            await conn.execute(
                sa.select(
                    i.id,
                    i.customer_id,
                    i.network,
                    i.external_user_id,
                    i.allows_private,
                    m.created_at,
                )
                .select_from(messages)
                .join(conversations, c.id == m.conversation_id)
                .join(identities, i.id == m.author_identity_id)
                .where(*a_comment_of(conversation_id, comment_id))
            )
        ).first()
        if found is None:
            raise ConversationNotFound(conversation_id)
        if found.allows_private is False:
            raise PrivateNotAllowed(
                "this customer does not allow the community to write to them privately: "
                "answer in public and invite them to write to the community",
                network=found.network,
            )
        telegram = found.network == Network.TELEGRAM
        if telegram and not await _started_bot(conn, found.external_user_id):
            raise PrivateNotAllowed(
                "Telegram lets the bot write privately only to people who started it, and this "
                "customer has not: answer in public and invite them to start the bot",
                network=found.network,
            )
        if (rule := PRIVATE_REPLY_RULES.get(Network(found.network))) is not None:
            await _check_private_reply(conn, rule, comment_id, found.created_at)
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
    sent = await reply_as_agent(engine, bus, private_id, agent_id, text, answers=comment_id)
    return MovedToPrivate(int(private_id), sent.message_id)


async def _check_private_reply(
    conn: AsyncConnection, rule: PrivateReplyRule, comment_id: int, commented_at: dt.datetime
) -> None:
    """PrivateReplyRefused when the comment is too old for a private reply, or has had its
    one."""
    days = rule.within.days
    if utcnow() - commented_at > rule.within:
        raise PrivateReplyRefused(
            f"{rule.name} lets the page answer a comment privately only within {days} days of "
            "it, and this comment is older: answer in public",
            network=rule.name,
            days=days,
            too_old=True,
        )
    m = messages.c
    answered = (
        await conn.execute(
            sa.select(m.id)
            .join(conversations, conversations.c.id == m.conversation_id)
            .where(
                an_agents_answer(messages, comment_id),
                m.direction == Direction.OUTBOUND,
                m.delivery_status != DeliveryStatus.FAILED,
                sa.not_(conversations.c.public),
            )
            .limit(1)
        )
    ).first()
    if rule.once and answered is not None:
        raise PrivateReplyRefused(
            f"this comment already has its private reply, and {rule.name} allows one: the "
            "customer's private conversation goes on when they write back",
            network=rule.name,
            days=days,
            too_old=False,
        )


async def _started_bot(conn: AsyncConnection, user_id: str) -> bool:
    """Whether the Telegram user ever wrote to the bot in their private chat (its id is theirs)."""
    m, c = messages.c, conversations.c
    wrote = await conn.execute(
        sa.select(m.id)
        .join(conversations, c.id == m.conversation_id)
        .where(
            c.network == Network.TELEGRAM,
            c.chat_id == user_id,
            m.direction == Direction.INBOUND,
        )
        .limit(1)
    )
    return wrote.first() is not None
