"""Writing a run's files into its staging directory (published by :func:`paths.publish_run`)."""

import math
from pathlib import Path

import pandas as pd

from sentiment_lora.evidence.stats import Interval
from sentiment_lora.io import atomic_write_text
from sentiment_lora.paths import (
    DATA_SNAPSHOT_DIR,
    MODEL_DIR,
    PREDICTIONS_FILE,
    PROB_PREFIX,
    RESULTS_FILE,
    copy_tree_atomic,
    staging_dir,
)
from sentiment_lora.reporting.results import RunSummary, dump_results
from sentiment_lora.training.data import PreparedData, read_split
from sentiment_lora.training.ensemble import is_ensemble_dir, member_dirs
from sentiment_lora.training.evaluation import Evaluation
from sentiment_lora.training.model_card import MetricEstimate, ModelCardFacts, write_model_card
from sentiment_lora.training.portable_base import read_model_base


def test_predictions_frame(
    prepared: PreparedData, evaluations: dict[str, Evaluation]
) -> pd.DataFrame:
    """Per-example test predictions: sentence, label and P(positive) of every model."""
    frame = read_split(prepared.test_path)
    for name, ev in evaluations.items():
        frame[f"{PROB_PREFIX}{name}"] = ev.prob_positive
    return frame


def _estimate(value: float, interval: Interval | None) -> MetricEstimate | None:
    """The card's metric; None (the card leaves it out) for a value that is not a number."""
    if not math.isfinite(value):
        return None
    if interval is None or not interval.low <= value <= interval.high:
        return MetricEstimate(value=value)
    return MetricEstimate(
        value=value,
        interval=(interval.low, interval.high),
        confidence=interval.confidence,
        method=f"percentile bootstrap, {interval.n_resamples} resamples",
    )


def model_card_facts(summary: RunSummary, model_dir: Path) -> ModelCardFacts:
    """What the best model's card states, from the run's summary and the base its model
    directory names (an ensemble's: its first member's; they share the base)."""
    best = summary.experiment(summary.best_config.name)
    tests, counts = summary.statistical_tests, summary.data.counts
    adapter_dir = member_dirs(model_dir)[0] if is_ensemble_dir(model_dir) else model_dir
    return ModelCardFacts(
        config_name=summary.best_config.name,
        members=tuple(summary.best_config.members),
        run_id=summary.run_id,
        base_model=read_model_base(adapter_dir),
        hyperparams=summary.best_config.config,
        target_modules=tuple(best.training.target_modules if best else ()),
        train_rows=counts.get("train", 0),
        validation_rows=counts.get("validation", 0),
        test_rows=summary.test_metrics.n,
        accuracy=_estimate(summary.test_metrics.accuracy, tests.accuracy if tests else None),
        f1_macro=_estimate(summary.test_metrics.f1_macro, tests.f1_macro if tests else None),
        max_length=summary.training.max_length,
        precision=best.training.precision if best else "fp32",
        seed=summary.training.seed,
        data_source=summary.data.source,
        data_version=summary.data.data_version,
        data_hashes=summary.data.source_hashes,
    )


def stage_run(
    *,
    reports_dir: Path,
    summary: RunSummary,
    best_adapter_dir: Path,
    predictions: pd.DataFrame,
    data_snapshot: Path | None = None,
) -> Path:
    """Write a run's files (model and its card, predictions, results) into its staging dir."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    stage = staging_dir(reports_dir, summary.run_id)
    stage.mkdir(parents=True, exist_ok=False)
    copy_tree_atomic(best_adapter_dir, stage / MODEL_DIR)
    write_model_card(stage / MODEL_DIR, model_card_facts(summary, stage / MODEL_DIR))
    if data_snapshot is not None:
        copy_tree_atomic(data_snapshot, stage / DATA_SNAPSHOT_DIR)
    atomic_write_text(stage / PREDICTIONS_FILE, predictions.to_csv(index=False))
    atomic_write_text(stage / RESULTS_FILE, dump_results(summary))
    return stage
