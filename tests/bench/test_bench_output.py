"""The benchmark's machine-readable summary line and its accuracy-for-time reader."""

import json
import re
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import run_bench  # noqa: E402
from accuracy import read_run_dir  # noqa: E402
from run_bench import final_line  # noqa: E402

LINE = re.compile(
    r"^bench: train_x=(\S+) infer_x=(\S+) pipe_x=(\S+) warm_pct=(\S+) ceiling_pct=(\S+)"
    r"(?: quick_acc=(\S+) quick_min=(\S+))?(?: full_acc=(\S+) full_min=(\S+))?"
    r"(?: capped_min=(\S+))? onnx_x=(\S+) onnx_acc_delta=(\S+) cpu=(\S+) bf16=(native|none)$"
)
MACHINE = {"cpu_model": "Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz", "native_bf16": True}
ONNX = {"onnx_x": 2.456, "onnx_acc_delta": -0.23}


def test_final_line_has_every_field_in_order() -> None:
    results = {
        "mode": "full",
        "machine": MACHINE,
        "train": {"ratio_examples_per_s": {"median": 12.345}},
        "infer": {"ratio_vs_notebook": {"median": 5.5}, "ratio_vs_pipeline": {"median": 3.25}},
        "pipeline": {"warm_pct": 4.2, "cold": {"seconds": 495.0}},
        "ceiling_pct": 61.0,
        "accuracy": {
            "quick": {"test_accuracy": 0.8612, "wall_minutes": 8.5},
            "full": {"test_accuracy": 0.9001, "wall_minutes": 47.25},
        },
        "onnx": ONNX,
    }
    match = LINE.match(final_line(results))
    assert match, final_line(results)
    assert match.groups() == (
        "12.35", "5.50", "3.25", "4.20", "61.00", "0.86", "8.50", "0.90", "47.25", None,
        "2.46", "-0.23", "Intel(R)_Xeon(R)_Platinum_8481C_CPU_@_2.70GHz", "native",
    )  # fmt: skip


def test_final_line_of_bench_quick_names_the_capped_pipeline_minutes() -> None:
    results = {
        "mode": "quick",
        "machine": {"cpu_model": "AMD EPYC", "native_bf16": False},
        "pipeline": {"warm_pct": 18.6, "cold": {"seconds": 90.0}},
        "accuracy": {"quick": None, "full": None, "note": "not measured in bench-quick"},
        "onnx": ONNX,
    }
    match = LINE.match(final_line(results))
    assert match, final_line(results)
    assert "quick_min" not in final_line(results)
    assert match.groups()[9:] == ("1.50", "2.46", "-0.23", "AMD_EPYC", "none")


def test_final_line_marks_parts_not_measured() -> None:
    line = final_line({"train": None, "infer": None, "pipeline": None, "accuracy": {}})
    match = LINE.match(line)
    assert match, line
    assert match.group(1) == "n/a" and match.group(6) is None
    assert match.groups()[10:] == ("n/a", "n/a", "unknown", "none")
    quick = final_line({"mode": "quick", "pipeline": None, "onnx": None, "machine": MACHINE})
    assert LINE.match(quick) and " capped_min=n/a onnx_x=n/a " in quick


def _fake_pipeline(quick: bool, *, log, keep: bool, on_model) -> dict:
    """pipeline_walltime.benchmark without the runs: the hook gets a made-up model dir."""
    return {"warm_pct": 5.0, "cold": {"seconds": 60.0}, "model_check": on_model("/m/model")}


@pytest.fixture
def fake_parts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Stub every measurement; record the onnx part's calls (model dir, rounds)."""
    calls: list[tuple[str, int]] = []

    def measure(model_dir: str, rounds: int, log) -> dict:
        calls.append((model_dir, rounds))
        return {**ONNX, "rounds": rounds}

    monkeypatch.setattr(run_bench.ceiling, "matmul_gflops", lambda **_: {"gflops_median": 1.0})
    monkeypatch.setattr(run_bench.ceiling, "model_flops", lambda: {})
    monkeypatch.setattr(run_bench.pipeline_walltime, "benchmark", _fake_pipeline)
    monkeypatch.setattr(
        run_bench.infer_throughput, "precision_accuracy", lambda d: {"model_dir": d}
    )
    monkeypatch.setattr(run_bench.onnx_throughput, "measure", measure)
    return calls


@pytest.mark.parametrize(("argv", "rounds"), [(["--quick"], 1), ([], 5), (["--rounds", "3"], 3)])
def test_onnx_part_measures_the_cold_runs_model(
    fake_parts: list[tuple[str, int]], argv: list[str], rounds: int
) -> None:
    args = run_bench.parse_args([*argv, "--skip", "train", "--skip", "infer", "--skip", "memory"])
    results: dict = {"mode": "quick" if args.quick else "full"}
    run_bench.run_parts(args, results)
    assert fake_parts == [("/m/model", rounds)]
    assert results["onnx"] == {**ONNX, "rounds": rounds}
    assert results["precision_accuracy"] == {"model_dir": "/m/model"}
    assert set(results["parts"]) == {"ceiling", "pipeline", "onnx"}
    assert "onnx_x=2.46 onnx_acc_delta=-0.23" in final_line(results)


def test_onnx_part_can_be_skipped(fake_parts: list[tuple[str, int]]) -> None:
    args = run_bench.parse_args(["--quick", "--skip", "train", "--skip", "infer", "--skip", "onnx"])
    results: dict = {"mode": "quick"}
    run_bench.run_parts(args, results)
    assert fake_parts == [] and results["onnx"] is None and "onnx" not in results["parts"]
    assert results["precision_accuracy"] == {"model_dir": "/m/model"}


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
