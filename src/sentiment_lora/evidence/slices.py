"""Champion against challenger, slice by slice, on the same test sentences.

A slice is a subset of the test sentences: every error-pattern tag of
:func:`~sentiment_lora.evidence.error_analysis.tag_patterns` (a sentence is in every slice it is
tagged with), a sentence-length bucket, and, when the champion's probabilities are known, a
bucket of the champion's confidence in its predicted class. Each slice with at least
:data:`MIN_SLICE_SIZE` sentences gets McNemar's test; the p-values are Holm-corrected across all
tested slices together. Labels and predictions are 0 (negative) / 1 (positive).
"""

from collections.abc import Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, computed_field

from sentiment_lora.evidence.error_analysis import PATTERNS, count_words, tag_patterns
from sentiment_lora.evidence.stats import McNemarResult, holm_adjust, mcnemar_test, verdict
from sentiment_lora.format_numbers import num, pvalue
from sentiment_lora.training.data import DECISION_THRESHOLD

SliceKind = Literal["pattern", "length", "confidence"]
SliceVerdict = Literal["better", "worse", "not distinguishable", "too few"]

MIN_SLICE_SIZE = 10  # slices with fewer sentences are listed but not tested
# Length buckets in words (count_words): a bucket holds lengths up to and including its bound.
LENGTH_UPPER_BOUNDS: tuple[int, ...] = (10, 20, 30)
LENGTH_BUCKETS: tuple[str, ...] = ("length <=10", "length 11-20", "length 21-30", "length >30")
# Confidence in the champion's predicted class, max(p, 1 - p) in [0.5, 1]: buckets start at
# these edges and are half-open, [0.5, 0.7) and [0.7, 0.9), except the last, [0.9, 1.0].
CONFIDENCE_LOWER_EDGES: tuple[float, ...] = (0.5, 0.7, 0.9)
CONFIDENCE_BUCKETS: tuple[str, ...] = (
    "confidence [0.5, 0.7)",
    "confidence [0.7, 0.9)",
    "confidence [0.9, 1.0]",
)


class SliceResult(BaseModel):
    """Both models on one slice; differences are challenger minus champion."""

    model_config = ConfigDict(frozen=True)
    kind: SliceKind
    name: str  # unique across kinds: a pattern tag, "length 11-20", "confidence [0.9, 1.0]"
    n: int
    champion_accuracy: float | None  # None only when n == 0
    challenger_accuracy: float | None
    difference: float | None  # challenger - champion
    # A = challenger, B = champion (as in the registry's gate); None when not tested
    mcnemar: McNemarResult | None
    pvalue_holm: float | None  # across the tested slices; None when not tested
    verdict: SliceVerdict  # the challenger's, at alpha after Holm
    reason: str | None  # why the slice was not tested; None when it was


class SliceComparison(BaseModel):
    """Every slice of one test set, with the slices where the challenger is significantly
    worse (regressions) or better (improvements) after Holm's correction at ``alpha``."""

    model_config = ConfigDict(frozen=True)
    n: int
    champion_accuracy: float
    challenger_accuracy: float
    slices: list[SliceResult]  # patterns (registry order), lengths, confidence buckets
    regressions: list[str]  # slice names, in slice order
    improvements: list[str]
    alpha: float
    min_slice_size: int
    summary: str

    @computed_field  # type: ignore[prop-decorator]
    @property
    def blocks_promotion(self) -> bool:
        """The slice rule: a challenger that regressed on any slice is not promoted."""
        return bool(self.regressions)


def length_bucket(n_words: int) -> str:
    """The length bucket of a sentence with ``n_words`` words.

    >>> length_bucket(10), length_bucket(11), length_bucket(30), length_bucket(31)
    ('length <=10', 'length 11-20', 'length 21-30', 'length >30')
    """
    if n_words < 0:
        raise ValueError(f"n_words: must be >= 0, got {n_words}")
    return LENGTH_BUCKETS[int(np.searchsorted(LENGTH_UPPER_BOUNDS, n_words, side="left"))]


def confidence_bucket(prob_positive: float) -> str:
    """The bucket of the confidence in the predicted class, max(p, 1 - p).

    >>> confidence_bucket(0.5), confidence_bucket(0.3), confidence_bucket(0.9)
    ('confidence [0.5, 0.7)', 'confidence [0.7, 0.9)', 'confidence [0.9, 1.0]')
    """
    if not 0.0 <= prob_positive <= 1.0:
        raise ValueError(f"prob_positive: must be a probability in [0, 1], got {prob_positive}")
    confidence = prob_positive if prob_positive >= DECISION_THRESHOLD else 1.0 - prob_positive
    index = int(np.searchsorted(CONFIDENCE_LOWER_EDGES, confidence, side="right")) - 1
    return CONFIDENCE_BUCKETS[index]


def _binary(name: str, values: Sequence[int] | Sequence[float]) -> np.ndarray:
    """A 1-D int array of 0/1 values (0.0/1.0 accepted), or raise naming the argument."""
    arr = np.asarray(values)
    if arr.ndim != 1 or not np.isin(arr, (0, 1)).all():
        raise ValueError(f"{name}: must be a 1-D sequence of 0/1 values")
    return arr.astype(int)


def _champion_confidence_buckets(
    prob_positive: Sequence[float], predictions: np.ndarray
) -> list[str]:
    p = np.asarray(prob_positive, dtype=float)
    if p.shape != predictions.shape:
        raise ValueError(
            f"champion_prob_positive: expected {predictions.shape[0]} values, got shape {p.shape}"
        )
    if not (np.isfinite(p).all() and ((p >= 0) & (p <= 1)).all()):
        raise ValueError("champion_prob_positive: must be finite probabilities in [0, 1]")
    disagree = np.flatnonzero((p >= DECISION_THRESHOLD).astype(int) != predictions)
    if disagree.size:
        raise ValueError(
            f"champion_prob_positive: disagrees with champion_predictions at {disagree.size} "
            f"sentences (first index {disagree[0]}); a prediction is P >= {DECISION_THRESHOLD}"
        )
    return [confidence_bucket(float(x)) for x in p]


def _membership(
    sentences: list[str], confidence: list[str] | None
) -> list[tuple[SliceKind, str, np.ndarray]]:
    """(kind, name, boolean mask) for every slice, in report order."""
    tags = [set(tag_patterns(s)) for s in sentences]
    lengths = [length_bucket(count_words(s)) for s in sentences]
    out: list[tuple[SliceKind, str, np.ndarray]] = [
        ("pattern", name, np.array([name in t for t in tags], dtype=bool)) for name in PATTERNS
    ]
    out += [("length", b, np.array([x == b for x in lengths], dtype=bool)) for b in LENGTH_BUCKETS]
    if confidence is not None:
        out += [
            ("confidence", b, np.array([x == b for x in confidence], dtype=bool))
            for b in CONFIDENCE_BUCKETS
        ]
    return out


def _summary(comparison: SliceComparison) -> str:
    tested = sum(1 for s in comparison.slices if s.mcnemar is not None)
    untested = len(comparison.slices) - tested
    how = f"Holm-corrected at alpha = {comparison.alpha}"
    if tested == 0:
        return (
            f"No slice has {comparison.min_slice_size} or more sentences, so no slice was tested."
        )
    worse, better = comparison.regressions, comparison.improvements
    if not worse and not better:
        return (
            f"The challenger is neither significantly better nor worse than the champion on any "
            f"of the {tested} tested slices ({untested} too small to test; {how})."
        )

    def listed(names: list[str]) -> str:
        return f"{len(names)} ({', '.join(names)})" if names else "none"

    return (
        f"Of {tested} tested slices, the challenger is significantly worse than the champion on "
        f"{listed(worse)} and significantly better on {listed(better)} ({how})."
    )


def compare_slices(
    sentences: Sequence[str],
    labels: Sequence[int],
    champion_predictions: Sequence[int] | Sequence[float],
    challenger_predictions: Sequence[int] | Sequence[float],
    *,
    champion_prob_positive: Sequence[float] | None = None,
    alpha: float = 0.05,
    min_slice_size: int = MIN_SLICE_SIZE,
) -> SliceComparison:
    """Compare the champion's and the challenger's 0/1 predictions slice by slice.

    Predictions may be ints or floats 0.0/1.0 (the registry stores hard predictions only).
    Confidence slices need ``champion_prob_positive`` (P(positive) per sentence, consistent
    with ``champion_predictions``); without it they are left out. Slices with fewer than
    ``min_slice_size`` sentences are listed as "too few" and not tested; Holm runs over the
    tested ones. A slice is a regression when the challenger is less accurate and its Holm
    p-value is below ``alpha``, an improvement likewise.

    >>> c = compare_slices(["not bad at all"] * 12, [1] * 12, [1] * 12, [0] * 12)
    >>> c.regressions, c.blocks_promotion
    (['negation', 'very_short', 'length <=10'], True)
    """
    sentences = list(sentences)
    y = _binary("labels", labels)
    champ = _binary("champion_predictions", champion_predictions)
    chall = _binary("challenger_predictions", challenger_predictions)
    if not len(sentences) == len(y) == len(champ) == len(chall):
        raise ValueError(
            "sentences, labels, champion_predictions and challenger_predictions must have equal "
            f"length, got {len(sentences)}, {len(y)}, {len(champ)} and {len(chall)}"
        )
    if not sentences:
        raise ValueError("sentences: empty test set")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    if min_slice_size < 1:
        raise ValueError(f"min_slice_size: must be >= 1, got {min_slice_size}")
    confidence = (
        None
        if champion_prob_positive is None
        else _champion_confidence_buckets(champion_prob_positive, champ)
    )

    champ_correct, chall_correct = champ == y, chall == y
    slices = _membership(sentences, confidence)
    tests = [
        mcnemar_test(chall_correct[mask], champ_correct[mask])
        if mask.sum() >= min_slice_size
        else None
        for _, _, mask in slices
    ]
    adjusted = iter(holm_adjust([t.pvalue for t in tests if t is not None]))
    results = []
    for (kind, name, mask), test in zip(slices, tests, strict=True):
        n = int(mask.sum())
        acc_champ = float(champ_correct[mask].mean()) if n else None
        acc_chall = float(chall_correct[mask].mean()) if n else None
        diff = None if acc_champ is None or acc_chall is None else acc_chall - acc_champ
        p_holm: float | None = None
        slice_verdict: SliceVerdict = "too few"
        reason: str | None = f"only {n} sentences (fewer than {min_slice_size}): not tested"
        if test is not None and diff is not None:  # tested slices are never empty
            p_holm, reason = next(adjusted), None
            slice_verdict = verdict(diff, p_holm, alpha=alpha)
        results.append(
            SliceResult(
                kind=kind,
                name=name,
                n=n,
                champion_accuracy=acc_champ,
                challenger_accuracy=acc_chall,
                difference=diff,
                mcnemar=test,
                pvalue_holm=p_holm,
                verdict=slice_verdict,
                reason=reason,
            )
        )
    comparison = SliceComparison(
        n=len(y),
        champion_accuracy=float(champ_correct.mean()),
        challenger_accuracy=float(chall_correct.mean()),
        slices=results,
        regressions=[s.name for s in results if s.verdict == "worse"],
        improvements=[s.name for s in results if s.verdict == "better"],
        alpha=alpha,
        min_slice_size=min_slice_size,
        summary="",
    )
    return comparison.model_copy(update={"summary": _summary(comparison)})


def slice_gate_reasons(comparison: SliceComparison) -> list[str]:
    """One line per regressed slice, for the gate's reason; empty when the slice rule passes.

    >>> c = compare_slices(["not bad at all"] * 12, [1] * 12, [1] * 12, [0] * 12)
    >>> slice_gate_reasons(c)[0]
    "slice 'negation' regressed: accuracy 1.00 -> 0.00 (n = 12), Holm p = 0.00146"
    """
    by_name = {s.name: s for s in comparison.slices}
    return [
        f"slice '{s.name}' regressed: accuracy {num(s.champion_accuracy, 2)} -> "
        f"{num(s.challenger_accuracy, 2)} (n = {s.n}), Holm p = {pvalue(s.pvalue_holm)}"
        for s in (by_name[name] for name in comparison.regressions)
    ]
