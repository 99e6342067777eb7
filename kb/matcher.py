"""Ranks a knowledge base's articles for a question, with a calibrated confidence for each.

The confidence is fitted on the knowledge base itself: its example questions are predicted
out-of-fold (each by a model that never saw it), and a few whole articles are left out of each
fold so that their questions stand for the ones no article answers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from kb.articles import Article
from kb.calibration import Calibrator
from kb.datasets import LabelledQuestion
from kb.embedding.base import Embedder, Vectors
from kb.features import Counted
from kb.index import Index
from kb.scorers import by_article


class MatcherError(ValueError):
    """A knowledge base the matcher cannot be fitted on."""


@dataclass(frozen=True)
class MatcherConfig:
    folds: int = 5
    # share of articles left out of each fold, their questions standing for out-of-scope ones
    held_out_articles: float = 0.1
    # their weight against in-scope questions: how much of the traffic we expect no article answers
    held_out_weight: float = 0.3
    # the share of questions no article answers, where the brand knows it (from its evidence):
    # the left-out articles' questions then weigh that share of the evidence, never less than
    # held_out_weight gives them (evidence judged mostly on answered questions undercounts it)
    out_of_scope_share: float | None = None
    linear_max_articles: int = 2000
    # the embeddings' logistic regression costs articles x examples x dimensions an iteration
    probe_max_articles: int = 300
    # out-of-fold questions scored for calibration at most: enough evidence, bounded fit time
    calibration_rows: int = 20_000
    # and question x article scores at most, as each question is scored against every article:
    # a large knowledge base is calibrated on fewer questions (10,000 at 10,000 articles)
    calibration_scores: int = 100_000_000
    wilson_z: float = 0.25
    # The bound tightens with the gap between a fold's index and the one that answers, in
    # 1/examples of a typical article (1/1 - 1/2 at two an article, 1/8 - 1/10 at ten): the
    # evidence then comes from weaker indexes, whose scores mean something else, and at few
    # examples it overstates how sure the full index may be. Chosen on clinc150_ru's dev (two
    # examples an article, lexical, six draws, several splits a draw): at 3.0 no band broke its
    # promise on any draw; at 2.0 two draws broke one; at 4.5 no answer reached 0.9.
    fold_gap_z: float = 3.0
    # sharpness of the embedding neighbours' vote: cosines differ by hundredths between articles
    embedding_temperature: float = 40.0
    seed: int = 0
    # A few hundred examples' evidence gives different confidences with every fold split (at two
    # examples an article, coverage at 0.9 on clinc150_ru's dev ran from 38 % to 61 % over six
    # splits): a knowledge base with fewer examples than this is calibrated on several splits, a
    # calibration map each, and a question gets their median confidence.
    steady_examples: int = 1500
    max_splits: int = 5


@dataclass(frozen=True)
class Match:
    article_id: str
    confidence: float
    score: float


@dataclass(frozen=True)
class _Evidence:
    features: npt.NDArray[np.float64]
    right: npt.NDArray[np.bool_]
    weights: npt.NDArray[np.float64]
    # which fold split it comes from: a calibration map is fitted on each split's evidence
    split: int = 0


class Matcher:
    def __init__(
        self,
        ids: Sequence[str],
        index: Index,
        calibrator: Calibrator,
        embedder: Embedder | None = None,
        example_vectors: Mapping[str, Vectors] | None = None,
    ) -> None:
        self._ids = list(ids)
        self._index = index
        self._calibrator = calibrator
        self._embedder = embedder
        self.example_vectors: Mapping[str, Vectors] = example_vectors or {}

    @classmethod
    def fit(
        cls,
        articles: Sequence[Article],
        calibration: Sequence[LabelledQuestion] = (),
        config: MatcherConfig | None = None,
        embedder: Embedder | None = None,
        known_vectors: Mapping[str, Vectors] | None = None,
    ) -> Matcher:
        """Fit on the enabled articles' examples; `calibration` adds labelled questions, oos too.

        With an `embedder`, the examples' embeddings are taken from `known_vectors` (text ->
        vector, made by the same model) where there, and computed for the rest; all of them are
        then on the matcher's `example_vectors`, for the caller to keep.
        """
        config = config or MatcherConfig()
        # by id: the same articles give the same folds, so the same confidences, in any order
        enabled = sorted((article for article in articles if article.enabled), key=lambda a: a.id)
        if not enabled:
            raise MatcherError("no enabled article to match against")
        ids = [article.id for article in enabled]
        if len(set(ids)) != len(ids):
            raise MatcherError("article ids must be unique")
        texts = [text for article in enabled for text in article.examples if text.strip()]
        labels = np.array(
            [n for n, article in enumerate(enabled) for text in article.examples if text.strip()],
            dtype=np.intp,
        )
        # the linear scorer's fit grows with the articles (kb.scorers): the largest rank without it
        use_linear = 2 <= len(enabled) <= config.linear_max_articles
        by_text = _embedded(embedder, texts, known_vectors or {})
        vectors = np.vstack([by_text[text] for text in texts]) if embedder is not None else None
        temperature = config.embedding_temperature
        use_probe = len(enabled) <= config.probe_max_articles
        counted = Counted(texts)
        every = counted.rows(np.arange(len(texts)))
        index = Index(every, labels, len(enabled), use_linear, vectors, temperature, use_probe)
        asked: _Evidence | None = None
        if calibration:
            asked_vectors = embedder.embed([q.text for q in calibration]) if embedder else None
            asked = _scored(index, ids, calibration, asked_vectors)
        evidence = []
        for split in range(_splits_n(len(texts), config)):
            evidence.append(_out_of_fold(ids, split, counted, labels, use_linear, config, vectors))
            evidence += [replace(asked, split=split)] if asked is not None else []
        calibrator = Calibrator(_bound_strength(enabled, config)).fit(
            np.vstack([e.features for e in evidence]),
            np.concatenate([e.right for e in evidence]),
            np.concatenate([e.weights for e in evidence]),
            np.concatenate([np.full(len(e.right), e.split) for e in evidence]),
        )
        return cls(ids, index, calibrator, embedder, by_text)

    @property
    def article_ids(self) -> list[str]:
        return list(self._ids)

    @property
    def nbytes(self) -> int:
        """Memory the index's arrays take (vocabularies not counted)."""
        return self._index.nbytes

    def match(self, question: str, k: int = 3) -> list[Match]:
        """The best `k` articles, best first; the first one's confidence is the calibrated one."""
        return self.match_many([question], k)[0]

    @property
    def embedder_name(self) -> str | None:
        return self._embedder.name if self._embedder is not None else None

    def match_many(self, questions: Sequence[str], k: int = 3) -> list[list[Match]]:
        vectors = self._embedder.embed(questions) if self._embedder is not None else None
        ranked = self._index.rank(questions, k, vectors)
        n, width, dims = ranked.features.shape
        confidence = self._calibrator.confidence(ranked.features.reshape(n * width, dims))
        confidence = confidence.reshape(n, width)
        return [
            [
                Match(self._ids[article], float(conf), float(score))
                for article, conf, score in zip(
                    ranked.articles[row], confidence[row], ranked.scores[row], strict=True
                )
            ]
            for row in range(n)
        ]


def _bound_strength(articles: Sequence[Article], config: MatcherConfig) -> float:
    """The Wilson z for this knowledge base: stricter the fewer examples a typical article has."""
    typical = max(float(np.median([sum(1 for t in a.examples if t.strip()) for a in articles])), 1)
    folds_n = _folds_n(typical, config)
    in_fold = max(typical * (folds_n - 1) / folds_n, 1.0)
    return config.wilson_z + config.fold_gap_z * (1 / in_fold - 1 / typical)


def _splits_n(examples: int, config: MatcherConfig) -> int:
    return int(min(config.max_splits, max(1, round(config.steady_examples / max(examples, 1)))))


def _folds_n(typical_examples: float, config: MatcherConfig) -> int:
    return int(min(config.folds, max(2, typical_examples)))


def _out_of_fold(
    ids: Sequence[str],
    split: int,
    counted: Counted,
    labels: npt.NDArray[np.intp],
    use_linear: bool,
    config: MatcherConfig,
    vectors: Vectors | None,
) -> _Evidence:
    """Each example scored by an index fitted without it (and without a few whole articles),
    the folds and left-out articles drawn for the `split`-th split."""
    n_articles, key = len(ids), f"{config.seed}/{split}"
    rng = np.random.default_rng([config.seed, split])
    counts = np.bincount(labels, minlength=n_articles)
    folds_n = _folds_n(float(np.median(counts)), config)
    folds = _stable_folds(ids, labels, folds_n, key)
    held_n = max(1, round(config.held_out_articles * n_articles)) if n_articles > 1 else 0
    order = np.argsort([_draw(key, "held out", article_id) for article_id in ids])
    rows_n = min(config.calibration_rows, config.calibration_scores // n_articles)
    features, right, in_scope = [], [], []
    for fold in range(folds_n):
        held_out = order[(np.arange(held_n) + fold * held_n) % n_articles]
        train = (folds != fold) & ~np.isin(labels, held_out)
        test = np.flatnonzero(folds == fold)
        if len(test) > rows_n // folds_n:
            test = np.sort(rng.choice(test, rows_n // folds_n, replace=False))
        present = np.unique(labels[train])
        if not len(present) or not len(test):
            continue
        local = np.searchsorted(present, labels[train])
        train_rows = np.flatnonzero(train)
        train_vectors = vectors[train_rows] if vectors is not None else None
        temperature = config.embedding_temperature
        use_probe = n_articles <= config.probe_max_articles
        examples = counted.rows(train_rows)
        index = Index(
            examples, local, len(present), use_linear, train_vectors, temperature, use_probe
        )
        # an example is embedded as any question is, so its own vector stands for the question's
        test_vectors = vectors[test] if vectors is not None else None
        ranked = index.rank(counted.rows(test), 1, test_vectors)
        predicted = present[ranked.articles[:, 0]]
        features.append(ranked.features[:, 0, :])
        right.append(predicted == labels[test])
        in_scope.append(np.isin(labels[test], present))
    if not features:
        raise MatcherError("too few examples to estimate confidence")
    known = np.concatenate(in_scope)
    weights = np.where(known, 1.0, _out_of_scope_weight(known, config))
    return _Evidence(np.vstack(features), np.concatenate(right), weights, split)


def _draw(*keys: str) -> int:
    """A number drawn from the keys alone: an article's draws do not move when others change."""
    digest = hashlib.blake2b("\x1f".join(keys).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _stable_folds(
    ids: Sequence[str], labels: npt.NDArray[np.intp], folds_n: int, key: str
) -> npt.NDArray[np.intp]:
    """Each article's examples dealt round the folds from a start and an order drawn from its
    id: adding, removing or editing one article leaves every other article's folds as they were,
    so its calibration evidence, and the confidences it gives, do not jump with unrelated edits."""
    folds = np.empty(len(labels), dtype=np.intp)
    order, starts = by_article(labels, len(ids))
    for article, article_id in enumerate(ids):
        rows = order[starts[article] : starts[article + 1]].copy()
        own = np.random.default_rng(_draw(key, "folds", article_id))
        own.shuffle(rows)
        folds[rows] = (np.arange(len(rows)) + own.integers(folds_n)) % folds_n
    return folds


def _out_of_scope_weight(known: npt.NDArray[np.bool_], config: MatcherConfig) -> float:
    """The weight of a left-out article's question, so that they make up the expected share."""
    share, n_out = config.out_of_scope_share, int((~known).sum())
    if share is None or not n_out:
        return config.held_out_weight
    share = min(max(share, 0.0), 0.95)
    return max(config.held_out_weight, share / (1 - share) * int(known.sum()) / n_out)


def _embedded(
    embedder: Embedder | None, texts: Sequence[str], known: Mapping[str, Vectors]
) -> dict[str, Vectors]:
    """Every text's vector: the known ones reused, the others embedded in one batch."""
    if embedder is None:
        return {}
    missing = sorted({text for text in texts if text not in known})
    fresh = list(embedder.embed(missing)) if missing else []
    found = {text: known[text] for text in texts if text in known}
    return found | dict(zip(missing, fresh, strict=True))


def _scored(
    index: Index,
    ids: Sequence[str],
    questions: Sequence[LabelledQuestion],
    vectors: Vectors | None,
) -> _Evidence:
    """Labelled questions scored by the full index: real out-of-scope ones are the best negatives"""
    ranked = index.rank([q.text for q in questions], 1, vectors)
    predicted = [ids[article] for article in ranked.articles[:, 0]]
    right = np.array(
        [q.in_scope and p == q.label for q, p in zip(questions, predicted, strict=True)]
    )
    return _Evidence(ranked.features[:, 0, :], right, np.ones(len(questions)))
