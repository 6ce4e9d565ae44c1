"""Paired tests and bootstrap intervals against hand-worked cases."""

import numpy as np
import pytest
from scipy.stats import chi2
from sklearn.metrics import accuracy_score, f1_score

from sentiment_lora.evidence.stats import (
    _counts_metric,
    bootstrap_difference,
    bootstrap_metric,
    cochran_q_test,
    compare_models,
    holm_adjust,
    mcnemar_test,
    pairwise_mcnemar_holm,
    verdict,
)


def _pairs(both: int, a_only: int, b_only: int, neither: int) -> tuple[list[bool], list[bool]]:
    """Per-example correctness of two models with the given 2x2 counts."""
    a = [True] * both + [True] * a_only + [False] * b_only + [False] * neither
    b = [True] * both + [False] * a_only + [True] * b_only + [False] * neither
    return a, b


# --- McNemar ------------------------------------------------------------------------------


def test_mcnemar_exact_worked_by_hand() -> None:
    # b = 10 (A right, B wrong), c = 2: p = 2 * P(X <= 2 | n = 12, 1/2) = 2 * (1 + 12 + 66) / 4096
    r = mcnemar_test(*_pairs(30, 10, 2, 5))
    assert r.table == [[30, 10], [2, 5]]
    assert r.discordant == 12
    assert r.method == "exact-binomial"
    assert r.pvalue == pytest.approx(2 * 79 / 4096)
    assert r.pvalue == pytest.approx(0.0386, abs=5e-5)
    assert r.statistic == 2  # statsmodels reports min(b, c) for the exact test


def test_mcnemar_chi_square_with_continuity_correction() -> None:
    r = mcnemar_test(*_pairs(100, 40, 20, 10))
    expected = (abs(40 - 20) - 1) ** 2 / (40 + 20)
    assert r.method == "chi-square-continuity"
    assert r.statistic == pytest.approx(expected)
    assert r.pvalue == pytest.approx(chi2.sf(expected, df=1))


def test_mcnemar_switches_method_at_exact_below() -> None:
    a, b = _pairs(5, 15, 10, 5)  # 25 discordant pairs
    assert mcnemar_test(a, b).method == "chi-square-continuity"
    assert mcnemar_test(a, b, exact_below=26).method == "exact-binomial"


@pytest.mark.parametrize("exact_below", [25, 0])
def test_mcnemar_without_discordant_pairs_has_p_one(exact_below: int) -> None:
    r = mcnemar_test(*_pairs(7, 0, 0, 3), exact_below=exact_below)
    assert r.discordant == 0
    assert r.pvalue == 1.0
    assert r.statistic == 0.0


def test_mcnemar_table_orientation() -> None:
    a, b = _pairs(4, 3, 1, 2)
    assert mcnemar_test(a, b).table == [[4, 3], [1, 2]]
    assert mcnemar_test(b, a).table == [[4, 1], [3, 2]]


def test_mcnemar_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="correct_a and correct_b"):
        mcnemar_test([True, False, True], [True, False])
    with pytest.raises(ValueError, match="correct_b"):
        mcnemar_test([1, 0], [1, 2])


# --- bootstrap ----------------------------------------------------------------------------

# 80% accurate: 40 right, 10 wrong, both classes present.
LABELS = [1] * 25 + [0] * 25
PREDS = [1] * 20 + [0] * 5 + [0] * 20 + [1] * 5


@pytest.mark.parametrize("metric", ["accuracy", "f1_macro"])
def test_bootstrap_interval_contains_point_estimate(metric: str) -> None:
    iv = bootstrap_metric(LABELS, PREDS, metric=metric, n_resamples=500)
    assert iv.estimate == pytest.approx(0.8)  # both metrics: symmetric errors
    assert iv.low < iv.estimate < iv.high
    assert (iv.confidence, iv.n_resamples) == (0.95, 500)


def test_bootstrap_point_estimates_come_from_sklearn() -> None:
    labels = [1, 1, 1, 1, 0, 0]
    preds = [1, 1, 1, 0, 1, 1]
    iv = bootstrap_metric(labels, preds, metric="f1_macro", n_resamples=50)
    assert iv.estimate == pytest.approx(f1_score(labels, preds, average="macro"))


def test_bootstrap_is_seeded() -> None:
    # 500 examples: accuracy moves in steps of 0.002, fine enough for two seeds to differ
    labels, preds = LABELS * 10, PREDS * 10
    first = bootstrap_metric(labels, preds, metric="accuracy", n_resamples=300, seed=1)
    again = bootstrap_metric(labels, preds, metric="accuracy", n_resamples=300, seed=1)
    other = bootstrap_metric(labels, preds, metric="accuracy", n_resamples=300, seed=2)
    assert first == again
    assert (first.low, first.high) != (other.low, other.high)


def test_bootstrap_interval_narrows_with_more_data() -> None:
    small = bootstrap_metric(LABELS, PREDS, metric="accuracy", n_resamples=500)
    large = bootstrap_metric(LABELS * 10, PREDS * 10, metric="accuracy", n_resamples=500)
    assert large.estimate == small.estimate
    assert large.high - large.low < 0.6 * (small.high - small.low)  # ~ 1/sqrt(10)


def test_counts_metric_matches_sklearn_per_resample() -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=(200, 12))
    pred = rng.integers(0, 2, size=(200, 12))
    y[0], pred[0] = 1, 1  # only one class present: the other F1 is 0/0 -> 0
    y[1], pred[1] = 0, 1  # nothing right
    f1 = _counts_metric("f1_macro", y, pred, axis=-1)
    acc = _counts_metric("accuracy", y, pred, axis=-1)
    for i in range(len(y)):
        expected = f1_score(y[i], pred[i], labels=[0, 1], average="macro", zero_division=0)
        assert f1[i] == pytest.approx(expected)
        assert acc[i] == pytest.approx(accuracy_score(y[i], pred[i]))


def test_bootstrap_difference_is_paired() -> None:
    # identical predictions: every paired resample gives exactly 0
    iv = bootstrap_difference(LABELS, PREDS, PREDS, metric="accuracy", n_resamples=200)
    assert (iv.estimate, iv.low, iv.high) == (0.0, 0.0, 0.0)


def test_bootstrap_difference_direction_and_estimate() -> None:
    better = LABELS  # always right
    iv = bootstrap_difference(LABELS, better, PREDS, metric="accuracy", n_resamples=500)
    assert iv.estimate == pytest.approx(0.2)
    assert 0 < iv.low < iv.estimate < iv.high
    f1 = bootstrap_difference(LABELS, PREDS, better, metric="f1_macro", n_resamples=500)
    assert f1.estimate == pytest.approx(-0.2)
    assert f1.high < 0


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="labels and predictions"):
        bootstrap_metric([0, 1, 1], [0, 1], metric="accuracy")
    with pytest.raises(ValueError, match="metric"):
        bootstrap_metric([0, 1], [0, 1], metric="auc")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="predictions_b"):
        bootstrap_difference([0, 1], [0, 1], [0, 1, 1], metric="accuracy")


# --- several models -----------------------------------------------------------------------


def test_holm_adjust_hand_case() -> None:
    # sorted 0.01, 0.03, 0.04 -> 3 * 0.01, 2 * 0.03, max(1 * 0.04, 0.06); back in input order
    assert holm_adjust([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm_adjust([]) == []


def test_pairwise_mcnemar_holm_in_input_order() -> None:
    a, b = _pairs(30, 10, 2, 5)  # A vs B and B vs C: exact p = 2 * 79 / 4096; A vs C: p = 1
    pairs = pairwise_mcnemar_holm({"A": a, "B": b, "C": a})
    assert [(p.model_a, p.model_b) for p in pairs] == [("A", "B"), ("A", "C"), ("B", "C")]
    raw = 2 * 79 / 4096
    assert [p.mcnemar.pvalue for p in pairs] == pytest.approx([raw, 1.0, raw])
    # Holm: sorted raw, raw, 1 -> 3 * raw, max(2 * raw, 3 * raw), 1
    assert [p.pvalue_holm for p in pairs] == pytest.approx([3 * raw, 1.0, 3 * raw])
    assert pairs[0].mcnemar.pvalue < 0.05
    assert not any(p.significant for p in pairs)
    assert [p.significant for p in pairwise_mcnemar_holm({"A": a, "B": b}, alpha=0.1)] == [True]


def test_cochran_q_identical_models_has_p_one() -> None:
    column = [True, False, True, True, False]
    r = cochran_q_test({"x": column, "y": column, "z": column})
    assert (r.statistic, r.pvalue, r.df) == (0.0, 1.0, 2)
    assert r.models == ["x", "y", "z"]


def test_cochran_q_two_models_equals_uncorrected_mcnemar() -> None:
    a, b = _pairs(30, 10, 2, 5)
    r = cochran_q_test({"a": a, "b": b})
    assert r.statistic == pytest.approx((10 - 2) ** 2 / (10 + 2))
    assert r.pvalue == pytest.approx(chi2.sf(64 / 12, df=1))
    assert r.df == 1


def test_cochran_q_clearly_better_model_has_small_p() -> None:
    weaker = [True] * 60 + [False] * 40
    r = cochran_q_test({"best": [True] * 100, "weak": weaker, "weak2": weaker[::-1]})
    assert r.pvalue < 1e-6


def test_several_model_tests_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2 models"):
        cochran_q_test({"only": [True, False]})
    with pytest.raises(ValueError, match="at least 2 models"):
        pairwise_mcnemar_holm({"only": [True, False]})
    with pytest.raises(ValueError, match="equal length"):
        cochran_q_test({"a": [True, False], "b": [True]})


# --- verdicts -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("difference", "pvalue", "expected"),
    [
        (0.03, 0.01, "better"),
        (-0.03, 0.01, "worse"),
        (0.03, 0.2, "not distinguishable"),
        (-0.03, 0.05, "not distinguishable"),  # p must be strictly below alpha
        (0.0, 0.01, "not distinguishable"),
    ],
)
def test_verdict(difference: float, pvalue: float, expected: str) -> None:
    assert verdict(difference, pvalue) == expected


def test_verdict_uses_alpha() -> None:
    assert verdict(0.03, 0.03, alpha=0.01) == "not distinguishable"


def test_compare_models_clearly_better() -> None:
    labels = [1, 0] * 100
    baseline = [1] * 200  # 50% accurate
    model = labels[:180] + [1 - y for y in labels[180:]]  # 90% accurate
    c = compare_models(labels, model, baseline, model="lora", baseline="majority", n_resamples=500)
    assert (c.model, c.baseline, c.alpha) == ("lora", "majority", 0.05)
    assert c.verdict == "better"
    assert c.accuracy_difference.estimate == pytest.approx(0.4)
    assert c.accuracy_difference.low > 0
    assert c.f1_macro_difference.low > 0
    assert c.mcnemar.table[0][1] > c.mcnemar.table[1][0]  # A = model
    reverse = compare_models(labels, baseline, model, model="m", baseline="b", n_resamples=100)
    assert reverse.verdict == "worse"
