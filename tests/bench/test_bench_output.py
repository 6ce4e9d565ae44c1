"""The benchmark's machine-readable summary line and its accuracy-for-time reader."""

import json
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from accuracy import read_run_dir  # noqa: E402
from run_bench import final_line  # noqa: E402

LINE = re.compile(
    r"^bench: train_x=(\S+) infer_x=(\S+) pipe_x=(\S+) warm_pct=(\S+) ceiling_pct=(\S+)"
    r"(?: quick_acc=(\S+) quick_min=(\S+))?(?: full_acc=(\S+) full_min=(\S+))?$"
)


def test_final_line_has_every_field_in_order() -> None:
    results = {
        "train": {"ratio_examples_per_s": {"median": 12.345}},
        "infer": {"ratio_vs_notebook": {"median": 5.5}, "ratio_vs_pipeline": {"median": 3.25}},
        "pipeline": {"warm_pct": 4.2},
        "ceiling_pct": 61.0,
        "accuracy": {
            "quick": {"test_accuracy": 0.8612, "wall_minutes": 8.5},
            "full": {"test_accuracy": 0.9001, "wall_minutes": 47.25},
        },
    }
    match = LINE.match(final_line(results))
    assert match, final_line(results)
    assert match.groups() == (
        "12.35", "5.50", "3.25", "4.20", "61.00", "0.86", "8.50", "0.90", "47.25"
    )  # fmt: skip


def test_final_line_marks_parts_not_measured() -> None:
    line = final_line({"train": None, "infer": None, "pipeline": None, "accuracy": {}})
    match = LINE.match(line)
    assert match and match.group(1) == "n/a" and match.group(6) is None


def test_accuracy_is_read_from_a_run_directory() -> None:
    run_dir = Path(__file__).resolve().parents[1] / "fixtures" / "run"
    summary = json.loads((run_dir / "fine_tuning_results.json").read_text())
    run = read_run_dir(str(run_dir))
    assert run["test_accuracy"] == summary["test_metrics"]["accuracy"]
    assert (
        run["tfidf_logreg_accuracy"]
        == (summary["baselines"]["tfidf-logreg"]["test_metrics"]["accuracy"])
    )
    assert run["wall_minutes"] is None or run["wall_minutes"] > 0
    with pytest.raises(FileNotFoundError, match="fine_tuning_results.json"):
        read_run_dir(str(run_dir / "missing"))
