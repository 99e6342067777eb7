"""A responder that answers every question, so that every benchmark message produces a reply."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.pipeline.responder import Answer, Question, Responder
from bridge.settings import Settings


class AlwaysAnswer:
    async def answer(self, question: Question) -> Answer | None:
        return Answer(f"re: {question.text}", 1.0, "bench")


def always_answer(_settings: Settings, _engine: AsyncEngine) -> Responder:
    return AlwaysAnswer()
