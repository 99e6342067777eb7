"""How precise the matcher's answers are and how many questions it takes, at every threshold."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kb.datasets import articles_from_questions, read_labelled_csv
from kb.embedding.base import Embedder, Vectors
from kb.matcher import Match, Matcher, MatcherConfig

THRESHOLDS = tuple(round(step / 100, 2) for step in range(101))
PRECISION_TARGETS = ("0.90", "0.95", "0.98")
BAND_WIDTH = 0.05
# The promise: answers given at confidence c are right at least c minus this, wherever c >= 0.8.
HONEST_SLACK = 0.03
HONEST_FROM = 0.8
# the product's usual threshold: where `--draws` shows how much the figures hang on the draw
DRAWS_THRESHOLD = 0.9
Bools = npt.NDArray[np.bool_]
Floats = npt.NDArray[np.float64]


def answered_stats(
    threshold: float, confidence: Floats, right: Bools, in_scope: Bools
) -> dict[str, float | None]:
    """Coverage of in-scope questions, precision of answers, share of out-of-scope ones answered."""
    answered = confidence >= threshold
    n_answered = int(answered.sum())
    n_in, n_out = int(in_scope.sum()), int((~in_scope).sum())
    return {
        "threshold": threshold,
        "coverage": float((answered & in_scope).sum() / n_in) if n_in else None,
        "precision": float((answered & right).sum() / n_answered) if n_answered else None,
        "oos_false_answer_rate": float((answered & ~in_scope).sum() / n_out) if n_out else None,
    }


def coverage_at_precision(
    target: float, confidence: Floats, right: Bools, in_scope: Bools
) -> float:
    """The largest coverage over all thresholds whose answers are at least `target` precise."""
    best = 0.0
    for threshold in np.unique(confidence):
        stats = answered_stats(float(threshold), confidence, right, in_scope)
        precision, coverage = stats["precision"], stats["coverage"]
        if precision is not None and coverage is not None and precision >= target:
            best = max(best, coverage)
    return best


def expected_calibration_error(confidence: Floats, right: Bools, bins: int = 10) -> float:
    """Mean gap between confidence and the share right, over equal-width confidence bins."""
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.sum() * abs(
                float(right[inside].mean()) - float(confidence[inside].mean())
            )
    return error / len(confidence)


def reliability(
    confidence: Floats, right: Bools, width: float = BAND_WIDTH
) -> list[dict[str, float | int | bool | None]]:
    """Per confidence band [c, c + width): how many answers fell in it and the share of them right.

    `honest` says whether the band keeps the promise (share right >= c - HONEST_SLACK); it is
    None below HONEST_FROM, where no promise is made, and for an empty band.
    """
    steps = round(1 / width)
    which = np.minimum((confidence * steps + 1e-9).astype(int), steps - 1)
    bands: list[dict[str, float | int | bool | None]] = []
    for step in range(steps):
        low = round(step * width, 4)
        inside = which == step
        answers = int(inside.sum())
        share = float(right[inside].mean()) if answers else None
        honest = share >= low - HONEST_SLACK if share is not None else None
        bands.append(
            {
                "low": low,
                "high": round(low + width, 4),
                "answers": answers,
                "right_share": share,
                "mean_confidence": float(confidence[inside].mean()) if answers else None,
                # no promise is made below HONEST_FROM
                "honest": honest if low >= HONEST_FROM - 1e-9 else None,
            }
        )
    return bands


def evaluate(
    matcher: Matcher, questions: Sequence[str], labels: Sequence[str], in_scope: Bools
) -> dict[str, Any]:
    """Ask every question one at a time, as the bot would, and measure."""
    best, latency_ms = [], np.empty(len(questions))
    for row, question in enumerate(questions):
        started = time.perf_counter()
        best.append(matcher.match(question, k=1)[0])
        latency_ms[row] = (time.perf_counter() - started) * 1000
    confidence, right = _judged(best, labels, in_scope)
    return {
        "top1_accuracy": float(right[in_scope].mean()) if in_scope.any() else None,
        "coverage_at_precision": {
            key: coverage_at_precision(float(key), confidence, right, in_scope)
            for key in PRECISION_TARGETS
        },
        "ece": expected_calibration_error(confidence, right),
        "reliability": reliability(confidence, right),
        "query_ms_p50": float(np.percentile(latency_ms, 50)),
        "query_ms_p99": float(np.percentile(latency_ms, 99)),
        "curve": [answered_stats(t, confidence, right, in_scope) for t in THRESHOLDS],
    }


def run_eval(
    kb_csv: str | Path,
    test_csv: str | Path,
    calibrate_csv: str | Path | None = None,
    json_out: str | Path | None = None,
    plot_out: str | Path | None = None,
    embedder: Embedder | None = None,
    oos_share: float | None = None,
    draws: int = 1,
) -> dict[str, Any]:
    """Fit on the KB file, optionally calibrate on another labelled file, score the test file.

    `draws` > 1 fits the same files again on other fold draws (`MatcherConfig.seed` 1, 2, ...)
    and adds each draw's figures at DRAWS_THRESHOLD under "draws", the product's (seed 0) first.
    """
    articles = articles_from_questions(read_labelled_csv(kb_csv))
    calibration = read_labelled_csv(calibrate_csv) if calibrate_csv else []
    config = MatcherConfig(out_of_scope_share=oos_share)
    if embedder is not None and draws > 1:
        embedder = _Remembered(embedder)
    matcher = Matcher.fit(articles, calibration, config, embedder=embedder)
    test = read_labelled_csv(test_csv)
    in_scope = np.array([question.in_scope for question in test])
    texts, labels = [q.text for q in test], [q.label for q in test]
    result = evaluate(matcher, texts, labels, in_scope)
    result["embeddings"] = matcher.embedder_name
    if draws > 1:
        result["draws"] = [draw_figures(matcher, 0, texts, labels, in_scope)]
        for seed in range(1, draws):
            again = Matcher.fit(
                articles, calibration, replace(config, seed=seed), embedder=embedder
            )
            result["draws"].append(draw_figures(again, seed, texts, labels, in_scope))
    if json_out:
        Path(json_out).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    if plot_out:
        from kb.plot import plot_curve  # matplotlib loads slowly: only when a chart is asked for

        plot_curve(result["curve"], Path(plot_out), title=f"{_short(kb_csv)} → {_short(test_csv)}")
    return result


def draw_figures(
    matcher: Matcher, seed: int, questions: Sequence[str], labels: Sequence[str], in_scope: Bools
) -> dict[str, Any]:
    """One fold draw's coverage, precision and out-of-scope answers at DRAWS_THRESHOLD, and
    whether every band kept the promise: how much of a figure is the draw's luck."""
    best = [ranked[0] for ranked in matcher.match_many(questions, k=1)]
    confidence, right = _judged(best, labels, in_scope)
    kept = all(band["honest"] is not False for band in reliability(confidence, right))
    return {
        "seed": seed,
        **answered_stats(DRAWS_THRESHOLD, confidence, right, in_scope),
        "bands_kept": kept,
    }


def format_draws(draws: Sequence[dict[str, Any]]) -> list[str]:
    """Each fold draw's figures at DRAWS_THRESHOLD, then the coverage's mean and range."""
    coverage = [d["coverage"] for d in draws if d["coverage"] is not None]
    lines = [
        f"fold draws: the same files fitted on {len(draws)} draws of the calibration's folds,"
        f" at threshold {DRAWS_THRESHOLD:.2f} (seed 0 is the product's)",
        f"{'seed':>5}  {'coverage':>8}  {'precision':>9}  {'oos answered':>12}  {'bands kept':>10}",
    ]
    for draw in draws:
        kept = "yes" if draw["bands_kept"] else "NO"
        lines.append(
            f"{draw['seed']:>5}  {_pct(draw['coverage']):>8}  {_pct(draw['precision']):>9}"
            f"  {_pct(draw['oos_false_answer_rate']):>12}  {kept:>10}"
        )
    if coverage:
        lines.append(
            f"coverage: mean {_pct(float(np.mean(coverage)))},"
            f" from {_pct(min(coverage))} to {_pct(max(coverage))}"
        )
    return lines


def _judged(best: Sequence[Match], labels: Sequence[str], in_scope: Bools) -> tuple[Floats, Bools]:
    """Each question's confidence, and whether its best article is its label (never when oos)."""
    confidence = np.array([match.confidence for match in best], dtype=np.float64)
    right = np.array(
        [
            bool(known) and match.article_id == label
            for match, label, known in zip(best, labels, in_scope, strict=True)
        ],
        dtype=bool,
    )
    return confidence, right


class _Remembered:
    """An embedder that embeds each text once: every draw asks the same examples and questions."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._seen: dict[str, Vectors] = {}

    @property
    def name(self) -> str:
        return self._embedder.name

    def embed(self, texts: Sequence[str]) -> Vectors:
        missing = list(dict.fromkeys(text for text in texts if text not in self._seen))
        if missing:
            self._seen.update(zip(missing, self._embedder.embed(missing), strict=True))
        if not texts:
            return self._embedder.embed([])
        return np.vstack([self._seen[text] for text in texts])


def format_table(result: dict[str, Any], every: float = 0.05) -> str:
    """The summary figures, then the curve every `every` of threshold, as fixed-width text."""
    lines = [
        f"embeddings                  {result.get('embeddings') or 'none (lexical only)'}",
        f"top-1 accuracy (in scope)   {_pct(result['top1_accuracy'])}",
        "coverage at precision       "
        + "  ".join(
            f"{key}: {_pct(value)}" for key, value in result["coverage_at_precision"].items()
        ),
        f"expected calibration error  {result['ece']:.4f}",
        f"query latency               p50 {result['query_ms_p50']:.2f} ms,"
        f" p99 {result['query_ms_p99']:.2f} ms",
        "",
        f"{'threshold':>9}  {'coverage':>8}  {'precision':>9}  {'oos answered':>12}",
    ]
    step = round(every * 100)
    for point in result["curve"][::step]:
        lines.append(
            f"{point['threshold']:>9.2f}  {_pct(point['coverage']):>8}"
            f"  {_pct(point['precision']):>9}"
            f"  {_pct(point['oos_false_answer_rate']):>12}"
        )
    draws = ["", *format_draws(result["draws"])] if "draws" in result else []
    return "\n".join([*lines, "", *format_reliability(result["reliability"]), *draws])


def format_reliability(bands: Sequence[dict[str, Any]]) -> list[str]:
    """The bands that got answers: are answers given at confidence c right c of the time?"""
    lines = [
        f"reliability: answers given at confidence c are right at least c - {HONEST_SLACK:.2f}"
        f" (checked from {HONEST_FROM:.2f})",
        f"{'confidence':>11}  {'answers':>7}  {'right':>6}  {'kept':>4}",
    ]
    for band in bands:
        if not band["answers"]:
            continue
        kept = {True: "yes", False: "NO", None: ""}[band["honest"]]
        lines.append(
            f"{band['low']:.2f}-{band['high']:.2f}  {band['answers']:>7}"
            f"  {_pct(band['right_share']):>6}  {kept:>4}"
        )
    return lines


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _short(path: str | Path) -> str:
    """Folder and file name: enough to tell data sets apart on the chart."""
    return f"{Path(path).parent.name}/{Path(path).name}"
