"""Builders of domain objects for tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import BusEntry
from bridge.bus.memory import MemoryBus
from bridge.domain import InboundMessage, Network, OutboundMessage, PublicPlace
from bridge.inbox.agents import add_agent
from bridge.inbox.public import MovedToPrivate, move_to_private
from bridge.pipeline.phrases import FEEDBACK_NO, FEEDBACK_YES
from bridge.pipeline.responder import Answer, Question
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import decisions, messages


def inbound(
    chat: str | int,
    seq: int,
    text: str = "hello",
    *,
    network: Network = Network.TELEGRAM,
    language: str | None = None,
    button_data: str | None = None,
) -> InboundMessage:
    """Message number `seq` of the private chat `chat` (user id = chat id, as in private chats);
    with `button_data`, the press of a button labelled `text`."""
    return InboundMessage(
        network=network,
        network_message_id=f"{chat}-{seq}",
        chat_id=str(chat),
        user_id=str(chat),
        text=text,
        display_name=f"Customer {chat}",
        language=language,
        kind="button" if button_data else "message",
        button_data=button_data,
    )


def comment(
    post: str,
    author: int,
    number: int,
    text: str = "where is my order?",
    *,
    kind: Literal["message", "edit", "delete"] = "message",
    reply_to: int | None = None,
    network: Network = Network.VK,
) -> InboundMessage:
    """Comment `number` by user `author` under the post `post` (a thread key: VK's wall-1_5,
    a Facebook Page's post:1_5) on `network`: `kind` "edit" or "delete" for its edit or
    deletion."""
    return InboundMessage(
        network=network,
        network_message_id=f"{post}:{number}",
        kind=kind,
        chat_id=post,
        user_id=str(author),
        text=text,
        display_name=f"Commenter {author}",
        public=PublicPlace(
            post_text=f"the post {post}",
            post_url=f"https://vk.com/{post}",
            reply_to=f"{post}:{reply_to}" if reply_to is not None else None,
        ),
    )


def permission(user: int, *, allows: bool) -> InboundMessage:
    """VK's message_allow (or, `allows` False, message_deny) of user `user`."""
    return InboundMessage(
        network=Network.VK,
        network_message_id=f"permission:{user}:{allows}",
        kind="permission",
        chat_id=str(user),
        user_id=str(user),
        allows_private=allows,
    )


def entries(*messages: InboundMessage | bytes) -> list[BusEntry]:
    """Bus entries as a worker would publish them; bytes are passed through as a raw payload."""
    return [
        BusEntry(
            str(n),
            item if isinstance(item, bytes) else orjson.dumps(item.model_dump(mode="json")),
        )
        for n, item in enumerate(messages, 1)
    ]


def drain_outbound(bus: MemoryBus, network: Network) -> list[OutboundMessage]:
    """Everything queued for `network` so far, taken off the in-process bus."""
    queue = bus._outbound[network]
    return [
        OutboundMessage.model_validate(orjson.loads(queue.get_nowait().payload))
        for _ in range(queue.qsize())
    ]


class ScriptedResponder:
    """Answers with the confidence (and article settings) the test gives for each text."""

    def __init__(self, confidence: float | Callable[[str], float] = 0.97, **article: object):
        self.confidence = confidence
        self.article = article

    async def answer(self, question: Question) -> Answer | None:
        confidence = (
            self.confidence(question.text) if callable(self.confidence) else self.confidence
        )
        return Answer(f"answer to {question.text}", confidence, "article-1", **self.article)  # type: ignore[arg-type]


async def judged_answers(
    engine: AsyncEngine, bus: MemoryBus, settings: Settings, *, right: int, wrong: int
) -> None:
    """`right + wrong` answered questions, each with the customer's "did this help?"."""
    pipeline = Pipeline(engine, bus, settings, ScriptedResponder(0.95))
    total = right + wrong
    await pipeline.handle(entries(*(inbound(n, 1, f"question {n}") for n in range(1, total + 1))))
    async with engine.begin() as conn:
        ids = (await conn.execute(sa.select(decisions.c.id).order_by(decisions.c.id))).scalars()
        ids = list(ids)[-total:]
        for n, decision in enumerate(ids):
            feedback = FEEDBACK_NO if n < wrong else FEEDBACK_YES
            await conn.execute(
                sa.update(decisions).where(decisions.c.id == decision).values(feedback=feedback)
            )


async def facebook_commenter_moved_to_private(
    engine: AsyncEngine, bus: MemoryBus, pipeline: Pipeline, author: int
) -> tuple[MovedToPrivate, int]:
    """`author` asked "Size M?" under a Page post and an agent took them to private: what the
    move made, and the agent's id."""
    await pipeline.handle(
        entries(comment("post:1_5", author, 1, "Size M?", network=Network.FACEBOOK))
    )
    drain_outbound(bus, Network.FACEBOOK)
    agent = await add_agent(engine, "vera", "correct horse battery")
    m = messages.c
    async with engine.connect() as conn:
        thread, asked = (
            await conn.execute(sa.select(m.conversation_id, m.id).where(m.text == "Size M?"))
        ).one()
    moved = await move_to_private(engine, bus, thread, asked, agent.id, "Your order number?")
    return moved, agent.id
