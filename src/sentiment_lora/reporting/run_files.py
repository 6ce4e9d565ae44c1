"""Writing a run's files into its staging directory (published by :func:`paths.publish_run`)."""

from pathlib import Path

import pandas as pd

from sentiment_lora.io import atomic_write_text
from sentiment_lora.paths import (
    MODEL_DIR,
    PREDICTIONS_FILE,
    PROB_PREFIX,
    RESULTS_FILE,
    copy_tree_atomic,
    staging_dir,
)
from sentiment_lora.reporting.results import RunSummary, dump_results
from sentiment_lora.training.data import PreparedData, read_split
from sentiment_lora.training.evaluation import Evaluation


def test_predictions_frame(
    prepared: PreparedData, evaluations: dict[str, Evaluation]
) -> pd.DataFrame:
    """Per-example test predictions: sentence, label and P(positive) of every model."""
    frame = read_split(prepared.test_path)
    for name, ev in evaluations.items():
        frame[f"{PROB_PREFIX}{name}"] = ev.prob_positive
    return frame


def stage_run(
    *,
    reports_dir: Path,
    summary: RunSummary,
    best_adapter_dir: Path,
    predictions: pd.DataFrame,
) -> Path:
    """Write a run's files (model, predictions, results) into its hidden staging directory."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    stage = staging_dir(reports_dir, summary.run_id)
    stage.mkdir(parents=True, exist_ok=False)
    copy_tree_atomic(best_adapter_dir, stage / MODEL_DIR)
    atomic_write_text(stage / PREDICTIONS_FILE, predictions.to_csv(index=False))
    atomic_write_text(stage / RESULTS_FILE, dump_results(summary))
    return stage
