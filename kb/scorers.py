"""Per-article scores of encoded questions: naive Bayes, centroid cosine and a linear classifier.

Each keeps its weights as a sparse features x articles matrix, so a query costs a sparse product.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy import sparse
from scipy.special import log_softmax, softmax
from sklearn import config_context
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import normalize
from sklearn.svm import LinearSVC

Matrix = npt.NDArray[np.float64]


def class_sums(
    vectors: sparse.csr_matrix, labels: npt.NDArray[np.intp], n_classes: int
) -> sparse.csr_matrix:
    """Row i: the sum of the vectors of the examples of article i."""
    onehot = sparse.csr_matrix(
        (np.ones(len(labels), dtype=np.float32), (labels, np.arange(len(labels)))),
        shape=(n_classes, len(labels)),
    )
    return sparse.csr_matrix(onehot @ vectors)


class BayesAndCentroids:
    """Two scores from the sums of each article's examples, in one sparse product.

    Multinomial naive Bayes, uniform prior (how many examples an admin wrote is no evidence):
    log P(q|c) = q . log(count + a) - |q| log(total_c + a F); the part over features the article
    never saw is a per-article constant times |q|, so only the article's own features are stored.
    Centroid cosine: q . the normalised mean of the article's examples.

    Both weigh exactly the article's own features, so their weights share one sparsity pattern:
    kept as one complex matrix (Bayes real, centroid imaginary), a question's product walks the
    pattern once, not twice (the walk is most of a query's and a calibration's cost). A real
    question times a complex weight is exact in each part.
    """

    def __init__(self, sums: sparse.csr_matrix, alpha: float = 0.03) -> None:
        n_features = sums.shape[1]
        sums = sparse.csr_matrix(sums, dtype=np.float64)
        sums.eliminate_zeros()
        bayes = np.log1p(sums.data / alpha).astype(np.float32)
        # normalising rescales each row's stored values in place: the same pattern, value for value
        centroid = normalize(sums).data.astype(np.float32)
        weights = sparse.csr_matrix(
            (bayes + 1j * centroid, sums.indices, sums.indptr), shape=sums.shape, dtype=np.complex64
        )
        self._weights = sparse.csr_matrix(weights.T)
        totals = np.asarray(sums.sum(axis=1)).ravel()
        self._bias = np.log(alpha) - np.log(totals + alpha * n_features)

    def scores(self, vectors: sparse.csr_matrix) -> tuple[Matrix, Matrix]:
        """Each question's Bayes log posterior and centroid cosine, per article."""
        product = np.asarray(
            (sparse.csr_matrix(vectors, dtype=np.complex64) @ self._weights).todense()
        )
        mass = np.asarray(vectors.sum(axis=1))
        loglik = product.real.astype(np.float64) + mass * self._bias
        return np.asarray(log_softmax(loglik, axis=1)), product.imag.astype(np.float64)

    @property
    def nbytes(self) -> int:
        return _sparse_nbytes(self._weights) + int(self._bias.nbytes)


class Linear:
    """One-vs-rest linear SVM: learns which words tell neighbouring articles apart.

    Weights below `prune` are dropped: they barely move a score and would make the matrix dense.
    """

    def __init__(
        self,
        vectors: sparse.csr_matrix,
        labels: npt.NDArray[np.intp],
        n_classes: int,
        c: float = 1.0,
        prune: float = 0.01,
        temperature: float = 5.0,
    ) -> None:
        fit = _one_vs_neighbours if n_classes > ONE_VS_REST_MAX_ARTICLES else _one_vs_rest
        self._weights, self._intercept = fit(vectors, labels, n_classes, c, prune)
        self._temperature = temperature

    def decision(self, vectors: sparse.csr_matrix) -> Matrix:
        return dense_product(vectors, self._weights) + self._intercept

    def posterior(self, decision: Matrix) -> Matrix:
        return np.asarray(softmax(decision * self._temperature, axis=1))

    @property
    def nbytes(self) -> int:
        return _sparse_nbytes(self._weights) + self._intercept.nbytes


# Each one-vs-rest separator is fitted on every example, so a knowledge base's fit costs articles
# x examples (464 s at 2,000 articles). Past this many, an article is told apart from its nearest
# articles' examples and a sample of the others: its cost grows with the articles alone (70 s),
# and forced on the dev sets (77-150 articles) it ranks and covers within a point or so.
ONE_VS_REST_MAX_ARTICLES = 300
NEAREST_ARTICLES = 30
SAMPLED_NEGATIVES = 200


def _one_vs_rest(
    vectors: sparse.csr_matrix, labels: npt.NDArray[np.intp], n_classes: int, c: float, prune: float
) -> tuple[sparse.csr_matrix, Matrix]:
    if n_classes == 1:
        # a single article has nothing to be told apart from: it gets a constant score
        coef = np.zeros((1, vectors.shape[1]), dtype=np.float32)
        intercept = np.zeros(1)
    else:
        # liblinear shuffles its coordinates with a seed drawn from numpy's global generator
        # unless given one: without it two fits of the same examples differ slightly
        model = LinearSVC(C=c, random_state=0)
        model.fit(vectors, labels)
        coef = np.asarray(model.coef_, dtype=np.float32)
        intercept = np.asarray(model.intercept_, dtype=np.float64)
    if n_classes == 2:
        # liblinear fits one separator for two classes: the second article is its negation
        coef = np.vstack([-coef, coef])
        intercept = np.concatenate([-intercept, intercept])
    coef[np.abs(coef) < prune] = 0.0
    return sparse.csr_matrix(coef.T), intercept


def _one_vs_neighbours(
    vectors: sparse.csr_matrix, labels: npt.NDArray[np.intp], n_classes: int, c: float, prune: float
) -> tuple[sparse.csr_matrix, Matrix]:
    """A separator per article against the examples of the articles whose centroids are nearest
    (the ones it could be taken for) and a fixed sample of all examples (for the rest's words)."""
    nearest = _nearest_articles(normalize(class_sums(vectors, labels, n_classes)))
    order, offsets = by_article(labels, n_classes)
    sample = np.random.default_rng(0).choice(
        len(labels), min(SAMPLED_NEGATIVES, len(labels)), replace=False
    )
    columns, values, intercept = [], [], np.zeros(n_classes)
    # thousands of small fits: the estimator's checks of its input and parameters are skipped
    with config_context(assume_finite=True, skip_parameter_validation=True):
        for article in range(n_classes):
            near = np.r_[article, nearest[article]]
            rows = np.unique(np.r_[order[spans(offsets[near], offsets[near + 1])], sample])
            model = LinearSVC(C=c, random_state=0).fit(vectors[rows], labels[rows] == article)
            weights = model.coef_[0]
            kept = np.flatnonzero(np.abs(weights) >= prune)
            columns.append(kept)
            values.append(weights[kept].astype(np.float32))
            intercept[article] = model.intercept_[0]
    coef = sparse.csr_matrix(
        (np.concatenate(values), np.concatenate(columns), np.cumsum([0, *map(len, columns)])),
        shape=(n_classes, vectors.shape[1]),
    )
    return sparse.csr_matrix(coef.T), intercept


def _nearest_articles(centroids: sparse.csr_matrix, block: int = 256) -> npt.NDArray[np.intp]:
    """Each article's NEAREST_ARTICLES others by centroid cosine, a block of articles at a time:
    all of the articles x articles similarities at once raise the fit's peak by half at 2,000."""
    n_articles = centroids.shape[0]
    count = min(NEAREST_ARTICLES, n_articles - 1)
    nearest = np.empty((n_articles, count), dtype=np.intp)
    for start in range(0, n_articles, block):
        similarity = np.asarray((centroids[start : start + block] @ centroids.T).todense())
        rows = np.arange(similarity.shape[0])
        similarity[rows, rows + start] = -np.inf
        found = np.argpartition(-similarity, count - 1, axis=1)
        nearest[start : start + len(rows)] = found[:, :count]
    return nearest


def by_article(
    labels: npt.NDArray[np.intp], n_articles: int
) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """The examples' order grouped by article, and where each article's run starts in it."""
    order = np.argsort(labels, kind="stable")
    return order, np.searchsorted(labels[order], np.arange(n_articles + 1))


def spans(starts: npt.NDArray[np.intp], ends: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """All positions start..end-1 of every span, in order, without a Python loop."""
    lengths = ends - starts
    offsets = np.cumsum(lengths) - lengths
    return np.asarray(np.arange(lengths.sum()) - np.repeat(offsets - starts, lengths))


def dense_product(vectors: sparse.csr_matrix, weights: sparse.csr_matrix) -> Matrix:
    return np.asarray((vectors @ weights).todense(), dtype=np.float64)


def _sparse_nbytes(matrix: sparse.csr_matrix) -> int:
    return int(matrix.data.nbytes + matrix.indices.nbytes + matrix.indptr.nbytes)


class Neighbours:
    """Embedding cosine of a question to the closest example of each article."""

    def __init__(self, vectors: npt.NDArray[np.float32], labels: npt.NDArray[np.intp]) -> None:
        order = np.argsort(labels, kind="stable")
        self._vectors = np.ascontiguousarray(vectors[order])
        # every article of an index has at least one example: each starts a run of rows
        self._starts = np.flatnonzero(np.r_[True, np.diff(labels[order]) != 0])

    def nearest(self, queries: npt.NDArray[np.float32]) -> Matrix:
        similarities = queries @ self._vectors.T
        return np.asarray(np.maximum.reduceat(similarities, self._starts, axis=1), dtype=np.float64)

    @property
    def nbytes(self) -> int:
        return int(self._vectors.nbytes + self._starts.nbytes)


class Probe:
    """Multinomial logistic regression on the embeddings: which directions of meaning tell the
    articles apart, where the nearest example only says which one is closest."""

    def __init__(
        self, vectors: npt.NDArray[np.float32], labels: npt.NDArray[np.intp], n_classes: int
    ) -> None:
        coef = np.zeros((n_classes, vectors.shape[1]), dtype=np.float32)
        intercept = np.zeros(n_classes)
        if n_classes > 1:
            # C=10: chosen on dev among 1, 10 and 100 (100 ranks a little better, over-promises)
            model = LogisticRegression(C=10.0, max_iter=300).fit(vectors, labels)
            # two classes come as one separator: the first class scores zero against it
            rows = model.classes_ if len(model.classes_) > 2 else model.classes_[1:]
            coef[rows] = model.coef_
            intercept[rows] = model.intercept_
        self._coef = np.ascontiguousarray(coef.T)
        self._intercept = intercept

    def posterior(self, queries: npt.NDArray[np.float32]) -> Matrix:
        return np.asarray(softmax(queries @ self._coef + self._intercept, axis=1))

    @property
    def nbytes(self) -> int:
        return int(self._coef.nbytes + self._intercept.nbytes)
