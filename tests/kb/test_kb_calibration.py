"""Calibration on a synthetic KB: articles whose topics overlap, so some questions are ambiguous."""

import numpy as np
import pytest

from kb.articles import Article
from kb.calibration import Calibrator, wilson_lower
from kb.matcher import Matcher

N_ARTICLES = 40
TOLERANCE = 0.05


def _world(seed: int):
    rng = np.random.default_rng(seed)
    vocabulary = [f"w{n}" for n in range(120)]
    filler = [f"f{n}" for n in range(30)]
    topics = [list(rng.choice(vocabulary, size=5, replace=False)) for _ in range(N_ARTICLES)]

    def question(topic):
        words = list(rng.choice(topic, size=int(rng.integers(1, 4)), replace=False))
        words += list(rng.choice(filler, size=3)) + list(rng.choice(vocabulary, size=1))
        rng.shuffle(words)
        return " ".join(words)

    articles = [
        Article(f"a{n}", examples=tuple(question(topic) for _ in range(8)))
        for n, topic in enumerate(topics)
    ]
    targets = rng.integers(0, N_ARTICLES, size=1500)
    held_out = [(question(topics[t]), f"a{t}") for t in targets]
    return articles, held_out


@pytest.fixture(scope="module")
def outcomes():
    articles, held_out = _world(seed=7)
    matcher = Matcher.fit(articles)
    best = [matcher.match(text, k=1)[0] for text, _ in held_out]
    confidence = np.array([m.confidence for m in best])
    right = np.array([m.article_id == label for m, (_, label) in zip(best, held_out, strict=True)])
    return confidence, right


def test_the_synthetic_kb_is_neither_trivial_nor_hopeless(outcomes):
    _, right = outcomes
    assert 0.5 < right.mean() < 0.95


@pytest.mark.parametrize("threshold", [0.5, 0.6, 0.7, 0.8, 0.9])
def test_answers_at_confidence_c_are_right_at_least_share_c_on_held_out_questions(
    outcomes, threshold
):
    confidence, right = outcomes
    answered = confidence >= threshold
    assert answered.sum() >= 30, "too few answers to judge"
    assert right[answered].mean() >= threshold - TOLERANCE


def test_confidence_rises_with_the_share_right(outcomes):
    confidence, right = outcomes
    low, high = right[confidence < 0.5].mean(), right[confidence >= 0.8].mean()
    assert low < high


def test_wilson_bound_is_below_the_share_and_tightens_with_more_evidence():
    small = wilson_lower(np.array([5.0]), np.array([5.0]), z=1.0)[0]
    large = wilson_lower(np.array([500.0]), np.array([500.0]), z=1.0)[0]
    assert small < large < 1.0


def test_calibrator_with_one_outcome_only_gives_the_bounded_share():
    features = np.random.default_rng(0).random((20, 3))
    calibrator = Calibrator(z=1.0).fit(features, np.ones(20, dtype=bool), np.ones(20))
    confidence = calibrator.confidence(features[:2])
    assert np.allclose(confidence, wilson_lower(np.array([20.0]), np.array([20.0]), z=1.0)[0])
