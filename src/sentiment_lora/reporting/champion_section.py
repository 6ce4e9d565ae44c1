"""The report's "Since the champion" section: what changed in the data, whether it drifted,
where the new model got better or worse, and why it was or was not promoted."""

from typing import Any

from sentiment_lora.evidence.data_diff import DataDiff, SplitDiff
from sentiment_lora.evidence.slices import SliceComparison
from sentiment_lora.operations.gate import decision_facts
from sentiment_lora.operations.gate_rules import RuleCheck
from sentiment_lora.reporting import format as fmt
from sentiment_lora.reporting.results import RunSummary

MAX_EXAMPLES = 3


def _split_row(diff: SplitDiff) -> dict[str, Any]:
    return {
        "split": diff.split,
        "before": fmt.integer(diff.rows_before),
        "after": fmt.integer(diff.rows_after),
        "added": fmt.integer(diff.added),
        "removed": fmt.integer(diff.removed),
        "relabelled": fmt.integer(diff.relabelled),
        "identical": diff.identical,
    }


def _examples(diff: SplitDiff) -> list[dict[str, str]]:
    rows = []
    for kind, examples in (
        ("added", diff.added_examples),
        ("removed", diff.removed_examples),
        ("relabelled", diff.relabelled_examples),
    ):
        for e in examples[:MAX_EXAMPLES]:
            label = f"{e.previous_label} → {e.label}" if e.previous_label else e.label
            rows.append({"kind": kind, "sentence": e.sentence, "label": label})
    return rows


def _data_context(diff: DataDiff) -> dict[str, Any]:
    splits = [*diff.source.values(), *([diff.training] if diff.training else [])]
    edited = next(iter(diff.source.values()), None) or diff.training  # what a person edits
    return {
        "first_run": diff.first_run,
        "test_set_changed": diff.test_set_changed,
        "drifted": diff.drifted,
        "summary": list(diff.summary),
        "splits": [_split_row(s) for s in splits],
        "examples": _examples(edited) if edited else [],
        "tests": [
            {
                "name": t.name.replace("_", " "),
                "split": t.split,
                "method": t.method,
                "statistic": fmt.num(t.statistic, 3),
                "pvalue": fmt.pvalue(t.pvalue),
                "pvalue_holm": fmt.pvalue(t.pvalue_holm),
                "verdict": t.verdict,
                "significant": t.significant,
            }
            for t in diff.tests
        ],
        "new_terms": ", ".join(term.term for term in diff.novelty.new_terms)
        if diff.novelty
        else "",
        "novel_share": fmt.pct(diff.novelty.novel_share) if diff.novelty else fmt.MISSING,
    }


def _slices_context(slices: SliceComparison) -> dict[str, Any]:
    return {
        "summary": fmt.sentence(slices.summary),
        "rows": [
            {
                "kind": s.kind,
                "name": s.name,
                "n": fmt.integer(s.n),
                "champion": fmt.num(s.champion_accuracy),
                "challenger": fmt.num(s.challenger_accuracy),
                "difference": fmt.points(s.difference),
                "pvalue_holm": fmt.pvalue(s.pvalue_holm),
                "verdict": s.verdict,
                "verdict_class": s.verdict.replace(" ", "-"),
            }
            for s in slices.slices
        ],
        "regressions": ", ".join(slices.regressions) or "none",
        "improvements": ", ".join(slices.improvements) or "none",
    }


def since_champion_context(summary: RunSummary) -> dict[str, Any] | None:
    """The section's values, or None for a run without a data diff and without a gate."""
    diff, gate = summary.data_diff, summary.champion
    if diff is None and gate is None:
        return None
    champion = gate.champion if gate else None
    return {
        "champion_run": champion.run_id if champion else None,
        "data": _data_context(diff) if diff else None,
        "slices": _slices_context(gate.slices) if gate and gate.slices else None,
        "outcome": gate.outcome() if gate else None,
        "reasons": [fmt.sentence(r) for r in (gate.reasons or [gate.reason])] if gate else [],
        "facts": decision_facts(gate) if gate and gate.rule else None,
        "checks": [_check_row(c) for c in gate.checks] if gate else [],
    }


def _check_row(check: RuleCheck) -> dict[str, str | bool]:
    """One test set the gate judged the challenger on (test, and the holdout once usable)."""
    if check.difference is not None:
        evidence = (
            f"macro-F1 difference {fmt.signed(check.difference.estimate)}, lower "
            f"{fmt.pct(check.difference.confidence, 0)} bound {fmt.signed(check.difference.low)}"
            f" (margin -{fmt.num(check.margin, 3)})"
        )
    elif check.superiority is not None:
        evidence = f"one-sided McNemar p = {fmt.pvalue(check.superiority.pvalue)}"
    else:
        evidence = fmt.MISSING
    return {
        "test_set": check.test_set,
        "rows": fmt.integer(check.rows),
        "rule": check.rule,
        "evidence": evidence,
        "passed": check.passed,
    }
