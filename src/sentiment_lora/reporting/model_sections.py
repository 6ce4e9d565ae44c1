"""Report sections about the data and the models: data, hyperparameter search, test results.

Each function turns part of a :class:`RunSummary` into display-ready values (strings and rows)
for ``templates/report.html.j2``.
"""

from typing import Any

from sentiment_lora.config import LoraHyperparams
from sentiment_lora.reporting import format as fmt
from sentiment_lora.reporting.results import DataSummary, Experiment, RunSummary


def _preparation_steps(summary: RunSummary) -> tuple[list[dict[str, str]], set[str]]:
    """Rows of the data-preparation table and the count keys they used."""
    counts, config = summary.data.counts, summary.data.config
    used: set[str] = set()

    def take(key: str) -> int | None:
        used.add(key)
        return counts.get(key)

    steps: list[tuple[str, str, str, str]] = []
    train_raw = take("train_raw")
    if train_raw is not None:
        steps.append(("read train.tsv", "train", "", fmt.integer(train_raw)))
    roots, inside = take("root_sentences"), take("removed_inside_validation")
    if roots is not None and inside is not None:  # the sentence-level split
        n_validation = counts.get("validation_after_split", counts.get("validation"))
        steps.append(
            (
                f"hold out {fmt.integer(n_validation)} of {fmt.integer(roots)} root sentences "
                f"(inside no other row), stratified, seed {config.seed}",
                "validation",
                "",
                fmt.integer(n_validation),
            )
        )
        left = train_raw - n_validation - inside if train_raw is not None else None
        steps.append(
            (
                "drop training rows inside a validation sentence",
                "train",
                fmt.integer(inside),
                fmt.integer(left) if left is not None else "",
            )
        )
    removed_short = take("removed_min_words")
    if removed_short is not None:
        remaining = counts.get("train_after_split") if roots is not None else None
        if remaining is None and train_raw is not None:
            remaining = train_raw - removed_short
        steps.append(
            (
                f"drop sentences under {config.min_words} words",
                "train",
                fmt.integer(removed_short),
                fmt.integer(remaining) if remaining is not None else "",
            )
        )
    after_train, after_validation = take("train_after_split"), take("validation_after_split")
    if roots is None and after_train is not None and after_validation is not None:
        steps.append(  # a run from before the sentence-level split: a random row split
            (
                f"stratified {fmt.pct(config.validation_fraction, 0)} validation split "
                f"(seed {config.seed})",
                "train / validation",
                "",
                f"{fmt.integer(after_train)} / {fmt.integer(after_validation)}",
            )
        )
    for split, limit_key in (
        ("train", "max_train_samples"),
        ("validation", "max_validation_samples"),
    ):
        removed = take(f"removed_by_{split}_cap")
        if removed is not None and (roots is None or split == "train"):
            limit = getattr(config, limit_key)
            steps.append(
                (
                    f"cap at {limit_key} = {fmt.integer(limit) if limit is not None else 'none'}",
                    split,
                    fmt.integer(removed),
                    fmt.integer(counts.get(split)),
                )
            )
    test_raw, test = take("test_raw"), counts.get("test")
    if test is not None:
        removed_test = fmt.integer(test_raw - test) if test_raw is not None else ""
        steps.append(
            ("dev.tsv as test set (not filtered)", "test", removed_test, fmt.integer(test))
        )
    used.update(("train", "validation", "test"))
    rows = [{"step": s, "split": sp, "removed": r, "remaining": rem} for s, sp, r, rem in steps]
    return rows, used


def _overlap_sentence(overlap: int | None) -> str:
    if overlap is None:
        return "The overlap of test and training sentences was not recorded."
    if overlap == 0:
        return "No test sentence occurs verbatim in the training data."
    return (
        f"{fmt.plural(overlap, 'test sentence')} also occur verbatim in the training data; "
        "test scores may be slightly optimistic."
    )


def _inside_sentence(data: DataSummary) -> str:
    """How many validation and test rows occur inside a training row (the leak check)."""
    if data.validation_inside_train is None or data.test_inside_train is None:
        return "Whether validation rows occur inside training rows was not checked."
    return (
        f"Inside a training row (as whole words, case and spacing ignored): "
        f"{fmt.integer(data.validation_inside_train)} of "
        f"{fmt.integer(data.counts.get('validation', 0))} validation rows and "
        f"{fmt.integer(data.test_inside_train)} of {fmt.integer(data.counts.get('test', 0))} "
        "test rows."
    )


def data_context(summary: RunSummary) -> dict[str, Any]:
    """The data section: source, preparation steps, class balance, overlap."""
    data = summary.data
    classes: list[str] = []
    for split in data.class_balance.values():
        classes.extend(c for c in split if c not in classes)
    splits = []
    for split, by_class in data.class_balance.items():
        total = sum(by_class.values())
        splits.append(
            {
                "name": split,
                "rows": fmt.integer(data.counts.get(split, total)),
                "by_class": [fmt.count_share(by_class.get(c, 0), total) for c in classes],
            }
        )
    steps, used = _preparation_steps(summary)
    overlap_sentence = " ".join(
        (_overlap_sentence(data.test_train_overlap), _inside_sentence(data))
    )
    return {
        "source": data.source,
        "hashes": sorted(data.source_hashes.items()),
        "classes": classes,
        "splits": splits,
        "steps": steps,
        "other_counts": [
            (key, fmt.integer(value)) for key, value in data.counts.items() if key not in used
        ],
        "overlap_sentence": overlap_sentence,
        "settings": [(key, fmt.plain(value)) for key, value in data.config],
    }


def search_context(summary: RunSummary) -> dict[str, Any]:
    """The hyperparameter search section: every config's settings and results."""
    best = summary.best_config.name
    configs, results = [], []
    for e in summary.hyperparameter_experiments:
        t = e.training
        hp = t.hyperparams
        if e.members:  # an ensemble has no settings of its own: its members have them
            configs.append(_ensemble_config_row(e, is_best=e.name == best))
        else:
            configs.append(
                {
                    "name": e.name,
                    "is_best": e.name == best,
                    "learning_rate": fmt.learning_rate(hp.learning_rate),
                    "epochs": fmt.plain(hp.epochs),
                    **_lora_cells(hp),
                    "batch_size": fmt.plain(hp.batch_size),
                    "weight_decay": fmt.plain(hp.weight_decay),
                    "warmup_ratio": fmt.plain(hp.warmup_ratio),
                    "target_modules": (
                        fmt.plain(t.target_modules or hp.target_modules)
                        if hp.method == "lora"
                        else "every weight (full fine-tuning)"
                    ),
                }
            )
        validation = t.validation_metrics
        trainable, total = t.trainable_parameters, t.total_parameters
        results.append(
            {
                "name": e.name,
                "is_best": e.name == best,
                "val_accuracy": fmt.num(validation.accuracy),
                "val_f1": fmt.num(validation.f1_macro),
                "val_loss": fmt.num(validation.loss),
                "best_epoch": fmt.plain(t.best_epoch) if not e.members else "",
                "epochs_trained": _epochs_trained(e) if not e.members else "",
                "test_accuracy": fmt.num(e.test_metrics.accuracy),
                "test_f1": fmt.num(e.test_metrics.f1_macro),
                "seconds": fmt.num(t.train_seconds, 1),
                "throughput": fmt.num(t.examples_per_second, 1),
                "trainable": fmt.integer(trainable),
                "trainable_share": (
                    fmt.pct(trainable / total, 2) if total and not e.members else fmt.MISSING
                ),
            }
        )
    return {
        "configs": configs,
        "results": results,
        "best": best,
        "selection_rule": summary.best_config.selection_rule,
        "halving": halving_sentence(summary.hyperparameter_experiments),
        "ensemble": ensemble_sentence(summary.hyperparameter_experiments, best),
    }


def _lora_cells(hp: LoraHyperparams) -> dict[str, str]:
    """LoRA's rank, alpha and dropout; blank for a fully fine-tuned config."""
    if hp.method != "lora":
        return {"lora_r": "", "lora_alpha": "", "lora_dropout": ""}
    return {
        "lora_r": fmt.plain(hp.lora_r),
        "lora_alpha": fmt.plain(hp.lora_alpha),
        "lora_dropout": fmt.plain(hp.lora_dropout),
    }


def _ensemble_config_row(e: Experiment, *, is_best: bool) -> dict[str, Any]:
    """The configurations table's row of an ensemble: what it averages, no settings."""
    blank = dict.fromkeys(
        (
            "learning_rate",
            "epochs",
            "lora_r",
            "lora_alpha",
            "lora_dropout",
            "batch_size",
            "weight_decay",
            "warmup_ratio",
        ),
        "",
    )
    averaged = f"mean probability of {' + '.join(e.members)}"
    return {"name": e.name, "is_best": is_best, **blank, "target_modules": averaged}


def ensemble_sentence(experiments: list[Experiment], best: str) -> str | None:
    """The ensemble candidate and its inference cost in one sentence; None without one."""
    ensemble = next((e for e in experiments if e.members), None)
    if ensemble is None:
        return None
    members = [e for e in experiments if e.name in ensemble.members]
    cost = f"{len(ensemble.members)} forward passes per sentence"
    seconds = [e.test_predict_seconds for e in members]
    if ensemble.test_predict_seconds and all(seconds):
        cost += (
            f" (test predictions {fmt.num(ensemble.test_predict_seconds, 1)} s against "
            f"{' and '.join(f'{fmt.num(s, 1)} s' for s in seconds)} for its members)"
        )
    verdict = "was selected" if ensemble.name == best else f"was not selected ({best} was)"
    return (
        f"Ensemble candidate: {ensemble.name} averages the predicted probabilities of the "
        f"{len(ensemble.members)} best configs on validation ({', '.join(ensemble.members)}) "
        f"and costs {cost}; it competed under the same selection rule and {verdict}."
    )


def _epochs_trained(e: Experiment) -> str:
    stopped, epochs = e.training.stopped_at_epoch, e.training.hyperparams.epochs
    if stopped is None:
        return fmt.plain(epochs)
    return f"{fmt.plain(stopped)} of {fmt.plain(epochs)}"


def halving_sentence(experiments: list[Experiment]) -> str | None:
    """How successive halving trained the grid, in one sentence; None when it did not."""
    stopped = [e for e in experiments if e.training.stopped_at_epoch is not None]
    if not stopped:
        return None
    rung = fmt.plain(min(e.training.stopped_at_epoch or 0.0 for e in stopped))
    on = [e.name for e in experiments if e.training.stopped_at_epoch is None]
    return (
        f"Successive halving: every config first trained {rung} epoch of its own schedule; "
        f"{', '.join(e.name for e in stopped)} stopped there, and "
        f"{', '.join(on) or 'none'} (the best on validation at that point) trained on to the "
        "end. A stopped config's metrics are those of its first rung."
    )


def test_context(summary: RunSummary) -> dict[str, Any]:
    """The test results section: headline metrics with intervals, averages, per class."""
    metrics, tests = summary.test_metrics, summary.statistical_tests
    accuracy = tests.accuracy if tests else None
    f1 = tests.f1_macro if tests else None
    headline = [
        ("Accuracy", fmt.num(metrics.accuracy), fmt.interval(accuracy)),
        ("Macro-F1", fmt.num(metrics.f1_macro), fmt.interval(f1)),
        ("AUC-ROC", fmt.num(metrics.auc_roc), ""),
    ]
    averaged = [
        (label, fmt.num(macro), fmt.num(weighted))
        for label, macro, weighted in (
            ("Precision", metrics.precision_macro, metrics.precision_weighted),
            ("Recall", metrics.recall_macro, metrics.recall_weighted),
            ("F1", metrics.f1_macro, metrics.f1_weighted),
        )
    ]
    per_class = [
        {
            "name": name,
            "precision": fmt.num(m.precision),
            "recall": fmt.num(m.recall),
            "f1": fmt.num(m.f1),
            "support": fmt.integer(m.support),
        }
        for name, m in metrics.per_class.items()
    ]
    return {
        "n": fmt.integer(metrics.n),
        "headline": headline,
        "interval_label": fmt.confidence_label(accuracy),
        "n_resamples": fmt.integer(tests.n_resamples if tests else None),
        "averaged": averaged,
        "per_class": per_class,
    }
