"""Builders of domain objects for tests."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.bus import BusEntry
from bridge.bus.memory import MemoryBus
from bridge.domain import InboundMessage, Network, OutboundMessage
from bridge.pipeline.phrases import FEEDBACK_NO, FEEDBACK_YES
from bridge.pipeline.responder import Answer, Question
from bridge.pipeline.worker import Pipeline
from bridge.settings import Settings
from bridge.store.models import decisions


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
