"""The threshold chart: precision, coverage and out-of-scope answers against the threshold."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI

import matplotlib.pyplot as plt


def plot_curve(curve: Sequence[dict[str, Any]], path: Path, title: str = "") -> None:
    thresholds = [point["threshold"] for point in curve]
    figure, axes = plt.subplots(figsize=(8, 5), dpi=110)
    for key, label, style in (
        ("precision", "precision (right / answered)", "-"),
        ("coverage", "coverage (answered / in-scope)", "-"),
        ("oos_false_answer_rate", "out-of-scope answered", "--"),
    ):
        values = [point[key] if point[key] is not None else float("nan") for point in curve]
        axes.plot(thresholds, values, style, label=label, linewidth=2)
    axes.set_xlabel("confidence threshold")
    axes.set_ylabel("share")
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1.02)
    axes.grid(True, alpha=0.3)
    axes.legend(loc="lower left")
    axes.set_title(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
