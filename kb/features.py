"""The vector space questions are compared in: TF-IDF of stems beside TF-IDF of char n-grams."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from kb.normalize import char_ngrams, stem, tokens, word_features

Analyzer = Callable[[str], list[str]]


@dataclass(frozen=True)
class Encoded:
    vectors: sparse.csr_matrix
    known_share: npt.NDArray[np.float64]


class _Tfidf:
    """Sublinear TF times smoothed IDF, per term; own code, as library input checks cost more
    than the arithmetic when one question is encoded at a time."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.vocabulary: dict[str, int] = {}
        self.idf: list[float] = []

    def fit(self, texts: Sequence[str]) -> None:
        document_frequency: Counter[str] = Counter()
        for text in texts:
            document_frequency.update(set(self.analyzer(text)))
        terms = sorted(document_frequency)
        self.vocabulary = {term: column for column, term in enumerate(terms)}
        n = len(texts)
        self.idf = [math.log((1 + n) / (1 + document_frequency[term])) + 1 for term in terms]

    def weights(self, text: str) -> tuple[list[int], list[float]]:
        """Column and L2-normalised weight of each known term of the text."""
        counts = Counter(term for term in self.analyzer(text) if term in self.vocabulary)
        columns = [self.vocabulary[term] for term in counts]
        values = [
            (1 + math.log(count)) * self.idf[col]
            for col, count in zip(columns, counts.values(), strict=True)
        ]
        norm = math.sqrt(sum(v * v for v in values)) or 1.0
        return columns, [v / norm for v in values]


class FeatureSpace:
    """Stems carry meaning, n-grams survive typos; each half is L2-normalised, then the whole."""

    def __init__(self) -> None:
        self._words = _Tfidf(word_features)
        self._chars = _Tfidf(char_ngrams)

    def fit(self, texts: Sequence[str]) -> Encoded:
        self._words.fit(texts)
        self._chars.fit(texts)
        return self.encode(texts)

    @property
    def size(self) -> int:
        return len(self._words.vocabulary) + len(self._chars.vocabulary)

    def encode(self, texts: Sequence[str]) -> Encoded:
        offset = len(self._words.vocabulary)
        indptr, indices, data = [0], [], []
        known = np.empty(len(texts))
        for row, text in enumerate(texts):
            word_columns, word_values = self._words.weights(text)
            char_columns, char_values = self._chars.weights(text)
            # both halves have unit length (or none): the whole is normalised by their count
            halves = (len(word_columns) > 0) + (len(char_columns) > 0)
            scale = 1 / math.sqrt(halves) if halves else 1.0
            indices += word_columns + [offset + col for col in char_columns]
            data += [v * scale for v in word_values + char_values]
            indptr.append(len(indices))
            known[row] = self._known_share(text)
        vectors = sparse.csr_matrix(
            (np.array(data, dtype=np.float32), np.array(indices, dtype=np.int32), np.array(indptr)),
            shape=(len(texts), self.size),
        )
        vectors.sort_indices()
        return Encoded(vectors, known)

    def _known_share(self, text: str) -> float:
        """Share of a question's words the KB has seen: out-of-scope questions have fewer."""
        words = tokens(text)
        if not words:
            return 0.0
        return sum(1 for word in words if stem(word) in self._words.vocabulary) / len(words)
