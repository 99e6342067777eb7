"""The border between routing and whatever answers questions (the knowledge base by default)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncEngine

from bridge.domain import Network
from bridge.settings import Settings, SettingsError


@dataclass(frozen=True, slots=True)
class Question:
    conversation_id: int
    network: Network
    text: str
    language: str | None


@dataclass(frozen=True, slots=True)
class Answer:
    """The best answer found; routing decides whether it is sent. `threshold` is the article's
    own threshold, if it has one; `never_auto` articles are only ever sent by agents."""

    text: str
    confidence: float
    article_id: str | None = None
    threshold: float | None = None
    never_auto: bool = False
    tags: tuple[str, ...] = ()  # the article's: routing rules may send its handoffs to a team


class Responder(Protocol):
    async def answer(self, question: Question) -> Answer | None:
        """The best answer with a calibrated confidence in [0, 1], or None when there is none."""
        ...


@runtime_checkable
class Prepared(Protocol):
    """A responder with work to do before its first answer (the knowledge base fits its
    matcher): the core does it before it takes messages and reports ready."""

    async def prepare(self) -> None: ...


class ResponderFactory(Protocol):
    def __call__(self, settings: Settings, engine: AsyncEngine) -> Responder: ...


def load_responder(settings: Settings, engine: AsyncEngine) -> Responder | None:
    """Build the responder named by `settings.responder` ('package.module:factory')."""
    if not settings.responder:
        return None
    module_name, _, attribute = settings.responder.partition(":")
    try:
        factory: ResponderFactory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise SettingsError(
            f"setting SB_RESPONDER: cannot load {settings.responder!r} ({exc})"
        ) from None
    return factory(settings, engine)
