"""The embedding model a process matches with: each backend loaded once per process, by whichever
knowledge-base responder asks first; None (lexical matching) for `none` or a backend that cannot
load, which is said once, in the log and in the metrics."""

from __future__ import annotations

import logging
import threading
import time

from bridge.util.metrics import KB_EMBEDDING_FAILURES, KB_EMBEDDINGS_ACTIVE
from kb.embedding import load_embedder
from kb.embedding.base import Embedder

log = logging.getLogger(__name__)


class Embedders:
    def __init__(self) -> None:
        self._loaded: dict[str, Embedder | None] = {}
        self._lock = threading.Lock()

    def get(self, backend: str) -> Embedder | None:
        """The backend's embedder; blocks while a model loads (seconds): call it off the loop."""
        with self._lock:
            if backend not in self._loaded:
                self._loaded[backend] = _load(backend)
            return self._loaded[backend]


# the process's models: a model takes 150 MB, whether one responder uses it or two
PROCESS_EMBEDDERS = Embedders()


def _load(backend: str) -> Embedder | None:
    started = time.monotonic()
    try:
        embedder = load_embedder(backend)
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
