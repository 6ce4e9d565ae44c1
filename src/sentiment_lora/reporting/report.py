"""The HTML and PDF report of one run, rendered only from that run directory's files.

:func:`build_report_context` turns ``fine_tuning_results.json`` into display-ready values
(every number formatted, every sentence composed here); ``templates/report.html.j2`` only
lays them out. :func:`render_report` draws the figures and writes ``report.html`` and
``report.pdf`` next to the JSON, referencing the figures by file name so that the directory
can be moved or zipped as a whole.
"""

import json
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup
from pydantic import BaseModel, ConfigDict

from sentiment_lora.io import atomic_write_text
from sentiment_lora.paths import LATEST, RESULTS_FILE, safe_name

TEMPLATE = "report.html.j2"
STYLESHEET = "report.css"
HTML_FILE = "report.html"
PDF_FILE = "report.pdf"
REQUIRED_KEYS = (
    "run_id",
    "data",
    "hyperparameter_experiments",
    "best_config",
    "test_metrics",
    "environment",
)
MISSING = "n/a"
MAX_CONFIDENT_ERRORS = 10
_VERDICT_PHRASES = {
    "better": "better than",
    "worse": "worse than",
    "not distinguishable": "not distinguishable from",
}
_NUMBER_WORDS = {2: "both", 3: "all three", 4: "all four", 5: "all five"}


class RunInfo(BaseModel):
    """One published run in a reports directory, as the index page lists it."""

    model_config = ConfigDict(frozen=True)
    run_id: str
    created_at: str | None
    best_config: str | None
    test_accuracy: float | None
    has_html: bool
    has_pdf: bool
    error: str | None = None  # why the results file could not be read, if it could not


# --- formatting -------------------------------------------------------------------------


def _num(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None else f"{value:.{digits}f}"


def _int(value: int | None) -> str:
    return MISSING if value is None else f"{value:,}"


def _pct(value: float | None, digits: int = 1) -> str:
    return MISSING if value is None else f"{value:.{digits}%}"


def _signed(value: float | None, digits: int = 4) -> str:
    return MISSING if value is None else f"{value:+.{digits}f}"


def _points(value: float) -> str:
    """A difference of two proportions in percentage points: ``+6.5``."""
    return f"{value * 100:+.1f}"


def _pvalue(p: float | None) -> str:
    """Four decimals, or scientific notation below 0.0001 (``2.6e-40``)."""
    if p is None:
        return MISSING
    return f"{p:.1e}" if 0 < p < 1e-4 else f"{p:.4f}"


def _interval(interval: Mapping[str, Any] | None, digits: int = 4) -> str:
    if not interval:
        return MISSING
    return f"{interval['low']:.{digits}f} – {interval['high']:.{digits}f}"


def _confidence_label(interval: Mapping[str, Any] | None) -> str:
    return f"{interval.get('confidence', 0.95):.0%} CI" if interval else "CI"


def _learning_rate(value: float | None) -> str:
    return MISSING if value is None else f"{value:g}"


def _seconds(value: float | None) -> str:
    if value is None:
        return MISSING
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{value:.1f} s"


def _plain(value: Any) -> str:
    """A config value as text: lists joined, None as 'default'."""
    if value is None:
        return "default"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _sentence(text: str | None) -> str:
    """``text`` ending in a full stop ('' for None)."""
    text = (text or "").strip()
    return text if not text or text.endswith((".", "!", "?")) else f"{text}."


def _join(parts: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    if len(parts) <= 1:
        return "".join(parts)
    return f"{', '.join(parts[:-1])} and {parts[-1]}"


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}" if count == 1 else f"{count:,} {word}s"


def _count_share(count: int, total: int) -> str:
    """'669 (44.6%)'."""
    return f"{_int(count)} ({_pct(count / total if total else None)})"


def _timestamp(value: Any) -> str:
    """An ISO timestamp as '2026-11-26 06:53:41 UTC' (other values as text)."""
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return _plain(value)
    if moment.utcoffset() == timedelta(0):
        return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return moment.isoformat(sep=" ")


def _elapsed(start: str | None, end: str | None) -> str | None:
    try:
        delta = datetime.fromisoformat(str(end)) - datetime.fromisoformat(str(start))
    except (TypeError, ValueError):
        return None
    return _seconds(delta.total_seconds())


# --- context ----------------------------------------------------------------------------


def _experiment(summary: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    for experiment in summary["hyperparameter_experiments"]:
        if experiment["name"] == name:
            return experiment
    return {}


def _summary_sentences(summary: Mapping[str, Any]) -> list[str]:
    """The three sentences at the top: what won, how good it is, how it beats the baselines."""
    best = summary["best_config"]
    hp = best.get("config", {})
    n_configs = len(summary["hyperparameter_experiments"])
    counts = summary["data"].get("counts", {})
    epochs = hp.get("epochs")
    details = [
        f"learning rate {_learning_rate(hp.get('learning_rate'))}",
        f"LoRA rank {hp.get('lora_r', MISSING)}",
        _plural(epochs, "epoch") if isinstance(epochs, int) else f"{epochs} epochs",
    ]
    trained_on = (
        f" on {_int(counts['train'])} SST-2 training sentences" if "train" in counts else ""
    )
    first = (
        f"Of {_plural(n_configs, 'LoRA configuration')} fine-tuned{trained_on}, "
        f"{best['name']} ({', '.join(details)}) was selected for the highest validation "
        f"macro-F1 ({_num(best.get('validation_metrics', {}).get('f1_macro'))})."
    )
    test = summary["test_metrics"]
    tests = summary.get("statistical_tests") or {}

    def with_interval(value: float | None, key: str) -> str:
        interval = tests.get(key)
        if not interval:
            return _num(value)
        return f"{_num(value)} ({_confidence_label(interval)} {_interval(interval)})"

    second = (
        f"On the {_int(test.get('n'))} held-out test sentences it reaches accuracy "
        f"{with_interval(test['accuracy'], 'accuracy')} and macro-F1 "
        f"{with_interval(test.get('f1_macro'), 'f1_macro')}."
    )
    comparisons = tests.get("baselines") or []
    if not comparisons:
        third = "No baseline comparison was recorded for this run."
    else:
        verdicts = {c["verdict"] for c in comparisons}
        items = [
            f"{c['baseline']} ({_points(c['accuracy_difference']['estimate'])} accuracy points, "
            f"McNemar p = {_pvalue(c['mcnemar']['pvalue'])})"
            for c in comparisons
        ]
        if len(verdicts) == 1 and len(comparisons) > 1:
            phrase = _VERDICT_PHRASES.get(next(iter(verdicts)), next(iter(verdicts)))
            quantifier = _NUMBER_WORDS.get(len(comparisons), f"all {len(comparisons)}")
            third = f"It is {phrase} {quantifier} baselines: {_join(items)}."
        else:
            parts = [
                f"{_VERDICT_PHRASES.get(c['verdict'], c['verdict'])} {item}"
                for c, item in zip(comparisons, items, strict=True)
            ]
            third = f"It is {_join(parts)}."
    return [first, second, third]


def summary_markdown(summary: Mapping[str, Any], *, links: Mapping[str, str] | None = None) -> str:
    """Markdown digest of a run for a Prefect artifact: the summary sentences and verdicts."""
    lines = [f"# Run `{summary['run_id']}`", "", *(f"{s}\n" for s in _summary_sentences(summary))]
    comparisons = (summary.get("statistical_tests") or {}).get("baselines") or []
    if comparisons:
        lines += [
            "| baseline | accuracy difference (95% CI) | McNemar p | verdict |",
            "|---|---|---|---|",
        ]
        for c in comparisons:
            diff = c["accuracy_difference"]
            lines.append(
                f"| {c['baseline']} | {_signed(diff['estimate'])} ({_interval(diff)}) | "
                f"{_pvalue(c['mcnemar']['pvalue'])} | {c['verdict']} |"
            )
    configs = (summary.get("statistical_tests") or {}).get("configs") or {}
    if configs.get("conclusion"):
        lines += ["", _sentence(configs["conclusion"])]
    if links:
        lines += ["", " · ".join(f"[{name}]({url})" for name, url in links.items())]
    return "\n".join(lines) + "\n"


def _data_context(summary: Mapping[str, Any]) -> dict[str, Any]:
    data = summary["data"]
    counts = dict(data.get("counts", {}))
    config = data.get("config", {})
    balance = data.get("class_balance", {})
    classes: list[str] = []
    for split in balance.values():
        classes.extend(c for c in split if c not in classes)
    splits = []
    for split, by_class in balance.items():
        total = sum(by_class.values())
        splits.append(
            {
                "name": split,
                "rows": _int(counts.get(split, total)),
                "by_class": [_count_share(by_class.get(c, 0), total) for c in classes],
            }
        )
    used: set[str] = set()

    def take(key: str) -> int | None:
        used.add(key)
        return counts.get(key)

    steps = []
    train_raw, removed_short = take("train_raw"), take("removed_min_words")
    if train_raw is not None:
        steps.append(("read train.tsv", "train", "", _int(train_raw)))
    if removed_short is not None:
        remaining = _int(train_raw - removed_short) if train_raw is not None else ""
        steps.append(
            (
                f"drop sentences under {config.get('min_words', '?')} words",
                "train",
                _int(removed_short),
                remaining,
            )
        )
    after_train, after_validation = take("train_after_split"), take("validation_after_split")
    if after_train is not None and after_validation is not None:
        fraction = config.get("validation_fraction")
        share = f"{fraction:.0%} " if isinstance(fraction, int | float) else ""
        steps.append(
            (
                f"stratified {share}validation split (seed {config.get('seed', '?')})",
                "train / validation",
                "",
                f"{_int(after_train)} / {_int(after_validation)}",
            )
        )
    for split, limit_key in (
        ("train", "max_train_samples"),
        ("validation", "max_validation_samples"),
    ):
        removed = take(f"removed_by_{split}_cap")
        if removed is not None:
            limit = config.get(limit_key)
            steps.append(
                (
                    f"cap at {limit_key} = {_int(limit) if limit is not None else 'none'}",
                    split,
                    _int(removed),
                    _int(counts.get(split)),
                )
            )
    test_raw, test = take("test_raw"), counts.get("test")
    if test is not None:
        removed = _int(test_raw - test) if test_raw is not None else ""
        steps.append(("dev.tsv as test set (not filtered)", "test", removed, _int(test)))
    used.update(("train", "validation", "test"))
    other_counts = [(key, _int(value)) for key, value in counts.items() if key not in used]
    overlap = data.get("test_train_overlap")
    if overlap is None:
        overlap_sentence = "The overlap of test and training sentences was not recorded."
    elif overlap == 0:
        overlap_sentence = "No test sentence occurs verbatim in the training data."
    else:
        overlap_sentence = (
            f"{_plural(overlap, 'test sentence')} also occur verbatim in the training data; "
            "test scores may be slightly optimistic."
        )
    return {
        "source": str(data.get("source", MISSING)),
        "hashes": sorted((data.get("source_hashes") or {}).items()),
        "classes": classes,
        "splits": splits,
        "steps": [
            {"step": s, "split": sp, "removed": r, "remaining": rem} for s, sp, r, rem in steps
        ],
        "other_counts": other_counts,
        "overlap_sentence": overlap_sentence,
        "settings": [(key, _plain(value)) for key, value in config.items()],
    }


def _search_context(summary: Mapping[str, Any]) -> dict[str, Any]:
    best = summary["best_config"]["name"]
    configs, results = [], []
    for e in summary["hyperparameter_experiments"]:
        hp = e.get("config", {})
        configs.append(
            {
                "name": e["name"],
                "is_best": e["name"] == best,
                "learning_rate": _learning_rate(hp.get("learning_rate")),
                "epochs": _plain(hp.get("epochs")),
                "lora_r": _plain(hp.get("lora_r")),
                "lora_alpha": _plain(hp.get("lora_alpha")),
                "lora_dropout": _plain(hp.get("lora_dropout")),
                "batch_size": _plain(hp.get("batch_size")),
                "weight_decay": _plain(hp.get("weight_decay")),
                "warmup_ratio": _plain(hp.get("warmup_ratio")),
                "target_modules": _plain(e.get("target_modules") or hp.get("target_modules")),
            }
        )
        validation, test = e.get("validation_metrics", {}), e.get("test_metrics", {})
        trainable, total = e.get("trainable_parameters"), e.get("total_parameters")
        results.append(
            {
                "name": e["name"],
                "is_best": e["name"] == best,
                "val_accuracy": _num(validation.get("accuracy")),
                "val_f1": _num(validation.get("f1_macro")),
                "val_loss": _num(validation.get("loss")),
                "best_epoch": _plain(e.get("best_epoch")),
                "test_accuracy": _num(test.get("accuracy")),
                "test_f1": _num(test.get("f1_macro")),
                "seconds": _num(e.get("training_seconds"), 1),
                "throughput": _num(e.get("examples_per_second"), 1),
                "trainable": _int(trainable),
                "trainable_share": _pct(trainable / total, 2) if trainable and total else MISSING,
            }
        )
    return {
        "configs": configs,
        "results": results,
        "best": best,
        "selection_rule": summary["best_config"].get("selection_rule", MISSING),
    }


def _test_context(summary: Mapping[str, Any]) -> dict[str, Any]:
    metrics = summary["test_metrics"]
    tests = summary.get("statistical_tests") or {}
    headline = [
        ("Accuracy", _num(metrics["accuracy"]), _interval(tests.get("accuracy"))),
        ("Macro-F1", _num(metrics.get("f1_macro")), _interval(tests.get("f1_macro"))),
        ("AUC-ROC", _num(metrics.get("auc_roc")), ""),
    ]
    averaged = [
        (label, _num(metrics.get(f"{key}_macro")), _num(metrics.get(f"{key}_weighted")))
        for label, key in (("Precision", "precision"), ("Recall", "recall"), ("F1", "f1"))
    ]
    per_class = [
        {
            "name": name,
            "precision": _num(m.get("precision")),
            "recall": _num(m.get("recall")),
            "f1": _num(m.get("f1")),
            "support": _int(m.get("support")),
        }
        for name, m in (metrics.get("per_class") or {}).items()
    ]
    return {
        "n": _int(metrics.get("n")),
        "headline": headline,
        "interval_label": _confidence_label(tests.get("accuracy")),
        "n_resamples": _int(tests.get("n_resamples")),
        "averaged": averaged,
        "per_class": per_class,
    }


def _table(table: Sequence[Sequence[int]]) -> list[list[str]]:
    return [[_int(v) for v in row] for row in table]


def _baselines_context(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    baselines = summary.get("baselines") or {}
    tests = summary.get("statistical_tests") or {}
    if not baselines and not tests.get("baselines"):
        return None
    best = summary["best_config"]["name"]
    best_metrics = summary["test_metrics"]
    rows = [
        {
            "name": best,
            "description": "the selected fine-tuned config",
            "is_best": True,
            "accuracy": _num(best_metrics["accuracy"]),
            "f1_macro": _num(best_metrics.get("f1_macro")),
            "auc_roc": _num(best_metrics.get("auc_roc")),
        }
    ]
    for name, baseline in baselines.items():
        m = baseline.get("test_metrics", {})
        rows.append(
            {
                "name": name,
                "description": baseline.get("description", ""),
                "is_best": False,
                "accuracy": _num(m.get("accuracy")),
                "f1_macro": _num(m.get("f1_macro")),
                "auc_roc": _num(m.get("auc_roc")),
            }
        )
    comparisons = []
    for c in tests.get("baselines") or []:
        acc, f1 = c["accuracy_difference"], c["f1_macro_difference"]
        comparisons.append(
            {
                "baseline": c["baseline"],
                "model": c.get("model", best),
                "table": _table(c["mcnemar"]["table"]),
                "discordant": _int(c["mcnemar"].get("discordant")),
                "statistic": _num(c["mcnemar"].get("statistic"), 2),
                "pvalue": _pvalue(c["mcnemar"]["pvalue"]),
                "method": c["mcnemar"].get("method", MISSING),
                "accuracy_difference": _signed(acc["estimate"]),
                "accuracy_interval": _interval(acc),
                "f1_difference": _signed(f1["estimate"]),
                "f1_interval": _interval(f1),
                "verdict": c["verdict"],
                "verdict_class": c["verdict"].replace(" ", "-"),
            }
        )
    return {
        "rows": rows,
        "comparisons": comparisons,
        "alpha": _plain(tests.get("alpha")),
        "n_resamples": _int(tests.get("n_resamples")),
        "interval_label": _confidence_label(
            (tests.get("baselines") or [{}])[0].get("accuracy_difference")
        ),
    }


def _configs_context(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    configs = (summary.get("statistical_tests") or {}).get("configs")
    if not configs:
        return None
    q = configs.get("cochran_q")
    return {
        "cochran_q": None
        if q is None
        else {
            "statistic": _num(q["statistic"], 3),
            "df": _plain(q.get("df")),
            "pvalue": _pvalue(q["pvalue"]),
            "models": ", ".join(q.get("models", [])),
        },
        "pairwise": [
            {
                "model_a": p["model_a"],
                "model_b": p["model_b"],
                "table": _table(p["mcnemar"]["table"]),
                "discordant": _int(p["mcnemar"].get("discordant")),
                "pvalue": _pvalue(p["mcnemar"]["pvalue"]),
                "method": p["mcnemar"].get("method", MISSING),
                "pvalue_holm": _pvalue(p["pvalue_holm"]),
                "significant": "yes" if p["significant"] else "no",
            }
            for p in configs.get("pairwise", [])
        ],
        "conclusion": _sentence(configs.get("conclusion")),
        "distinguishable_from": ", ".join(configs.get("best_distinguishable_from") or []) or "none",
    }


def _calibration_context(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    calibration = summary.get("calibration")
    if not calibration:
        return None
    before, after = calibration["before"], calibration["after"]
    temperature = calibration["temperature"]
    rows = [
        (label, _num(before[key]), _num(after[key]), _signed(after[key] - before[key]))
        for label, key in (("Expected calibration error (ECE)", "ece"), ("Brier score", "brier"))
    ]
    if abs(temperature - 1) < 1e-3:
        effect = "leaves the probabilities essentially unchanged"
    elif temperature < 1:
        effect = "sharpens the probabilities (the model was under-confident on validation)"
    else:
        effect = "softens the probabilities (the model was over-confident on validation)"
    change = "lowered" if after["ece"] < before["ece"] else "did not lower"
    sentence = (
        f"A temperature of {temperature:.3f}, fitted on the validation split, {effect}; "
        f"on the test set it {change} the ECE ({_num(before['ece'])} to {_num(after['ece'])}) "
        f"and changed the Brier score from {_num(before['brier'])} to {_num(after['brier'])}."
    )
    return {
        "temperature": f"{temperature:.4f}",
        "n_bins": _plain(calibration.get("n_bins")),
        "rows": rows,
        "sentence": sentence,
    }


def _error_row(error: Mapping[str, Any], *, threshold: float | None = None) -> dict[str, Any]:
    return {
        "sentence": error["sentence"],
        "label": error["label"],
        "predicted": error["predicted"],
        "confidence": _num(error["confidence"], 3),
        "tags": ", ".join(error.get("tags") or []) or "–",
        "above_threshold": threshold is not None and error["confidence"] > threshold,
    }


def _errors_context(summary: Mapping[str, Any]) -> dict[str, Any] | None:
    analysis = summary.get("error_analysis")
    if not analysis:
        return None
    counts = [
        ("All errors", _int(analysis["n_errors"]), _pct(analysis.get("error_rate")), "of all"),
        (
            "False positives (negative read as positive)",
            _int(analysis["false_positives"]),
            _pct(analysis.get("false_positive_rate")),
            "of negative sentences",
        ),
        (
            "False negatives (positive read as negative)",
            _int(analysis["false_negatives"]),
            _pct(analysis.get("false_negative_rate")),
            "of positive sentences",
        ),
    ]
    confidence = [
        (label, _int(s["count"]), _num(s.get("mean"), 3), _num(s.get("median"), 3))
        for label, s in (
            ("correct", analysis["confidence_correct"]),
            ("wrong", analysis["confidence_wrong"]),
        )
    ]
    patterns = [
        {
            "name": p["name"],
            "description": p.get("description", ""),
            "count": _int(p["count"]),
            "share": _pct(p.get("share_of_errors")),
            "error_rate": _pct(p.get("error_rate")),
            "example": (p.get("examples") or [""])[0],
        }
        for p in analysis.get("patterns", [])
    ]
    threshold = analysis.get("high_confidence_threshold")
    high = analysis.get("high_confidence_errors", [])
    by_index = {e["index"]: e for e in [*analysis.get("errors", []), *high]}
    confident = sorted(by_index.values(), key=lambda e: (-e["confidence"], e["index"]))
    clusters = analysis.get("clusters") or {}
    return {
        "n": _int(analysis.get("n")),
        "overall_rate": _pct(analysis.get("error_rate")),
        "counts": counts,
        "confidence": confidence,
        "patterns": patterns,
        "threshold": _num(threshold, 2),
        "high_count": len(high),
        "high_sentence": (
            f"{_plural(len(high), 'error')} {'has' if len(high) == 1 else 'have'} a confidence "
            f"above {_num(threshold, 2)}."
        ),
        "confident_errors": [
            _error_row(e, threshold=threshold) for e in confident[:MAX_CONFIDENT_ERRORS]
        ],
        "n_listed": min(len(confident), MAX_CONFIDENT_ERRORS),
        "clusters": {
            "method": clusters.get("method", MISSING),
            "k": _plain(clusters.get("k")),
            "silhouette": _num(clusters.get("silhouette"), 3),
            "note": _sentence(clusters.get("note")),
            "groups": [
                {
                    "id": c["cluster_id"],
                    "size": _int(c["size"]),
                    "false_positives": _int(c.get("false_positives")),
                    "false_negatives": _int(c.get("false_negatives")),
                    "terms": ", ".join(c.get("terms") or []) or "–",
                    "tags": ", ".join(c.get("dominant_tags") or []) or "none",
                    "examples": list(c.get("central_examples") or []),
                }
                for c in clusters.get("clusters", [])
            ],
        },
        "suggestions": list(analysis.get("suggestions") or []),
    }


def _reproducibility_context(summary: Mapping[str, Any]) -> dict[str, Any]:
    env = summary["environment"]
    prefect = summary.get("prefect") or {}
    timings = summary.get("timings") or {}
    seeds = env.get("seeds") or {}
    flow_run = prefect.get("flow_run_id")
    if flow_run and prefect.get("flow_run_name"):
        flow_run = f"{flow_run} ({prefect['flow_run_name']})"
    facts = [
        ("Run id", summary["run_id"]),
        ("Profile", _plain(summary.get("profile"))),
        ("Base model", _plain(summary.get("model"))),
        ("Python", _plain(env.get("python"))),
        ("Platform", _plain(env.get("platform"))),
        ("Device", _plain(env.get("device"))),
        ("Torch threads", _plain(env.get("torch_threads"))),
        *((f"Seed ({name})", _plain(seed)) for name, seed in seeds.items()),
        ("Git commit", env.get("git_commit") or "not recorded (not a git checkout)"),
        ("Prefect flow run", flow_run or "not recorded"),
    ]
    timing_rows = [
        (key.replace("_", " "), _timestamp(value) if key.endswith("_at") else _plain(value))
        for key, value in timings.items()
    ]
    if summary.get("created_at"):
        timing_rows.append(("results written at", _timestamp(summary["created_at"])))
    elapsed = _elapsed(timings.get("started_at"), summary.get("created_at"))
    if elapsed:
        timing_rows.append(("flow start to results", elapsed))
    total_training = sum(
        e.get("training_seconds") or 0 for e in summary["hyperparameter_experiments"]
    )
    timing_rows.append(("training, all configs", _seconds(total_training)))
    return {
        "facts": facts,
        "packages": [(name, v or "not installed") for name, v in env.get("packages", {}).items()],
        "hashes": sorted((env.get("data_hashes") or {}).items()),
        "training": [
            (key, _plain(value)) for key, value in (summary.get("training") or {}).items()
        ],
        "timings": timing_rows,
    }


def _champion_context(summary: Mapping[str, Any]) -> dict[str, str] | None:
    decision = summary.get("champion")
    if not decision:
        return None
    return {
        "outcome": "promoted to champion" if decision["promoted"] else "the champion was kept",
        "reason": _sentence(decision["reason"]),
    }


def build_report_context(summary: Mapping[str, Any], *, plots: Mapping[str, str]) -> dict[str, Any]:
    """Everything the template shows, formatted: strings, lists of rows and figure names.

    ``summary`` is a parsed ``fine_tuning_results.json``; ``plots`` maps figure keys (see
    :func:`sentiment_lora.reporting.plots.render_plots`) to file names next to the report. Sections
    that an older run does not have (baselines, calibration, ...) come out as None.
    """
    return {
        "run_id": str(summary["run_id"]),
        "created_at": _timestamp(summary.get("created_at")),
        "profile": _plain(summary.get("profile")),
        "model": _plain(summary.get("model")),
        "best_name": summary["best_config"]["name"],
        "summary_sentences": _summary_sentences(summary),
        "champion": _champion_context(summary),
        "data": _data_context(summary),
        "search": _search_context(summary),
        "test": _test_context(summary),
        "baselines": _baselines_context(summary),
        "configs": _configs_context(summary),
        "calibration": _calibration_context(summary),
        "errors": _errors_context(summary),
        "repro": _reproducibility_context(summary),
        "plots": dict(plots),
    }


# --- files ------------------------------------------------------------------------------


def default_templates_dir() -> Path:
    """``templates/`` of the project: two levels above this package (``src/`` layout)."""
    return Path(__file__).resolve().parents[3] / "templates"


def load_results(run_dir: Path | str) -> dict[str, Any]:
    """Parse ``run_dir/fine_tuning_results.json``; errors name the file and what is wrong."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: results file not found (is {run_dir} a run directory?)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(summary, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(summary).__name__}")
    missing = [key for key in REQUIRED_KEYS if key not in summary]
    if missing:
        raise ValueError(f"{path}: missing required keys: {', '.join(missing)}")
    return summary


def _atomic_write_bytes(path: Path, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _environment(templates_dir: Path) -> Environment:
    if not (templates_dir / TEMPLATE).is_file():
        raise FileNotFoundError(f"report template not found: {templates_dir / TEMPLATE}")
    return Environment(
        loader=FileSystemLoader(templates_dir),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def render_html(run_dir: Path | str, *, templates_dir: Path | str | None = None) -> Path:
    """Draw the figures and write ``run_dir/report.html`` from the run's JSON; return its path.

    The stylesheet is inlined and figures are referenced by file name, so the run directory
    is self-contained.
    """
    from sentiment_lora.reporting.plots import (
        render_plots,  # matplotlib: imported only when drawing
    )

    run_dir = Path(run_dir)
    templates = Path(templates_dir) if templates_dir is not None else default_templates_dir()
    env = _environment(templates)
    summary = load_results(run_dir)
    try:
        plots = render_plots(run_dir, summary=summary)
        context = build_report_context(summary, plots=plots)
    except KeyError as exc:
        raise ValueError(f"{run_dir / RESULTS_FILE}: missing key {exc}") from exc
    css = Markup((templates / STYLESHEET).read_text(encoding="utf-8"))
    html = env.get_template(TEMPLATE).render(**context, css=css)
    return atomic_write_text(run_dir / HTML_FILE, html)


def render_pdf(run_dir: Path | str, *, templates_dir: Path | str | None = None) -> Path:
    """Write ``run_dir/report.pdf`` from ``report.html`` (rendered first if missing)."""
    from weasyprint import HTML

    run_dir = Path(run_dir)
    html_path = run_dir / HTML_FILE
    if not html_path.is_file():
        render_html(run_dir, templates_dir=templates_dir)
    html = html_path.read_text(encoding="utf-8")
    pdf = HTML(string=html, base_url=str(run_dir)).write_pdf()
    return _atomic_write_bytes(run_dir / PDF_FILE, pdf)


def render_report(
    run_dir: Path | str, *, templates_dir: Path | str | None = None
) -> tuple[Path, Path]:
    """Re-render ``report.html`` and ``report.pdf`` of a run from its files alone."""
    html = render_html(run_dir, templates_dir=templates_dir)
    return html, render_pdf(run_dir, templates_dir=templates_dir)


def _run_info(run_dir: Path) -> RunInfo:
    has = {"has_html": (run_dir / HTML_FILE).is_file(), "has_pdf": (run_dir / PDF_FILE).is_file()}
    try:
        summary = load_results(run_dir)
        accuracy = summary["test_metrics"].get("accuracy")
        return RunInfo(
            run_id=run_dir.name,
            created_at=summary.get("created_at"),
            best_config=summary["best_config"].get("name"),
            test_accuracy=accuracy if isinstance(accuracy, int | float) else None,
            **has,
        )
    except (OSError, ValueError, AttributeError, TypeError) as exc:
        return RunInfo(
            run_id=run_dir.name,
            created_at=None,
            best_config=None,
            test_accuracy=None,
            error=str(exc),
            **has,
        )


def _is_run_dir(path: Path) -> bool:
    if path.name == LATEST or path.name.startswith(".") or path.is_symlink():
        return False
    try:
        safe_name(path.name)
    except ValueError:
        return False
    return path.is_dir() and (path / RESULTS_FILE).is_file()


def list_runs(reports_dir: Path | str) -> list[RunInfo]:
    """Published runs in ``reports_dir`` (directories holding a results file), newest first.

    Hidden staging directories (``.<id>.partial``), the ``latest`` link and names that are
    not safe path components are skipped. Run ids start with a UTC timestamp, so sorting
    them in reverse puts the newest first.
    """
    reports_dir = Path(reports_dir)
    if not reports_dir.is_dir():
        return []
    runs: Iterable[Path] = (p for p in reports_dir.iterdir() if _is_run_dir(p))
    return [_run_info(p) for p in sorted(runs, key=lambda p: p.name, reverse=True)]
