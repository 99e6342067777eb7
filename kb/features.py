"""The vector space questions are compared in: TF-IDF of stems beside TF-IDF of char n-grams.

A fit builds several spaces on subsets of the same examples (one per calibration fold, then the
whole): `Counted` analyses every example once for all of them, and each space then weighs the
subset's rows of those counts with array operations instead of analysing every text again.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse

from kb.normalize import char_ngrams, stem, tokens, word_features, word_ngrams

Analyzer = Callable[[str], Sequence[str]]


@dataclass(frozen=True)
class Encoded:
    vectors: sparse.csr_matrix
    known_share: npt.NDArray[np.float64]


@dataclass(frozen=True)
class _Terms:
    """How often each text has each term, in one column space sorted by term."""

    counts: sparse.csr_matrix
    terms: list[str]

    @classmethod
    def of(cls, texts: Sequence[str], analyzer: Analyzer) -> _Terms:
        column: dict[str, int] = {}
        indptr, indices, data = [0], [], []
        for text in texts:
            for term, count in Counter(analyzer(text)).items():
                indices.append(column.setdefault(term, len(column)))
                data.append(count)
            indptr.append(len(indices))
        counts = sparse.csr_matrix(
            (np.array(data, dtype=np.float64), np.array(indices, dtype=np.int32), np.array(indptr)),
            shape=(len(texts), len(column)),
        )
        return cls.sorted(counts, list(column))

    @classmethod
    def sorted(cls, counts: sparse.csr_matrix, terms: list[str]) -> _Terms:
        """The same counts with their columns in the order of their terms."""
        order = sorted(range(len(terms)), key=terms.__getitem__)
        renumbered = np.empty(len(terms), dtype=np.int32)
        renumbered[order] = np.arange(len(terms), dtype=np.int32)
        counts = sparse.csr_matrix(
            (counts.data, renumbered[counts.indices], counts.indptr), shape=counts.shape
        )
        counts.sort_indices()
        return cls(counts, [terms[column] for column in order])


class Counted:
    """Examples analysed once: their stem and n-gram counts, and how many words each has.

    Words recur across examples, so each distinct word is stemmed and cut into n-grams once and
    a text's counts are summed from its words' with array operations; the counts are the ones
    `word_features` and `char_ngrams` give text by text."""

    def __init__(self, texts: Sequence[str]) -> None:
        distinct: dict[str, int] = {}
        ids = [[distinct.setdefault(word, len(distinct)) for word in tokens(t)] for t in texts]
        lengths = np.fromiter(map(len, ids), dtype=np.intp, count=len(ids))
        word_ids = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.intp)
        text_of = np.repeat(np.arange(len(texts)), lengths)
        words = list(distinct)
        by_word = sparse.csr_matrix(
            (np.ones(len(word_ids)), (text_of, word_ids)), shape=(len(texts), len(words))
        )
        grams = _Terms.of(words, word_ngrams)
        chars = sparse.csr_matrix(by_word @ grams.counts)
        chars.sort_indices()
        self.chars = _Terms(chars, grams.terms)
        self.words = _stems_and_pairs(words, word_ids, text_of, lengths)
        # a stem is a word term without a space (pairs have one): its count is its words' count
        single = np.array([" " not in term for term in self.words.terms], dtype=bool)
        self.stems = sparse.csr_matrix(self.words.counts @ sparse.diags(single.astype(np.float64)))
        self.words_n = np.asarray(self.stems.sum(axis=1)).ravel()

    def rows(self, rows: npt.NDArray[np.intp]) -> CountedRows:
        return CountedRows(self, np.asarray(rows, dtype=np.intp))


def _stems_and_pairs(
    words: list[str],
    word_ids: npt.NDArray[np.intp],
    text_of: npt.NDArray[np.intp],
    lengths: npt.NDArray[np.intp],
) -> _Terms:
    """The `word_features` counts of every text, from its words in order (`word_ids`, the text
    of each in `text_of`, `lengths` words a text)."""
    stem_column: dict[str, int] = {}
    stem_of_word = np.array(
        [stem_column.setdefault(stem(word), len(stem_column)) for word in words], dtype=np.intp
    )
    stems = list(stem_column)
    in_text = stem_of_word[word_ids]
    # a pair is two adjacent words of one text: not the first word of the next text
    follows = np.ones(len(in_text), dtype=bool)
    follows[(np.cumsum(lengths) - lengths)[lengths > 0]] = False
    first, second = in_text[:-1][follows[1:]], in_text[1:][follows[1:]]
    codes, pair_column = np.unique(first * len(stems) + second, return_inverse=True)
    pairs = [f"{stems[code // len(stems)]} {stems[code % len(stems)]}" for code in codes.tolist()]
    rows = np.concatenate([text_of, text_of[1:][follows[1:]]])
    columns = np.concatenate([in_text, len(stems) + pair_column.ravel()])
    counts = sparse.csr_matrix(
        (np.ones(len(rows)), (rows, columns)), shape=(len(lengths), len(stems) + len(pairs))
    )
    return _Terms.sorted(counts, stems + pairs)


@dataclass(frozen=True)
class CountedRows:
    """Some rows of `Counted`, standing for their texts where a space is fitted or encodes."""

    counted: Counted
    rows: npt.NDArray[np.intp]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, part: slice) -> CountedRows:
        return CountedRows(self.counted, self.rows[part])


Texts = Sequence[str] | CountedRows


class _Tfidf:
    """Sublinear TF times smoothed IDF, per term; own code, as library input checks cost more
    than the arithmetic when one question is encoded at a time."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        self.vocabulary: dict[str, int] = {}
        self.idf: list[float] = []
        self._idf = np.empty(0)
        self._column_of = np.empty(0, dtype=np.int64)  # the counts' column -> this vocabulary's

    def fit(self, terms: _Terms, rows: npt.NDArray[np.intp]) -> None:
        """The vocabulary and IDF of the texts of `rows`, from their counts."""
        document_frequency = np.bincount(terms.counts[rows].indices, minlength=len(terms.terms))
        present = np.flatnonzero(document_frequency)
        self.vocabulary = {terms.terms[term]: column for column, term in enumerate(present)}
        n = len(rows)
        self._idf = np.log((1 + n) / (1 + document_frequency[present])) + 1
        self.idf = self._idf.tolist()  # a question is weighed term by term
        self._column_of = np.full(len(terms.terms), -1, dtype=np.int64)
        self._column_of[present] = np.arange(len(present))

    def knows(self, columns: npt.NDArray[np.int32]) -> npt.NDArray[np.bool_]:
        """Which of the counts' columns (of the counts this was fitted on) are in the vocabulary."""
        return np.asarray(self._column_of[columns] >= 0)

    def weigh_rows(self, terms: _Terms, rows: npt.NDArray[np.intp]) -> sparse.csr_matrix:
        """The L2-normalised weights of the texts of `rows` (of the counts this was fitted on)."""
        counts = terms.counts[rows]
        columns = self._column_of[counts.indices]
        known = columns >= 0
        values = (1 + np.log(counts.data[known])) * self._idf[columns[known]]
        row_of = np.repeat(np.arange(len(rows)), np.diff(counts.indptr))[known]
        weights = sparse.csr_matrix(
            (values, (row_of, columns[known])), shape=(len(rows), len(self.vocabulary))
        )
        norms = np.sqrt(np.asarray(weights.multiply(weights).sum(axis=1)).ravel())
        return sparse.csr_matrix(sparse.diags(1 / np.where(norms > 0, norms, 1.0)) @ weights)

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

    def fit(self, texts: Texts) -> Encoded:
        if not isinstance(texts, CountedRows):
            texts = Counted(texts).rows(np.arange(len(texts)))
        self._words.fit(texts.counted.words, texts.rows)
        self._chars.fit(texts.counted.chars, texts.rows)
        return self.encode(texts)

    @property
    def size(self) -> int:
        return len(self._words.vocabulary) + len(self._chars.vocabulary)

    def encode(self, texts: Texts) -> Encoded:
        if isinstance(texts, CountedRows):
            return self._encode_counted(texts.counted, texts.rows)
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

    def _encode_counted(self, counted: Counted, rows: npt.NDArray[np.intp]) -> Encoded:
        words = self._words.weigh_rows(counted.words, rows)
        chars = self._chars.weigh_rows(counted.chars, rows)
        # both halves have unit length (or none): the whole is normalised by their count
        halves = (np.diff(words.indptr) > 0).astype(np.float64) + (np.diff(chars.indptr) > 0)
        scale = sparse.diags(1 / np.sqrt(np.where(halves > 0, halves, 1.0)))
        vectors = sparse.csr_matrix(scale @ sparse.hstack([words, chars], format="csr"))
        vectors = sparse.csr_matrix(vectors, dtype=np.float32)
        vectors.sort_indices()
        stems = counted.stems[rows]
        seen = self._words.knows(stems.indices)
        known_words = np.bincount(
            np.repeat(np.arange(len(rows)), np.diff(stems.indptr))[seen],
            weights=stems.data[seen],
            minlength=len(rows),
        )
        words_n = counted.words_n[rows]
        known = np.divide(known_words, words_n, out=np.zeros(len(rows)), where=words_n > 0)
        return Encoded(vectors, known)

    def _known_share(self, text: str) -> float:
        """Share of a question's words the KB has seen: out-of-scope questions have fewer."""
        words = tokens(text)
        if not words:
            return 0.0
        return sum(1 for word in words if stem(word) in self._words.vocabulary) / len(words)
