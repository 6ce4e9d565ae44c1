"""The two promotion rules of the champion gate, and which one applies.

Re-deciding every week on the same test set with "promote any higher score" is a random walk
on noise, and the champion's reported score drifts upward from selection alone. So:

- **superiority** (the training data is the champion's): the challenger must be significantly
  better, by McNemar's exact one-sided test on the test set at ``alpha``;
- **non-inferiority** (the data changed): the challenger's macro-F1 may be at most ``margin``
  below the champion's, judged on the lower bound of the paired bootstrap interval of the
  difference at confidence ``1 - 2 * alpha`` (the one-sided ``alpha`` bound).

Each check returns a :class:`RuleCheck` that says why in one line.
"""

from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict

from sentiment_lora.config import GateRule
from sentiment_lora.evidence.stats import (
    Interval,
    McNemarResult,
    bootstrap_difference,
    mcnemar_one_sided,
)
from sentiment_lora.format_numbers import num, pvalue

AppliedRule = Literal["superiority", "non-inferiority"]


class RuleCheck(BaseModel):
    """One rule applied to one test set: passed or not, and the evidence."""

    model_config = ConfigDict(frozen=True)
    rule: AppliedRule
    test_set: str  # "test" or "holdout"
    rows: int
    passed: bool
    reason: str
    superiority: McNemarResult | None = None  # one-sided McNemar, challenger better
    difference: Interval | None = None  # macro-F1 challenger - champion
    margin: float | None = None


def applied_rule(
    option: GateRule, *, challenger_data: str | None, champion_data: str | None
) -> AppliedRule:
    """The rule ``option`` means here: 'auto' is superiority when both models were trained on
    the same training data (equal hashes), else non-inferiority (unknown counts as changed)."""
    if option != "auto":
        return option
    same = challenger_data is not None and challenger_data == champion_data
    return "superiority" if same else "non-inferiority"


def _correct(predictions: Sequence[int], labels: Sequence[int]) -> list[int]:
    return [int(p == y) for p, y in zip(predictions, labels, strict=True)]


def check_superiority(
    labels: Sequence[int],
    challenger: Sequence[int],
    champion: Sequence[int],
    *,
    alpha: float,
    test_set: str = "test",
) -> RuleCheck:
    """Is the challenger significantly better (one-sided McNemar p < ``alpha``)?"""
    test = mcnemar_one_sided(_correct(challenger, labels), _correct(champion, labels))
    only_challenger, only_champion = test.table[0][1], test.table[1][0]
    passed = test.pvalue < alpha
    verdict = "significantly better" if passed else "not significantly better"
    reason = (
        f"{verdict} than the champion on {test_set} (one-sided McNemar p={pvalue(test.pvalue)}"
        f"{' <' if passed else ' >='} {alpha}; {only_challenger} sentences only the challenger "
        f"gets right, {only_champion} only the champion)"
    )
    return RuleCheck(
        rule="superiority",
        test_set=test_set,
        rows=len(labels),
        passed=passed,
        reason=reason,
        superiority=test,
    )


def check_non_inferiority(
    labels: Sequence[int],
    challenger: Sequence[int],
    champion: Sequence[int],
    *,
    margin: float,
    alpha: float,
    n_resamples: int = 2000,
    seed: int = 0,
    test_set: str = "test",
) -> RuleCheck:
    """Is the challenger's macro-F1 at most ``margin`` below the champion's (bootstrap bound)?"""
    difference = bootstrap_difference(
        labels,
        challenger,
        champion,
        metric="f1_macro",
        n_resamples=n_resamples,
        seed=seed,
        confidence=1 - 2 * alpha,
    )
    passed = difference.low > -margin
    relation = "above" if passed else "not above"
    reason = (
        f"{'non-inferior' if passed else 'possibly inferior'} on {test_set} ({len(labels)} "
        f"sentences): macro-F1 difference {num(difference.estimate)}, lower "
        f"{difference.confidence:.0%} bound {num(difference.low)} {relation} -{num(margin)}"
    )
    return RuleCheck(
        rule="non-inferiority",
        test_set=test_set,
        rows=len(labels),
        passed=passed,
        reason=reason,
        difference=difference,
        margin=margin,
    )
