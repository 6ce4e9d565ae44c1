"""The champion/challenger gate: a run's best model against the registry's champion.

The challenger replaces the champion only if there is none, or if it passes the promotion
rule on the test set (:mod:`.gate_rules`: significantly better while the training data is the
champion's, non-inferior within a margin once it changed), is non-inferior on the data
directory's holdout once that holds enough rows, and (with the slice rule) is significantly
worse on no slice of the test set. If the test set changed, the champion is scored again on
it first. The decision lists every reason it used.
"""

import hashlib
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sentiment_lora.config import GateRule
from sentiment_lora.deployment.export_check import ExportCheck
from sentiment_lora.evidence.slices import SliceComparison, compare_slices, slice_gate_reasons
from sentiment_lora.evidence.stats import McNemarResult, mcnemar_test
from sentiment_lora.format_numbers import num, pvalue
from sentiment_lora.operations.gate_rules import (
    AppliedRule,
    RuleCheck,
    applied_rule,
    check_non_inferiority,
    check_superiority,
)
from sentiment_lora.operations.registry import (
    ModelRecord,
    ModelSummary,
    champion_model_dir,
    read_champion,
)
from sentiment_lora.paths import ADAPTER_WEIGHTS
from sentiment_lora.training.data import DECISION_THRESHOLD
from sentiment_lora.training.ensemble import weights_identity
from sentiment_lora.training.evaluation import Evaluation
from sentiment_lora.training.holdout import Holdout


class GateSummary(BaseModel):
    """Whether the challenger became champion, and why (as the run's results record it)."""

    model_config = ConfigDict(frozen=True)
    promoted: bool
    reason: str  # the deciding reason
    reasons: list[str] = []  # every check the gate made, the deciding one first
    challenger: ModelSummary
    champion: ModelSummary | None
    mcnemar: McNemarResult | None = None
    slices: SliceComparison | None = None  # champion against challenger per test-set slice
    alpha: float
    unchanged: bool = False  # the challenger is the champion's model (same data, parameters)
    export_check: ExportCheck | None = None  # the challenger's int8 ONNX export, if checked
    rule_option: GateRule = "auto"  # the rule asked for
    rule: AppliedRule | None = None  # the rule applied (None: no comparison was needed)
    margin: float | None = None  # the non-inferiority margin in macro-F1
    checks: list[RuleCheck] = []  # the rule on the test set, then non-inferiority on holdout
    test_set_decisions: int | None = None  # gate decisions this test set has served, this one in
    dry_run: bool = False  # `--gate dry-run`: decided and reported, nothing promoted
    would_promote: bool | None = None  # a dry run's verdict (``promoted`` stays False)

    def outcome(self) -> str:
        """The decision in a few words, as the report, the artifact and the log say it."""
        if self.dry_run:
            return "dry run: would promote" if self.would_promote else "dry run: would keep"
        return "promoted to champion" if self.promoted else "the champion was kept"


class GateDecision(GateSummary):
    """:class:`GateSummary` with the full records (predictions included)."""

    challenger: ModelRecord
    champion: ModelRecord | None

    def summary(self) -> GateSummary:
        """The decision without the records' predictions."""
        return GateSummary.model_validate(
            {
                **self.model_dump(exclude={"challenger", "champion"}),
                "challenger": self.challenger.summary(),
                "champion": self.champion.summary() if self.champion else None,
            }
        )


def model_key(model_dir: Path | str) -> str:
    """Identity of a saved model: the hash of its weights (an ensemble's: of its members')."""
    identity = weights_identity(model_dir)
    if identity.startswith("missing:"):
        raise FileNotFoundError(f"{model_dir}: no model weights ({ADAPTER_WEIGHTS})")
    return identity[:20]


def needs_rescore(challenger: ModelRecord, champion: ModelRecord) -> bool:
    """True if the champion was scored on another test set and must be scored again."""
    return (
        champion.model_key != challenger.model_key
        and champion.test_set_hash != challenger.test_set_hash
    )


def hash_test_set(sentences: Sequence[str], labels: Sequence[int]) -> str:
    """Identity of a test set: hash of its sentences and labels, in order."""
    digest = hashlib.sha256()
    for sentence, label in zip(sentences, labels, strict=True):
        digest.update(f"{sentence}\t{int(label)}\n".encode())
    return digest.hexdigest()[:16]


def model_record(
    evaluation: Evaluation,
    *,
    run_id: str,
    model_key: str,
    sentences: Sequence[str],
    train_data_hash: str | None = None,
) -> ModelRecord:
    """The gate's view of a model from its test evaluation."""
    return ModelRecord(
        train_data_hash=train_data_hash,
        run_id=run_id,
        config_name=evaluation.model_name,
        model_key=model_key,
        test_accuracy=evaluation.metrics.accuracy,
        test_f1_macro=evaluation.metrics.f1_macro,
        test_set_hash=hash_test_set(sentences, evaluation.labels),
        predictions=evaluation.predictions,
        probabilities=evaluation.prob_positive,
    )


class HoldoutPredictions(BaseModel):
    """Champion and challenger scored on the data directory's holdout (never trained on)."""

    model_config = ConfigDict(frozen=True)
    labels: list[int]
    challenger: list[int]
    champion: list[int]


def decide(
    challenger: ModelRecord,
    champion: ModelRecord | None,
    *,
    labels: Sequence[int],
    champion_predictions: Sequence[int] | None = None,
    champion_probabilities: Sequence[float] | None = None,
    sentences: Sequence[str] | None = None,
    alpha: float = 0.05,
    slice_rule: bool = True,
    rule: GateRule = "auto",
    margin: float = 0.01,
    holdout: HoldoutPredictions | None = None,
    n_resamples: int = 2000,
    seed: int = 0,
) -> GateDecision:
    """Apply the gate; the decision lists every reason it used.

    The challenger is promoted if there is no champion, or if it passes the rule
    (:mod:`sentiment_lora.operations.gate_rules`: ``rule`` 'auto' is superiority when the
    challenger was trained on the champion's training data, else non-inferiority within
    ``margin``) on the test set, is non-inferior on the ``holdout`` too when one is given, and,
    with ``slice_rule`` and ``sentences`` given, is significantly worse on no slice of the test
    set (Holm-corrected McNemar per slice, see :mod:`sentiment_lora.evidence.slices`).
    ``champion_predictions`` (and, if known, ``champion_probabilities``) on the current test
    set are needed only when the champion was scored on a different test set.
    """

    def result(promoted: bool, reasons: list[str], **kw) -> GateDecision:
        return GateDecision(
            promoted=promoted,
            reason=reasons[0],
            reasons=reasons,
            challenger=challenger,
            champion=champion,
            alpha=alpha,
            rule_option=rule,
            margin=margin,
            **kw,
        )

    if champion is None:
        return result(True, ["no champion yet: the first model becomes champion"])
    if challenger.model_key == champion.model_key:
        return result(
            False,
            [
                f"unchanged: data and parameters are those of the champion "
                f"(run {champion.run_id}); the model came from the cache"
            ],
            unchanged=True,
        )
    if not needs_rescore(challenger, champion):
        champ_preds, champ_probs = champion.predictions, champion.probabilities
    elif champion_predictions is not None:
        champ_preds, champ_probs = list(champion_predictions), champion_probabilities
    else:
        raise ValueError("champion_predictions: the test set changed; re-score the champion on it")
    applied = applied_rule(
        rule, challenger_data=challenger.train_data_hash, champion_data=champion.train_data_hash
    )
    checks = [
        _check(
            applied,
            labels,
            challenger.predictions,
            champ_preds,
            "test",
            alpha,
            margin,
            seed,
            n_resamples,
        )
    ]
    if holdout is not None:
        checks.append(
            _check(
                "non-inferiority",
                holdout.labels,
                holdout.challenger,
                holdout.champion,
                "holdout",
                alpha,
                margin,
                seed,
                n_resamples,
            )
        )
    champ_correct = [int(p == y) for p, y in zip(champ_preds, labels, strict=True)]
    chall_correct = [int(p == y) for p, y in zip(challenger.predictions, labels, strict=True)]
    test = mcnemar_test(chall_correct, champ_correct)
    champ_acc = sum(champ_correct) / len(champ_correct)
    overall = (
        f"two-sided McNemar p={pvalue(test.pvalue)} (accuracy {num(challenger.test_accuracy)} "
        f"vs {num(champ_acc)})"
    )
    slices = None
    slice_reasons: list[str] = []
    if sentences is not None:
        slices = compare_slices(
            sentences,
            labels,
            champ_preds,
            challenger.predictions,
            champion_prob_positive=champ_probs,
            alpha=alpha,
        )
        slice_reasons = [slices.summary, *slice_gate_reasons(slices)]
        if slices.blocks_promotion and not slice_rule:
            slice_reasons.append("the slice rule is off: slice regressions do not block")
    blocked = slices is not None and slices.blocks_promotion and slice_rule
    failed = [check for check in checks if not check.passed]
    why_rule = _why_rule(rule, applied)
    if failed:
        headline = f"{failed[0].reason} ({why_rule})"
    elif blocked:
        headline = "worse on a slice of the test set: " + "; ".join(slice_gate_reasons(slices))
    else:
        headline = f"{checks[0].reason} ({why_rule})"
    others = [c.reason for c in checks if c.reason not in headline]  # the headline quotes one
    return result(
        not failed and not blocked,
        list(dict.fromkeys([headline, *others, overall, *slice_reasons])),
        mcnemar=test,
        slices=slices,
        rule=applied,
        checks=checks,
    )


def _check(
    rule: AppliedRule,
    labels: Sequence[int],
    challenger: Sequence[int],
    champion: Sequence[int],
    test_set: str,
    alpha: float,
    margin: float,
    seed: int,
    n_resamples: int,
) -> RuleCheck:
    if rule == "superiority":
        return check_superiority(labels, challenger, champion, alpha=alpha, test_set=test_set)
    return check_non_inferiority(
        labels,
        challenger,
        champion,
        margin=margin,
        alpha=alpha,
        n_resamples=n_resamples,
        seed=seed,
        test_set=test_set,
    )


def _why_rule(option: GateRule, applied: AppliedRule) -> str:
    if option != "auto":
        return f"rule {applied}, as set"
    if applied == "superiority":
        return "rule superiority: trained on the champion's training data"
    return "rule non-inferiority: the training data changed since the champion"


def challenge_champion(
    test: Evaluation,
    *,
    model_dir: Path | str,
    run_id: str,
    sentences: Sequence[str],
    registry_dir: Path | str,
    alpha: float,
    inference_options: dict[str, object] | None = None,
    slice_rule: bool = True,
    rule: GateRule = "auto",
    margin: float = 0.01,
    train_data_hash: str | None = None,
    holdout: Holdout | None = None,
) -> GateDecision:
    """The gate for a run's best model (``model_dir``, evaluated as ``test`` on ``sentences``).

    If the test set changed since the champion was scored, the champion is scored again on
    it (loaded with ``inference_options``) before :func:`decide` compares the two. With a
    ``holdout`` (at least :data:`HOLDOUT_MIN_ROWS` rows), both models are scored on it too.
    """
    challenger = model_record(
        test,
        run_id=run_id,
        model_key=model_key(model_dir),
        sentences=sentences,
        train_data_hash=train_data_hash,
    )
    champion = read_champion(registry_dir)
    champion_predictions = champion_probabilities = None
    options = inference_options or {}
    if champion is not None and needs_rescore(challenger, champion):
        champion_probabilities = _probabilities(
            champion_model_dir(registry_dir), sentences, options
        )
        champion_predictions = _predictions(champion_probabilities)
    scored_holdout = None
    if holdout is not None and champion is not None and champion.model_key != challenger.model_key:
        scored_holdout = HoldoutPredictions(
            labels=holdout.labels,
            challenger=_predictions(_probabilities(model_dir, holdout.sentences, options)),
            champion=_predictions(
                _probabilities(champion_model_dir(registry_dir), holdout.sentences, options)
            ),
        )
    return decide(
        challenger,
        champion,
        labels=test.labels,
        champion_predictions=champion_predictions,
        champion_probabilities=champion_probabilities,
        sentences=sentences,
        alpha=alpha,
        slice_rule=slice_rule,
        rule=rule,
        margin=margin,
        holdout=scored_holdout,
    )


def _probabilities(
    model_dir: Path | str, sentences: Sequence[str], options: dict[str, object]
) -> list[float]:
    """P(positive) of each sentence by the saved model in ``model_dir``."""
    from sentiment_lora.training.inference import load_analyzer

    return load_analyzer(model_dir, **options).predict_proba(list(sentences))[:, 1].tolist()


def _predictions(probabilities: Sequence[float]) -> list[int]:
    return [int(p >= DECISION_THRESHOLD) for p in probabilities]


def with_export_check(decision: GateDecision, check: ExportCheck) -> GateDecision:
    """``decision`` with the export check added: a failed export refuses a promotion."""
    return _with_export_verdict(decision, check.passed, check.reason, check)


def without_export(decision: GateDecision, why: str) -> GateDecision:
    """``decision`` when the export check was asked for but the challenger cannot be
    exported (an ensemble is several models, not one ONNX graph): a promotion is refused."""
    return _with_export_verdict(decision, False, why, None)


def _with_export_verdict(
    decision: GateDecision, passed: bool, reason: str, check: ExportCheck | None
) -> GateDecision:
    if decision.promoted and not passed:
        refused = f"refused: {reason}; a model that does not survive its export is not served"
        return decision.model_copy(
            update={
                "promoted": False,
                "reason": refused,
                "reasons": [refused, *decision.reasons],
                "export_check": check,
            }
        )
    return decision.model_copy(
        update={"reasons": [*decision.reasons, reason], "export_check": check}
    )


def as_dry_run(decision: GateDecision) -> GateDecision:
    """``decision`` taken but not acted on (``--gate dry-run``): ``promoted`` is False, so
    nothing downstream promotes; ``would_promote`` and the reason say what the gate decided."""
    verb = "would promote" if decision.promoted else "would keep the champion"
    reason = f"dry run: {verb}, because {decision.reason}"
    return decision.model_copy(
        update={
            "promoted": False,
            "dry_run": True,
            "would_promote": decision.promoted,
            "reason": reason,
            "reasons": [reason, *decision.reasons[1:]],
        }
    )


def gate_markdown(decision: GateSummary) -> str:
    """The decision as a markdown table: challenger against champion."""
    challenger, champion = decision.challenger, decision.champion

    def cell(record: ModelSummary | None, value: str) -> str:
        return value if record is not None else "-"

    rows = [
        ("run", challenger.run_id, cell(champion, champion.run_id if champion else "")),
        (
            "config",
            challenger.config_name,
            cell(champion, champion.config_name if champion else ""),
        ),
        (
            "test accuracy",
            num(challenger.test_accuracy),
            cell(champion, num(champion.test_accuracy) if champion else ""),
        ),
        (
            "test macro-F1",
            num(challenger.test_f1_macro),
            cell(champion, num(champion.test_f1_macro) if champion else ""),
        ),
    ]
    title = decision.outcome()
    table = "\n".join(f"| {name} | {a} | {b} |" for name, a, b in rows)
    return (
        f"# Champion gate: {title}\n\n{decision.reason}\n\n"
        f"| | challenger | champion |\n|---|---|---|\n{table}\n\n{decision_facts(decision)}\n"
    )


def decision_facts(decision: GateSummary) -> str:
    """The rule, the margin and how worn the test set is, in one paragraph."""
    if decision.rule is None:
        return "No comparison was needed."
    facts = [f"Rule: {decision.rule} (option {decision.rule_option})"]
    if decision.rule == "non-inferiority" or any(c.test_set == "holdout" for c in decision.checks):
        facts.append(f"margin {num(decision.margin, 3)} macro-F1")
    for check in decision.checks:
        facts.append(f"{check.test_set}: {'passed' if check.passed else 'failed'}")
    if decision.test_set_decisions is not None:
        facts.append(
            f"this test set has now served {decision.test_set_decisions} gate "
            f"decision{'s' if decision.test_set_decisions != 1 else ''}"
        )
    return "; ".join(facts) + "."
