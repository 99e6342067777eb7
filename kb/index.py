"""Fitted scorers for one set of articles, and the features of each article a question may get."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.special import softmax

from kb.embedding.base import Vectors
from kb.features import FeatureSpace, Texts
from kb.scorers import (
    BayesAndCentroids,
    Linear,
    Matrix,
    Neighbours,
    Probe,
    by_article,
    class_sums,
    spans,
)

_CHUNK = 256
# The embeddings' probe is the best single scorer (dev top-1: clinc150_ru 81 %, banking77 10-shot
# 77 %, clinc150 10-shot 89 %, against 67-81 % for the others), so its vote outweighs the rest.
PROBE_VOTE = 6.0


@dataclass(frozen=True)
class Ranked:
    """For each question: the best `k` articles (by index) and the features of each."""

    articles: npt.NDArray[np.intp]
    scores: Matrix
    features: npt.NDArray[np.float64]


class Index:
    """Everything fitted on one set of examples; articles are numbered 0..n_articles-1."""

    def __init__(
        self,
        texts: Texts,
        labels: npt.NDArray[np.intp],
        n_articles: int,
        use_linear: bool,
        vectors: Vectors | None = None,
        temperature: float = 40.0,
        use_probe: bool = True,
    ) -> None:
        """`vectors`: the examples' embeddings, row for row, when an embedding backend is used."""
        self.n_articles = n_articles
        self._space = FeatureSpace()
        encoded = self._space.fit(texts)
        sums = class_sums(encoded.vectors, labels, n_articles)
        self._bayes_and_centroids = BayesAndCentroids(sums)
        self._linear = Linear(encoded.vectors, labels, n_articles) if use_linear else None
        self._neighbours = Neighbours(vectors, labels) if vectors is not None else None
        self._probe = (
            Probe(vectors, labels, n_articles) if vectors is not None and use_probe else None
        )
        self._temperature = temperature
        order, self._offsets = by_article(labels, n_articles)
        self._examples = sparse.csr_matrix(encoded.vectors[order])

    @property
    def nbytes(self) -> int:
        examples = self._examples
        total = examples.data.nbytes + examples.indices.nbytes + examples.indptr.nbytes
        total += self._bayes_and_centroids.nbytes
        total += self._neighbours.nbytes if self._neighbours is not None else 0
        total += self._probe.nbytes if self._probe is not None else 0
        return int(total + (self._linear.nbytes if self._linear is not None else 0))

    def rank(self, texts: Texts, k: int, vectors: Vectors | None = None) -> Ranked:
        """The best `k` articles per question; long batches go in chunks to bound dense scores.

        `vectors`: the questions' embeddings, required when the index was given the examples'.
        """
        if (vectors is None) != (self._neighbours is None):
            raise ValueError("questions need embeddings exactly when the examples have them")
        if len(texts) > _CHUNK:
            parts = [
                self.rank(
                    texts[i : i + _CHUNK], k, None if vectors is None else vectors[i : i + _CHUNK]
                )
                for i in range(0, len(texts), _CHUNK)
            ]
            return Ranked(
                np.vstack([p.articles for p in parts]),
                np.vstack([p.scores for p in parts]),
                np.vstack([p.features for p in parts]),
            )
        k = min(k, self.n_articles)
        encoded = self._space.encode(texts)
        log_bayes, cosine = self._bayes_and_centroids.scores(encoded.vectors)
        bayes = np.exp(log_bayes)
        decision: Matrix | None = None
        posteriors, votes = [bayes], [1.0]
        if self._linear is not None:
            decision = self._linear.decision(encoded.vectors)
            posteriors.append(self._linear.posterior(decision))
            votes.append(1.0)
        nearest: Matrix | None = None
        probe: Matrix | None = None
        if self._neighbours is not None and vectors is not None:
            nearest = self._neighbours.nearest(vectors)
            if self._probe is not None:
                probe = self._probe.posterior(vectors)
                posteriors.append(probe)
                votes.append(PROBE_VOTE)
            posteriors.append(np.asarray(softmax(nearest * self._temperature, axis=1)))
            votes.append(1.0)
        posterior = np.average(posteriors, axis=0, weights=votes)
        top = _top_k(posterior, k)
        rows = np.arange(len(texts))[:, None]
        # what the calibrator learns from: how sure each scorer is, and how new the words are
        columns = [
            posterior[rows, top],
            _margin(posterior, top),
            bayes[rows, top],
            cosine[rows, top],
            _margin(cosine, top),
            self._nearest_example(encoded.vectors, top),
            np.repeat(encoded.known_share[:, None], k, axis=1),
        ]
        if self._linear is not None and decision is not None:
            columns += [self._linear.posterior(decision)[rows, top], _margin(decision, top)]
        if nearest is not None:
            columns += [posteriors[-1][rows, top], nearest[rows, top], _margin(nearest, top)]
        if probe is not None:
            columns += [probe[rows, top], _margin(probe, top)]
        return Ranked(top, posterior[rows, top], np.stack(columns, axis=2))

    def _nearest_example(self, vectors: sparse.csr_matrix, top: npt.NDArray[np.intp]) -> Matrix:
        """Cosine to the closest single example of each candidate: articles can be multi-modal."""
        examples = self._examples
        nearest = np.zeros(top.shape)
        for row in range(top.shape[0]):
            query = vectors[row]
            if not query.nnz:
                continue
            first, last = self._offsets[top[row]], self._offsets[top[row] + 1]
            rows = spans(first, last)
            starts, ends = examples.indptr[rows], examples.indptr[rows + 1]
            positions = spans(starts, ends)
            columns = examples.indices[positions]
            found = np.minimum(np.searchsorted(query.indices, columns), len(query.indices) - 1)
            hits = query.indices[found] == columns
            products = np.where(hits, examples.data[positions] * query.data[found], 0.0)
            owner = np.repeat(np.arange(len(rows)), ends - starts)
            sims = np.bincount(owner, weights=products, minlength=len(rows))
            nearest[row] = np.maximum.reduceat(sims, np.cumsum(last - first) - (last - first))
        return nearest


def _top_k(scores: Matrix, k: int) -> npt.NDArray[np.intp]:
    """Indices of the k best columns per row, best first."""
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
    values = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-values, axis=1, kind="stable")
    return np.asarray(np.take_along_axis(part, order, axis=1), dtype=np.intp)


def _margin(scores: Matrix, candidates: npt.NDArray[np.intp]) -> Matrix:
    """Each candidate's score minus the best score of any other article."""
    if scores.shape[1] < 2:
        return np.ones(candidates.shape)
    best_two = -np.partition(-scores, 1, axis=1)[:, :2]
    first, second = best_two.max(axis=1), best_two.min(axis=1)
    values = np.take_along_axis(scores, candidates, axis=1)
    best = scores.argmax(axis=1)[:, None]
    other = np.where(candidates == best, second[:, None], first[:, None])
    return np.asarray(values - other)
