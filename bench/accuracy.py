"""Accuracy for time, read from existing run directories (no training here)."""

import json
from datetime import datetime
from pathlib import Path

RESULTS_FILE = "fine_tuning_results.json"


def wall_seconds(summary: dict) -> tuple[float | None, str]:
    """Wall time of a run and how it was obtained.

    ``timings.wall_seconds`` if the run recorded it, else ``created_at`` (when the results were
    written) minus ``timings.started_at`` (flow start): the report rendering after the JSON and
    the process start-up before the flow are not included.
    """
    timings = summary.get("timings") or {}
    if isinstance(timings.get("wall_seconds"), int | float):
        return float(timings["wall_seconds"]), "timings.wall_seconds"
    start, end = timings.get("started_at"), summary.get("created_at")
    if start and end:
        seconds = (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()
        return seconds, "created_at - timings.started_at"
    return None, "not recorded"


def read_run(summary: dict, source: str, wall: float | None = None, how: str = "") -> dict:
    """Best config's test accuracy, wall minutes and the tfidf-logreg baseline of one run."""
    if wall is None:
        wall, how = wall_seconds(summary)
    baseline = ((summary.get("baselines") or {}).get("tfidf-logreg") or {}).get(
        "test_metrics"
    ) or {}
    experiments = summary.get("hyperparameter_experiments") or []
    return {
        "source": source,
        "run_id": summary.get("run_id"),
        "profile": summary.get("profile"),
        "train_rows": ((summary.get("data") or {}).get("counts") or {}).get("train"),
        "best_config": (summary.get("best_config") or {}).get("name"),
        "test_accuracy": (summary.get("test_metrics") or {}).get("accuracy"),
        "max_test_accuracy_any_config": max(
            (e.get("test_metrics", {}).get("accuracy", 0.0) for e in experiments), default=None
        ),
        "wall_minutes": wall / 60 if wall is not None else None,
        "wall_source": how,
        "tfidf_logreg_accuracy": baseline.get("accuracy"),
    }


def read_run_dir(run_dir: str) -> dict:
    """:func:`read_run` for ``reports/<run-id>`` (or the JSON file itself)."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no {RESULTS_FILE}")
    return read_run(json.loads(path.read_text(encoding="utf-8")), str(path.resolve()))
