"""The `sentence-transformers` backend: a model the user already has, by name or folder.

The library (and PyTorch under it) is the user's to install; it is not in our locks. Nothing is
downloaded unless the user allows it: the model must be in the local Hugging Face cache or at
the given path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from kb.embedding import EmbeddingError
from kb.embedding.base import Vectors, unit_rows


class LocalModel:
    def __init__(self, model: str, allow_download: bool = False) -> None:
        if not model.strip():
            raise EmbeddingError("sentence-transformers needs a model: a name or a folder")
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            hint = "pip install sentence-transformers"
            raise EmbeddingError(f"sentence-transformers is not installed: {hint} ({exc})") from exc
        try:
            self._model: Any = SentenceTransformer(
                model, device="cpu", local_files_only=not allow_download
            )
        # the library raises whatever its loaders and hub client raise
        except Exception as exc:
            where = "" if allow_download else " from this machine (downloads are not allowed)"
            raise EmbeddingError(f"model {model!r} cannot be loaded{where}: {exc}") from exc
        self._name = f"sentence-transformers:{model}"
        # one text now: a model that cannot embed is found at load, and its width is known
        self._width = self.embed(["warm-up"]).shape[1]

    @property
    def name(self) -> str:
        return self._name

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._width), np.float32)
        try:
            return unit_rows(self._model.encode(list(texts), convert_to_numpy=True))
        # a model's failure, whatever its type, is the backend's failure
        except Exception as exc:
            raise EmbeddingError(f"{self._name} cannot embed: {exc}") from exc
