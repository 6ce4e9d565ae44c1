"""Accuracy for time, read from existing run directories (no training here).

Runs are read through :func:`sentiment_lora.reporting.results.load_results`, so a results file
of an older layout loads as the report reads it, and a damaged one is refused by its path.
"""

from datetime import datetime
from pathlib import Path

from sentiment_lora.paths import RESULTS_FILE
from sentiment_lora.reporting.results import RunSummary, load_results

TFIDF_BASELINE = "tfidf-logreg"


def wall_seconds(summary: RunSummary) -> tuple[float | None, str]:
    """Wall time of a run and how it was obtained: ``created_at`` (when the results were
    written) minus ``timings.started_at`` (flow start). The report rendering after the JSON and
    the process start-up before the flow are not included."""
    start = summary.timings.started_at if summary.timings else None
    if not start:
        return None, "not recorded"
    seconds = (
        datetime.fromisoformat(summary.created_at) - datetime.fromisoformat(start)
    ).total_seconds()
    return seconds, "created_at - timings.started_at"


def read_run(
    summary: RunSummary, source: str, wall: float | None = None, how: str = ""
) -> dict[str, object]:
    """Best config's test accuracy, wall minutes and the tfidf-logreg baseline of one run."""
    if wall is None:
        wall, how = wall_seconds(summary)
    baseline = summary.baselines.get(TFIDF_BASELINE)
    experiments = summary.hyperparameter_experiments
    return {
        "source": source,
        "run_id": summary.run_id,
        "profile": summary.profile,
        "train_rows": summary.data.counts.get("train"),
        "best_config": summary.best_config.name,
        "test_accuracy": summary.test_metrics.accuracy,
        "max_test_accuracy_any_config": max(e.test_metrics.accuracy for e in experiments),
        "wall_minutes": wall / 60 if wall is not None else None,
        "wall_source": how,
        "tfidf_logreg_accuracy": baseline.test_metrics.accuracy if baseline else None,
    }


def read_run_dir(run_dir: str) -> dict[str, object]:
    """:func:`read_run` for ``reports/<run-id>`` (or the JSON file itself)."""
    path = Path(run_dir)
    if path.name == RESULTS_FILE:
        path = path.parent
    if not (path / RESULTS_FILE).is_file():
        raise FileNotFoundError(f"{run_dir}: no {RESULTS_FILE}")
    return read_run(load_results(path), str((path / RESULTS_FILE).resolve()))
