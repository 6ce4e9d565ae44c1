"""Statistical comparison of binary classifiers evaluated on the same test set.

Paired tests (McNemar, Cochran's Q) work on per-example correctness; paired percentile
bootstrap intervals work on labels and 0/1 predictions. Each result is a small frozen model.
"""

from collections.abc import Callable, Mapping, Sequence
from itertools import combinations
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict
from scipy.stats import binomtest, bootstrap
from sklearn.metrics import accuracy_score, f1_score
from statsmodels.stats.contingency_tables import cochrans_q, mcnemar
from statsmodels.stats.multitest import multipletests

from sentiment_lora.training.evaluation import ACCURACY, F1_MACRO

Metric = Literal["accuracy", "f1_macro"]
Verdict = Literal["better", "not distinguishable", "worse"]


class McNemarResult(BaseModel):
    """McNemar's test of two classifiers' paired correctness."""

    model_config = ConfigDict(frozen=True)
    # rows: model A correct / wrong; columns: model B correct / wrong
    table: list[list[int]]
    statistic: float
    pvalue: float
    method: Literal["exact-binomial", "chi-square-continuity", "exact-binomial-one-sided"]
    discordant: int  # examples exactly one of the two models got right


class Interval(BaseModel):
    """A point estimate with a percentile bootstrap confidence interval."""

    model_config = ConfigDict(frozen=True)
    estimate: float
    low: float
    high: float
    confidence: float
    n_resamples: int


class CochranQResult(BaseModel):
    """Cochran's Q test that several classifiers have the same accuracy."""

    model_config = ConfigDict(frozen=True)
    statistic: float
    pvalue: float
    df: int
    models: list[str]


class PairwiseComparison(BaseModel):
    """McNemar's test of one pair of models, with the Holm-adjusted p-value."""

    model_config = ConfigDict(frozen=True)
    model_a: str
    model_b: str
    mcnemar: McNemarResult
    pvalue_holm: float
    significant: bool  # pvalue_holm < alpha


class ModelComparison(BaseModel):
    """A model against a baseline on the same test set."""

    model_config = ConfigDict(frozen=True)
    model: str
    baseline: str
    mcnemar: McNemarResult  # A = model, B = baseline
    accuracy_difference: Interval  # model - baseline
    f1_macro_difference: Interval  # model - baseline
    verdict: Verdict
    alpha: float


def _binary_vector(name: str, values: Sequence[int] | Sequence[bool]) -> np.ndarray:
    """Return a 1-D int array of 0/1 values, or raise naming the argument."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name} must hold only 0/1 (or bool) values")
    return arr.astype(int)


def _same_length(**arrays: np.ndarray) -> None:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name} has {n}" for name, n in lengths.items())
        raise ValueError(f"{' and '.join(lengths)} must have equal length: {listed}")


def mcnemar_test(
    correct_a: Sequence[bool], correct_b: Sequence[bool], *, exact_below: int = 25
) -> McNemarResult:
    """McNemar's test on per-example correctness of models A and B.

    Uses the exact two-sided binomial test when there are fewer than ``exact_below``
    discordant pairs, otherwise the chi-square statistic with continuity correction.
    No discordant pairs gives p = 1.

    >>> r = mcnemar_test([1] * 30 + [1] * 10 + [0] * 2 + [0] * 5,
    ...                  [1] * 30 + [0] * 10 + [1] * 2 + [0] * 5)
    >>> r.table, r.method, round(r.pvalue, 4)
    ([[30, 10], [2, 5]], 'exact-binomial', 0.0386)
    """
    a = _binary_vector("correct_a", correct_a).astype(bool)
    b = _binary_vector("correct_b", correct_b).astype(bool)
    _same_length(correct_a=a, correct_b=b)
    table = [
        [int(np.sum(a & b)), int(np.sum(a & ~b))],
        [int(np.sum(~a & b)), int(np.sum(~a & ~b))],
    ]
    discordant = table[0][1] + table[1][0]
    exact = discordant < exact_below
    method: Literal["exact-binomial", "chi-square-continuity"] = (
        "exact-binomial" if exact else "chi-square-continuity"
    )
    if discordant == 0:  # statsmodels' chi-square divides by zero here (and returns p = 0)
        return McNemarResult(
            table=table, statistic=0.0, pvalue=1.0, method=method, discordant=discordant
        )
    result = mcnemar(np.array(table), exact=exact, correction=True)
    return McNemarResult(
        table=table,
        statistic=float(result.statistic),
        pvalue=float(result.pvalue),
        method=method,
        discordant=discordant,
    )


def mcnemar_one_sided(correct_a: Sequence[bool], correct_b: Sequence[bool]) -> McNemarResult:
    """McNemar's exact test that model A is better than model B (one-sided).

    Under the null, each discordant pair favours A with probability 1/2; the p-value is
    P(X >= b) for X ~ Binomial(b + c, 1/2), b = pairs only A got right, c = only B.
    statsmodels' ``mcnemar`` is two-sided only, so this is scipy's ``binomtest``.

    >>> r = mcnemar_one_sided([1] * 30 + [1] * 10 + [0] * 2 + [0] * 5,
    ...                       [1] * 30 + [0] * 10 + [1] * 2 + [0] * 5)
    >>> r.statistic, round(r.pvalue, 4)
    (10.0, 0.0193)
    """
    a = _binary_vector("correct_a", correct_a).astype(bool)
    b = _binary_vector("correct_b", correct_b).astype(bool)
    _same_length(correct_a=a, correct_b=b)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    table = [[int(np.sum(a & b)), only_a], [only_b, int(np.sum(~a & ~b))]]
    discordant = only_a + only_b
    pvalue = binomtest(only_a, discordant, 0.5, alternative="greater").pvalue if discordant else 1.0
    return McNemarResult(
        table=table,
        statistic=float(only_a),
        pvalue=float(pvalue),
        method="exact-binomial-one-sided",
        discordant=discordant,
    )


def _counts_metric(metric: Metric, y: np.ndarray, pred: np.ndarray, axis: int) -> np.ndarray:
    """Accuracy or macro-F1 (zero_division=0) along ``axis``, from confusion counts."""
    if metric == ACCURACY:
        return np.mean(y == pred, axis=axis)
    yb, pb = y.astype(bool), pred.astype(bool)
    errors = np.sum(yb != pb, axis=axis)  # fp + fn: the same for both classes
    f1_positive = _f1_from_counts(np.sum(yb & pb, axis=axis), errors)
    f1_negative = _f1_from_counts(np.sum(~yb & ~pb, axis=axis), errors)
    return (f1_positive + f1_negative) / 2


def _f1_from_counts(true_positives: np.ndarray, errors: np.ndarray) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN), 0 where that is 0/0 (scikit-learn's zero_division=0)."""
    numerator = 2 * np.asarray(true_positives, dtype=float)
    denominator = numerator + errors
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def _metric(metric: Metric, y: np.ndarray, pred: np.ndarray) -> float:
    """The point estimate, through scikit-learn."""
    if metric == ACCURACY:
        return float(accuracy_score(y, pred))
    if metric == F1_MACRO:
        return float(f1_score(y, pred, labels=[0, 1], average="macro", zero_division=0))
    raise ValueError(f"metric must be {ACCURACY!r} or {F1_MACRO!r}, got {metric!r}")


def _percentile_interval(
    data: tuple[np.ndarray, ...],
    statistic: Callable[..., np.ndarray],
    *,
    estimate: float,
    n_resamples: int,
    seed: int,
    confidence: float,
) -> Interval:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be positive, got {n_resamples}")
    result = bootstrap(
        data,
        statistic,
        n_resamples=n_resamples,
        vectorized=True,
        paired=True,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    ci = result.confidence_interval
    return Interval(
        estimate=estimate,
        low=float(ci.low),
        high=float(ci.high),
        confidence=confidence,
        n_resamples=n_resamples,
    )


def bootstrap_metric(
    labels: Sequence[int],
    predictions: Sequence[int],
    *,
    metric: Metric,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Percentile bootstrap interval of accuracy or macro-F1, resampling examples.

    >>> iv = bootstrap_metric([0, 1, 1, 0] * 25, [0, 1, 0, 0] * 25, metric="accuracy")
    >>> iv.estimate, iv.low < 0.75 < iv.high
    (0.75, True)
    """
    y = _binary_vector("labels", labels)
    p = _binary_vector("predictions", predictions)
    _same_length(labels=y, predictions=p)
    estimate = _metric(metric, y, p)
    return _percentile_interval(
        (y, p),
        lambda y_, p_, axis: _counts_metric(metric, y_, p_, axis),
        estimate=estimate,
        n_resamples=n_resamples,
        seed=seed,
        confidence=confidence,
    )


def bootstrap_difference(
    labels: Sequence[int],
    predictions_a: Sequence[int],
    predictions_b: Sequence[int],
    *,
    metric: Metric,
    n_resamples: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> Interval:
    """Paired percentile bootstrap interval of metric(A) - metric(B).

    Both models are scored on the same resampled examples in every resample.
    """
    y = _binary_vector("labels", labels)
    a = _binary_vector("predictions_a", predictions_a)
    b = _binary_vector("predictions_b", predictions_b)
    _same_length(labels=y, predictions_a=a, predictions_b=b)
    estimate = _metric(metric, y, a) - _metric(metric, y, b)

    def difference(y_: np.ndarray, a_: np.ndarray, b_: np.ndarray, axis: int) -> np.ndarray:
        return _counts_metric(metric, y_, a_, axis) - _counts_metric(metric, y_, b_, axis)

    return _percentile_interval(
        (y, a, b),
        difference,
        estimate=estimate,
        n_resamples=n_resamples,
        seed=seed,
        confidence=confidence,
    )


def _correctness_matrix(correct: Mapping[str, Sequence[bool]]) -> np.ndarray:
    """Columns = models (in mapping order), rows = examples; needs two or more models."""
    if len(correct) < 2:
        raise ValueError(f"correct: need at least 2 models, got {len(correct)}")
    columns = {name: _binary_vector(f"correct[{name!r}]", v) for name, v in correct.items()}
    _same_length(**{f"correct[{name!r}]": v for name, v in columns.items()})
    return np.column_stack(list(columns.values()))


def cochran_q_test(correct: Mapping[str, Sequence[bool]]) -> CochranQResult:
    """Cochran's Q test over the per-example correctness of two or more models.

    When every example is right for all models or wrong for all, Q is 0 and p is 1.
    """
    x = _correctness_matrix(correct)
    models = list(correct)
    row_sums = x.sum(axis=1)
    if np.all((row_sums == 0) | (row_sums == x.shape[1])):  # Q is 0/0 in statsmodels
        return CochranQResult(statistic=0.0, pvalue=1.0, df=len(models) - 1, models=models)
    result = cochrans_q(x)
    return CochranQResult(
        statistic=float(result.statistic),
        pvalue=float(result.pvalue),
        df=int(result.df),
        models=models,
    )


def holm_adjust(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the input order.

    >>> [round(p, 6) for p in holm_adjust([0.01, 0.04, 0.03])]
    [0.03, 0.06, 0.06]
    """
    if len(pvalues) == 0:
        return []
    return [float(p) for p in multipletests(list(pvalues), method="holm")[1]]


def pairwise_mcnemar_holm(
    correct: Mapping[str, Sequence[bool]], *, alpha: float = 0.05
) -> list[PairwiseComparison]:
    """McNemar's test for every unordered pair of models, Holm-corrected across the pairs.

    Pairs follow the input order: (m0, m1), (m0, m2), ..., (m1, m2), ...
    """
    _correctness_matrix(correct)  # validates count and lengths
    pairs = list(combinations(correct, 2))
    tests = [mcnemar_test(correct[a], correct[b]) for a, b in pairs]
    adjusted = holm_adjust([t.pvalue for t in tests])
    return [
        PairwiseComparison(
            model_a=a, model_b=b, mcnemar=t, pvalue_holm=p_holm, significant=p_holm < alpha
        )
        for (a, b), t, p_holm in zip(pairs, tests, adjusted, strict=True)
    ]


def verdict(difference: float, pvalue: float, *, alpha: float = 0.05) -> Verdict:
    """Say "better" or "worse" when p < alpha (by the sign), else "not distinguishable".

    >>> verdict(0.02, 0.01), verdict(-0.02, 0.01), verdict(0.02, 0.2)
    ('better', 'worse', 'not distinguishable')
    """
    if pvalue < alpha and difference > 0:
        return "better"
    if pvalue < alpha and difference < 0:
        return "worse"
    return "not distinguishable"


def compare_models(
    labels: Sequence[int],
    predictions: Sequence[int],
    baseline_predictions: Sequence[int],
    *,
    model: str,
    baseline: str,
    n_resamples: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> ModelComparison:
    """Compare a model with a baseline: McNemar, bootstrap differences and a verdict.

    The verdict comes from the McNemar p-value and the sign of the accuracy difference.
    """
    y = _binary_vector("labels", labels)
    pred = _binary_vector("predictions", predictions)
    base = _binary_vector("baseline_predictions", baseline_predictions)
    _same_length(labels=y, predictions=pred, baseline_predictions=base)
    test = mcnemar_test(pred == y, base == y)
    acc = bootstrap_difference(y, pred, base, metric="accuracy", n_resamples=n_resamples, seed=seed)
    f1 = bootstrap_difference(y, pred, base, metric="f1_macro", n_resamples=n_resamples, seed=seed)
    return ModelComparison(
        model=model,
        baseline=baseline,
        mcnemar=test,
        accuracy_difference=acc,
        f1_macro_difference=f1,
        verdict=verdict(acc.estimate, test.pvalue, alpha=alpha),
        alpha=alpha,
    )
