"""Calibration metrics and temperature scaling on hand cases and seeded synthetic data."""

import math

import numpy as np
import pytest
from scipy.special import expit, logit

from sentiment_lora.evidence.calibration import (
    apply_temperature,
    brier_score,
    calibrate,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
)


def _synthetic(n: int, *, sharpness: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels ~ Bernoulli(q), q ~ U(0, 1); reported p = sigmoid(sharpness * logit(q)).

    sharpness 1 is perfectly calibrated, > 1 over-confident, < 1 under-confident.
    """
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.001, 0.999, size=n)
    labels = (rng.random(n) < q).astype(int)
    return labels, expit(sharpness * logit(q))


# Exact binary fractions: confidences 0.875, 0.75, 0.75, 0.625; correct 1, 0, 1, 0.
HAND_LABELS = [1, 0, 0, 0]
HAND_PROBS = [0.875, 0.75, 0.25, 0.625]


def test_ece_one_bin_by_hand() -> None:
    # mean confidence 3.0 / 4 = 0.75, accuracy 2 / 4 -> |0.5 - 0.75|
    assert expected_calibration_error(HAND_LABELS, HAND_PROBS, n_bins=1) == pytest.approx(0.25)


def test_ece_several_bins_by_hand() -> None:
    # n_bins=4: (0.5, 0.75] holds 0.75, 0.75, 0.625 (1 of 3 right); (0.75, 1] holds 0.875 (right)
    bins = reliability_bins(HAND_LABELS, HAND_PROBS, n_bins=4)
    assert [b.count for b in bins] == [0, 0, 3, 1]
    assert bins[2].mean_confidence == pytest.approx(2.125 / 3)
    assert bins[2].accuracy == pytest.approx(1 / 3)
    assert (bins[3].mean_confidence, bins[3].accuracy) == (0.875, 1.0)
    expected = 3 / 4 * abs(1 / 3 - 2.125 / 3) + 1 / 4 * abs(1.0 - 0.875)
    assert expected_calibration_error(HAND_LABELS, HAND_PROBS, n_bins=4) == pytest.approx(expected)


def test_empty_bins_are_none_not_nan() -> None:
    bins = reliability_bins(HAND_LABELS, HAND_PROBS)
    assert len(bins) == 15
    assert (bins[0].lower, bins[-1].upper) == (0.0, 1.0)
    assert sum(b.count for b in bins) == 4
    empty = [b for b in bins if b.count == 0]
    assert len(empty) == 12  # confidence >= 0.5: the seven bins below 0.5 are always empty
    assert all(b.mean_confidence is None and b.accuracy is None for b in empty)
    assert "NaN" not in str([b.model_dump_json() for b in bins])


def test_confidence_edges_land_in_the_expected_bins() -> None:
    # p = 0 and p = 1 have confidence 1 (last bin); p = 0.5 predicts positive with confidence 0.5
    bins = reliability_bins([0, 1, 1], [0.0, 1.0, 0.5], n_bins=2)
    assert [(b.count, b.accuracy) for b in bins] == [(1, 1.0), (2, 1.0)]


def test_perfectly_calibrated_set_has_near_zero_ece() -> None:
    labels, probs = _synthetic(200_000, sharpness=1.0, seed=0)
    assert expected_calibration_error(labels, probs) < 0.01


def test_temperature_scaling_fixes_overconfidence() -> None:
    fit_labels, fit_probs = _synthetic(20_000, sharpness=3.0, seed=1)
    test_labels, test_probs = _synthetic(20_000, sharpness=3.0, seed=2)
    before = expected_calibration_error(test_labels, test_probs)
    assert before > 0.05
    temperature = fit_temperature(fit_labels, fit_probs)
    assert temperature == pytest.approx(3.0, rel=0.1)
    after = expected_calibration_error(test_labels, apply_temperature(test_probs, temperature))
    assert after < 0.02
    assert after < before / 3


def test_temperature_of_calibrated_and_underconfident_sets() -> None:
    assert fit_temperature(*_synthetic(20_000, sharpness=1.0, seed=3)) == pytest.approx(1, rel=0.1)
    assert fit_temperature(*_synthetic(20_000, sharpness=0.5, seed=4)) < 1


def test_apply_temperature() -> None:
    out = apply_temperature([expit(2.0), 0.5, expit(-4.0)], 2.0)
    assert out == pytest.approx([expit(1.0), 0.5, expit(-2.0)])
    assert apply_temperature([0.3, 0.9], 1.0) == pytest.approx([0.3, 0.9])
    assert np.all(np.isfinite(apply_temperature([0.0, 1.0], 0.5)))  # clipped, not +-inf logits
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature([0.3], 0.0)


def test_brier_score() -> None:
    assert brier_score([0, 1, 1, 0], [0.0, 1.0, 1.0, 0.0]) == 0.0
    assert brier_score([1, 1], [1.0, 1.0]) == 0.0  # one class only
    assert brier_score([1, 0], [0.75, 0.5]) == pytest.approx((0.25**2 + 0.5**2) / 2)


def test_calibrate_fits_on_validation_and_reports_test() -> None:
    val_labels, val_probs = _synthetic(10_000, sharpness=3.0, seed=5)
    test_labels, test_probs = _synthetic(10_000, sharpness=3.0, seed=6)
    report = calibrate(val_labels, val_probs, test_labels, test_probs, n_bins=10)
    assert report.temperature == pytest.approx(fit_temperature(val_labels, val_probs))
    assert report.temperature > 1
    assert report.n_bins == 10 and len(report.before.bins) == len(report.after.bins) == 10
    assert report.before.ece == pytest.approx(
        expected_calibration_error(test_labels, test_probs, n_bins=10)
    )
    assert report.before.brier == pytest.approx(brier_score(test_labels, test_probs))
    assert report.after.ece < report.before.ece
    assert report.after.brier < report.before.brier
    assert all(math.isfinite(v) for v in (report.before.ece, report.after.ece))


def test_bad_input_fails_loudly() -> None:
    with pytest.raises(ValueError, match="equal length"):
        expected_calibration_error([0, 1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        brier_score([0, 1], [0.2, 1.3])
    with pytest.raises(ValueError, match="empty"):
        fit_temperature([], [])
    with pytest.raises(ValueError, match="n_bins"):
        reliability_bins([0], [0.2], n_bins=0)
