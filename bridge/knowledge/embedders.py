"""The embedding model a process matches with: each backend loaded once per process, by whichever
knowledge-base responder asks first; None (lexical matching) for `none` or a backend that cannot
load, which is said once, in the log and in the metrics."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from bridge.settings import Settings
from bridge.util.metrics import KB_EMBEDDING_FAILURES, KB_EMBEDDINGS_ACTIVE
from kb.embedding import load_embedder
from kb.embedding.base import Embedder

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class EmbeddingChoice:
    """The settings' embedding backend; `model` and `allow_download` for sentence-transformers."""

    backend: str = "none"
    model: str = ""
    allow_download: bool = False

    @classmethod
    def of(cls, settings: Settings) -> EmbeddingChoice:
        return cls(
            settings.kb_embeddings,
            settings.kb_embeddings_model,
            settings.kb_embeddings_allow_download,
        )


class Embedders:
    def __init__(self) -> None:
        self._loaded: dict[EmbeddingChoice, Embedder | None] = {}
        self._lock = threading.Lock()

    def get(self, choice: EmbeddingChoice) -> Embedder | None:
        """The choice's embedder; blocks while a model loads (seconds): call it off the loop."""
        with self._lock:
            if choice not in self._loaded:
                self._loaded[choice] = _load(choice)
            return self._loaded[choice]


# the process's models: a model takes 80 MB or more, whether one responder uses it or two
PROCESS_EMBEDDERS = Embedders()


def _load(choice: EmbeddingChoice) -> Embedder | None:
    backend = choice.backend
    started = time.monotonic()
    try:
        embedder = load_embedder(backend, choice.model, choice.allow_download)
    # a third-party model can fail in ways its seam does not foresee: lexical beats a crash
    except Exception as exc:
        log.warning(
            "knowledge base: embedding backend %r cannot be used (%s); matching lexically",
            backend,
            exc,
        )
        KB_EMBEDDING_FAILURES.labels(backend, "load").inc()
        KB_EMBEDDINGS_ACTIVE.labels(backend).set(0)
        return None
    if embedder is None:  # `none`: the lexical matcher alone, as configured
        return None
    log.info(
        "knowledge base: embedding backend %r loaded (%s) in %.1f s",
        backend,
        embedder.name,
        time.monotonic() - started,
    )
    KB_EMBEDDINGS_ACTIVE.labels(backend).set(1)
    return embedder
