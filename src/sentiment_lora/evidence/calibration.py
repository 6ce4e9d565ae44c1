"""Calibration of a binary classifier's P(positive): reliability bins, ECE, Brier score and
temperature scaling.

Reliability bins use the standard top-label formulation (Guo et al., 2017): the confidence of
an example is the probability of its predicted class, max(p, 1 - p) with prediction p >= 0.5,
and bins are ``n_bins`` equal-width intervals over [0, 1], closed on the right
(``(lower, upper]``, the first also holds 0), as in scikit-learn's ``calibration_curve``. For
a binary classifier the confidence is at least 0.5, so the bins below 0.5 stay empty.
"""

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit, logit
from sklearn.metrics import brier_score_loss

from sentiment_lora.training.data import DECISION_THRESHOLD

# P(positive) is clipped to [_EPS, 1 - _EPS] before taking its logit.
_EPS = 1e-7
# Temperature scaling searches log T within these bounds.
_TEMPERATURE_BOUNDS = (0.05, 20.0)


class ReliabilityBin(BaseModel):
    """One confidence bin; mean_confidence and accuracy are None when the bin is empty."""

    model_config = ConfigDict(frozen=True)
    lower: float
    upper: float
    count: int
    mean_confidence: float | None
    accuracy: float | None


class CalibrationMetrics(BaseModel):
    """Calibration of one set of probabilities."""

    model_config = ConfigDict(frozen=True)
    ece: float
    brier: float
    bins: list[ReliabilityBin]


class CalibrationReport(BaseModel):
    """Test-set calibration before and after a temperature fitted on validation."""

    model_config = ConfigDict(frozen=True)
    temperature: float
    n_bins: int
    before: CalibrationMetrics
    after: CalibrationMetrics


def _validated(labels: Sequence[int], prob_positive: Sequence[float]) -> tuple[np.ndarray, ...]:
    y = np.asarray(labels)
    p = np.asarray(prob_positive, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(
            f"labels and prob_positive must be 1-D of equal length, got {y.shape} and {p.shape}"
        )
    if len(y) == 0:
        raise ValueError("labels: cannot assess calibration on an empty set")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must hold only 0/1 values")
    if not np.all((p >= 0) & (p <= 1)):  # also rejects NaN
        raise ValueError("prob_positive must lie in [0, 1]")
    return y.astype(int), p


def reliability_bins(
    labels: Sequence[int], prob_positive: Sequence[float], *, n_bins: int = 15
) -> list[ReliabilityBin]:
    """Top-label reliability bins: count, mean confidence and accuracy per bin.

    >>> bins = reliability_bins([1, 0, 0, 0], [0.875, 0.75, 0.25, 0.625], n_bins=2)
    >>> [(b.count, b.mean_confidence, b.accuracy) for b in bins]
    [(0, None, None), (4, 0.75, 0.5)]
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be positive, got {n_bins}")
    y, p = _validated(labels, prob_positive)
    prediction = (p >= DECISION_THRESHOLD).astype(int)
    confidence = np.where(prediction == 1, p, 1 - p)
    correct = (prediction == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    ids = np.searchsorted(edges[1:-1], confidence, side="left")  # (lower, upper]
    counts = np.bincount(ids, minlength=n_bins)
    confidence_sums = np.bincount(ids, weights=confidence, minlength=n_bins)
    correct_sums = np.bincount(ids, weights=correct, minlength=n_bins)
    return [
        ReliabilityBin(
            lower=float(edges[i]),
            upper=float(edges[i + 1]),
            count=int(counts[i]),
            mean_confidence=float(confidence_sums[i] / counts[i]) if counts[i] else None,
            accuracy=float(correct_sums[i] / counts[i]) if counts[i] else None,
        )
        for i in range(n_bins)
    ]


def _ece_from_bins(bins: Sequence[ReliabilityBin]) -> float:
    total = sum(b.count for b in bins)
    return float(
        sum(
            b.count / total * abs(b.accuracy - b.mean_confidence)
            for b in bins
            if b.accuracy is not None and b.mean_confidence is not None
        )
    )


def expected_calibration_error(
    labels: Sequence[int], prob_positive: Sequence[float], *, n_bins: int = 15
) -> float:
    """Count-weighted mean of |accuracy - mean confidence| over the reliability bins.

    >>> expected_calibration_error([1, 0, 0, 0], [0.875, 0.75, 0.25, 0.625], n_bins=1)
    0.25
    """
    return _ece_from_bins(reliability_bins(labels, prob_positive, n_bins=n_bins))


def brier_score(labels: Sequence[int], prob_positive: Sequence[float]) -> float:
    """Mean squared difference between P(positive) and the 0/1 label."""
    y, p = _validated(labels, prob_positive)
    return float(brier_score_loss(y, p, labels=[0, 1]))


def _logits(prob_positive: np.ndarray) -> np.ndarray:
    return logit(np.clip(prob_positive, _EPS, 1 - _EPS))


def fit_temperature(labels: Sequence[int], prob_positive: Sequence[float]) -> float:
    """Temperature T > 0 minimising the log loss of sigmoid(logit(p) / T).

    T > 1 softens over-confident probabilities, T < 1 sharpens under-confident ones. The
    search is over log T, bounded to T in [0.05, 20].
    """
    y, p = _validated(labels, prob_positive)
    z = _logits(p)

    def negative_log_likelihood(log_t: float) -> float:
        s = z / np.exp(log_t)
        return float(-np.mean(y * log_expit(s) + (1 - y) * log_expit(-s)))

    low, high = _TEMPERATURE_BOUNDS
    result = minimize_scalar(
        negative_log_likelihood, bounds=(np.log(low), np.log(high)), method="bounded"
    )
    return float(np.exp(result.x))


def apply_temperature(prob_positive: Sequence[float], temperature: float) -> np.ndarray:
    """Rescale P(positive) as sigmoid(logit(p) / T); p is first clipped away from 0 and 1."""
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return expit(_logits(np.asarray(prob_positive, dtype=float)) / temperature)


def _calibration_metrics(
    labels: Sequence[int], prob_positive: Sequence[float], *, n_bins: int
) -> CalibrationMetrics:
    bins = reliability_bins(labels, prob_positive, n_bins=n_bins)
    return CalibrationMetrics(
        ece=_ece_from_bins(bins), brier=brier_score(labels, prob_positive), bins=bins
    )


def calibrate(
    validation_labels: Sequence[int],
    validation_probs: Sequence[float],
    test_labels: Sequence[int],
    test_probs: Sequence[float],
    *,
    n_bins: int = 15,
) -> CalibrationReport:
    """Fit a temperature on validation; report test-set calibration before and after it."""
    temperature = fit_temperature(validation_labels, validation_probs)
    return CalibrationReport(
        temperature=temperature,
        n_bins=n_bins,
        before=_calibration_metrics(test_labels, test_probs, n_bins=n_bins),
        after=_calibration_metrics(
            test_labels, apply_temperature(test_probs, temperature), n_bins=n_bins
        ),
    )
