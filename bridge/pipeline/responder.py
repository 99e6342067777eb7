"""The border between routing and whatever answers questions (the knowledge base, later)."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Protocol

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
    text: str
    confidence: float
    article_id: str | None = None


class Responder(Protocol):
    async def answer(self, question: Question) -> Answer | None:
        """The best answer with a calibrated confidence in [0, 1], or None when there is none."""
        ...


class ResponderFactory(Protocol):
    def __call__(self, settings: Settings) -> Responder: ...


def load_responder(settings: Settings) -> Responder | None:
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
    return factory(settings)
