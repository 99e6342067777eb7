"""Turning a candidate's features into a conservative probability that it is the right article."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import minimize
from scipy.special import expit, log_expit
from sklearn.isotonic import IsotonicRegression
from sklearn.preprocessing import StandardScaler

Array = npt.NDArray[np.float64]


def wilson_lower(right: Array, total: Array, z: float) -> Array:
    """One-sided Wilson lower bound of a share: a block of 5 right answers is not proof of 100 %."""
    share = np.divide(right, total, out=np.zeros_like(right), where=total > 0)
    z2 = z * z
    centre = share + z2 / (2 * total)
    spread = z * np.sqrt(share * (1 - share) / total + z2 / (4 * total * total))
    return np.asarray(np.clip((centre - spread) / (1 + z2 / total), 0.0, 1.0))


def monotone_logistic(
    features: Array, right: npt.NDArray[np.bool_], weights: Array, c: float = 1.0
) -> tuple[Array, float]:
    """Weighted L2 logistic regression whose feature weights are all >= 0.

    Every feature is evidence for the candidate (a higher score, margin or similarity), so more of
    it must never lower the confidence. Unconstrained, correlated features get weights of both
    signs that cancel inside the evidence seen, and a question outside it (a new article's own
    example: similarity 1, a margin never seen) is scored far below what it deserves.
    """
    outcome = right.astype(float)
    dims = features.shape[1]

    def loss(params: Array) -> tuple[float, Array]:
        coef, intercept = params[:dims], params[dims]
        z = features @ coef + intercept
        value = -c * float(weights @ (outcome * log_expit(z) + (1 - outcome) * log_expit(-z)))
        residual = c * weights * (expit(z) - outcome)
        gradient = np.r_[features.T @ residual + coef, residual.sum()]
        return value + 0.5 * float(coef @ coef), gradient

    bounds = [(0.0, None)] * dims + [(None, None)]
    found = minimize(loss, np.zeros(dims + 1), jac=True, method="L-BFGS-B", bounds=bounds)
    return np.asarray(found.x[:dims]), float(found.x[dims])


class Calibrator:
    """Logistic regression combines the features into one score (ranking questions by how sure),
    isotonic regression maps that score to the share of right answers seen at it, and each step of
    that map is lowered to its Wilson bound, then made monotone again.
    """

    def __init__(self, z: float = 1.0) -> None:
        self._z = z
        self._mean: Array = np.zeros(0)
        self._scale: Array = np.zeros(0)
        self._coef: Array = np.zeros(0)
        self._intercept = 0.0
        self._starts: Array = np.zeros(1)
        self._levels: Array = np.zeros(1)

    def fit(self, features: Array, right: npt.NDArray[np.bool_], weights: Array) -> Calibrator:
        if right.all() or not right.any():
            # one outcome only: nothing to separate, so every score gets the bounded share
            level = wilson_lower(
                np.array([weights[right].sum()]), np.array([weights.sum()]), self._z
            )
            self._levels = level
            return self
        scaler = StandardScaler().fit(features)
        # kept as plain arrays: scoring one question must not pay the library's input checks
        self._mean, self._scale = scaler.mean_, scaler.scale_
        self._coef, self._intercept = monotone_logistic(scaler.transform(features), right, weights)
        scores = self._score(features)
        order = np.argsort(scores, kind="stable")
        scores, outcome, weights = scores[order], right[order].astype(float), weights[order]
        fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit_transform(
            scores, outcome, sample_weight=weights
        )
        block_starts = np.flatnonzero(np.r_[True, np.diff(fitted) != 0])
        block_right = np.add.reduceat(outcome * weights, block_starts)
        block_total = np.add.reduceat(weights, block_starts)
        bounded = wilson_lower(block_right, block_total, self._z)
        self._levels = IsotonicRegression(y_min=0.0, y_max=1.0).fit_transform(
            np.arange(len(bounded)), bounded, sample_weight=block_total
        )
        self._starts = scores[block_starts]
        return self

    def confidence(self, features: Array) -> Array:
        if len(self._levels) == 1:
            return np.full(features.shape[0], float(self._levels[0]))
        scores = self._score(features)
        step = np.searchsorted(self._starts, scores, side="right") - 1
        return np.asarray(self._levels[np.clip(step, 0, None)])

    def _score(self, features: Array) -> Array:
        return np.asarray(((features - self._mean) / self._scale) @ self._coef + self._intercept)
