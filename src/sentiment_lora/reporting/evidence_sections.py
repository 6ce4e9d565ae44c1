"""Report sections about the evidence: baselines, config comparison, calibration, errors.

Each function returns display-ready values for ``templates/report.html.j2``, or None when
the run has no such section (a run written before the evidence existed).
"""

from typing import Any

from sentiment_lora.evidence.error_analysis import ErrorExample
from sentiment_lora.reporting import format as fmt
from sentiment_lora.reporting.results import RunSummary

MAX_CONFIDENT_ERRORS = 10


def _table(table: list[list[int]]) -> list[list[str]]:
    return [[fmt.integer(v) for v in row] for row in table]


def baselines_context(summary: RunSummary) -> dict[str, Any] | None:
    """Baseline metrics and the best model's McNemar/bootstrap comparison with each."""
    tests = summary.statistical_tests
    comparisons = tests.baselines if tests else []
    if not summary.baselines and not comparisons:
        return None
    best, best_metrics = summary.best_config.name, summary.test_metrics
    rows = [
        {
            "name": best,
            "description": "the selected fine-tuned config",
            "is_best": True,
            "accuracy": fmt.num(best_metrics.accuracy),
            "f1_macro": fmt.num(best_metrics.f1_macro),
            "auc_roc": fmt.num(best_metrics.auc_roc),
        }
    ] + [
        {
            "name": name,
            "description": baseline.description,
            "is_best": False,
            "accuracy": fmt.num(baseline.test_metrics.accuracy),
            "f1_macro": fmt.num(baseline.test_metrics.f1_macro),
            "auc_roc": fmt.num(baseline.test_metrics.auc_roc),
        }
        for name, baseline in summary.baselines.items()
    ]
    return {
        "rows": rows,
        "comparisons": [
            {
                "baseline": c.baseline,
                "model": c.model,
                "table": _table(c.mcnemar.table),
                "discordant": fmt.integer(c.mcnemar.discordant),
                "statistic": fmt.num(c.mcnemar.statistic, 2),
                "pvalue": fmt.pvalue(c.mcnemar.pvalue),
                "method": c.mcnemar.method,
                "accuracy_difference": fmt.signed(c.accuracy_difference.estimate),
                "accuracy_interval": fmt.interval(c.accuracy_difference),
                "f1_difference": fmt.signed(c.f1_macro_difference.estimate),
                "f1_interval": fmt.interval(c.f1_macro_difference),
                "verdict": c.verdict,
                "verdict_class": c.verdict.replace(" ", "-"),
            }
            for c in comparisons
        ],
        "alpha": fmt.plain(tests.alpha if tests else None),
        "n_resamples": fmt.integer(tests.n_resamples if tests else None),
        "interval_label": fmt.confidence_label(
            comparisons[0].accuracy_difference if comparisons else None
        ),
    }


def configs_context(summary: RunSummary) -> dict[str, Any] | None:
    """Cochran's Q across configs and pairwise McNemar with Holm correction."""
    if summary.statistical_tests is None:
        return None
    configs = summary.statistical_tests.configs
    q = configs.cochran_q
    return {
        "cochran_q": None
        if q is None
        else {
            "statistic": fmt.num(q.statistic, 3),
            "df": fmt.plain(q.df),
            "pvalue": fmt.pvalue(q.pvalue),
            "models": ", ".join(q.models),
        },
        "pairwise": [
            {
                "model_a": p.model_a,
                "model_b": p.model_b,
                "table": _table(p.mcnemar.table),
                "discordant": fmt.integer(p.mcnemar.discordant),
                "pvalue": fmt.pvalue(p.mcnemar.pvalue),
                "method": p.mcnemar.method,
                "pvalue_holm": fmt.pvalue(p.pvalue_holm),
                "significant": "yes" if p.significant else "no",
            }
            for p in configs.pairwise
        ],
        "conclusion": fmt.sentence(configs.conclusion),
        "distinguishable_from": ", ".join(configs.best_distinguishable_from) or "none",
    }


def calibration_context(summary: RunSummary) -> dict[str, Any] | None:
    """ECE and Brier before and after temperature scaling, in a table and a sentence."""
    calibration = summary.calibration
    if calibration is None:
        return None
    before, after, temperature = calibration.before, calibration.after, calibration.temperature
    rows = [
        (label, fmt.num(b), fmt.num(a), fmt.signed(a - b))
        for label, b, a in (
            ("Expected calibration error (ECE)", before.ece, after.ece),
            ("Brier score", before.brier, after.brier),
        )
    ]
    if abs(temperature - 1) < 1e-3:
        effect = "leaves the probabilities essentially unchanged"
    elif temperature < 1:
        effect = "sharpens the probabilities (the model was under-confident on validation)"
    else:
        effect = "softens the probabilities (the model was over-confident on validation)"
    change = "lowered" if after.ece < before.ece else "did not lower"
    sentence = (
        f"A temperature of {fmt.num(temperature, 3)}, fitted on the validation split, {effect}; "
        f"on the test set it {change} the ECE ({fmt.num(before.ece)} to {fmt.num(after.ece)}) "
        f"and changed the Brier score from {fmt.num(before.brier)} to {fmt.num(after.brier)}."
    )
    return {
        "temperature": fmt.num(temperature),
        "n_bins": fmt.plain(calibration.n_bins),
        "rows": rows,
        "sentence": sentence,
    }


def _error_row(error: ErrorExample, *, threshold: float) -> dict[str, Any]:
    return {
        "sentence": error.sentence,
        "label": error.label,
        "predicted": error.predicted,
        "confidence": fmt.num(error.confidence, 3),
        "tags": ", ".join(error.tags) or "–",
        "above_threshold": error.confidence > threshold,
    }


def errors_context(summary: RunSummary) -> dict[str, Any] | None:
    """Error counts, confidence, pattern tags, the most confident errors and the clusters."""
    analysis = summary.error_analysis
    if analysis is None:
        return None
    counts = [
        ("All errors", fmt.integer(analysis.n_errors), fmt.pct(analysis.error_rate), "of all"),
        (
            "False positives (negative read as positive)",
            fmt.integer(analysis.false_positives),
            fmt.pct(analysis.false_positive_rate),
            "of negative sentences",
        ),
        (
            "False negatives (positive read as negative)",
            fmt.integer(analysis.false_negatives),
            fmt.pct(analysis.false_negative_rate),
            "of positive sentences",
        ),
    ]
    confidence = [
        (label, fmt.integer(s.count), fmt.num(s.mean, 3), fmt.num(s.median, 3))
        for label, s in (
            ("correct", analysis.confidence_correct),
            ("wrong", analysis.confidence_wrong),
        )
    ]
    patterns = [
        {
            "name": p.name,
            "description": p.description,
            "count": fmt.integer(p.count),
            "share": fmt.pct(p.share_of_errors),
            "error_rate": fmt.pct(p.error_rate),
            "example": (p.examples or [""])[0],
        }
        for p in analysis.patterns
    ]
    threshold, high = analysis.high_confidence_threshold, analysis.high_confidence_errors
    by_index = {e.index: e for e in [*analysis.errors, *high]}
    confident = sorted(by_index.values(), key=lambda e: (-e.confidence, e.index))
    clusters = analysis.clusters
    return {
        "n": fmt.integer(analysis.n),
        "overall_rate": fmt.pct(analysis.error_rate),
        "counts": counts,
        "confidence": confidence,
        "patterns": patterns,
        "threshold": fmt.num(threshold, 2),
        "high_count": len(high),
        "high_sentence": (
            f"{fmt.plural(len(high), 'error')} {'has' if len(high) == 1 else 'have'} a "
            f"confidence above {fmt.num(threshold, 2)}."
        ),
        "confident_errors": [
            _error_row(e, threshold=threshold) for e in confident[:MAX_CONFIDENT_ERRORS]
        ],
        "n_listed": min(len(confident), MAX_CONFIDENT_ERRORS),
        "clusters": {
            "method": clusters.method,
            "k": fmt.plain(clusters.k),
            "silhouette": fmt.num(clusters.silhouette, 3),
            "note": fmt.sentence(clusters.note),
            "groups": [
                {
                    "id": c.cluster_id,
                    "size": fmt.integer(c.size),
                    "false_positives": fmt.integer(c.false_positives),
                    "false_negatives": fmt.integer(c.false_negatives),
                    "terms": ", ".join(c.terms) or "–",
                    "tags": ", ".join(c.dominant_tags) or "none",
                    "examples": list(c.central_examples),
                }
                for c in clusters.clusters
            ],
        },
        "suggestions": list(analysis.suggestions),
    }
