"""The GPU check's summary (bench/gpu/summarize.py): nvidia-smi samples, per-process peaks,
and the configs read from a finished run or, when the flow was cut short, from its children."""

import json
import shutil
import sys
from pathlib import Path

BENCH_GPU = Path(__file__).resolve().parents[2] / "bench" / "gpu"
FIXTURE_RUN = Path(__file__).resolve().parents[1] / "fixtures" / "run"
sys.path.insert(0, str(BENCH_GPU))

from summarize import (  # noqa: E402
    gpu_summary,
    read_gpu_samples,
    read_process_peaks,
    summarize,
    to_markdown,
)

from sentiment_lora.config import GRIDS  # noqa: E402
from sentiment_lora.training.evaluation import Evaluation, classification_metrics  # noqa: E402
from sentiment_lora.training.lora import TrainingResult  # noqa: E402
from tasks.pipeline_tasks import ConfigRun  # noqa: E402

GPU_CSV = """timestamp, memory.used [MiB], memory.total [MiB], utilization.gpu [%]
2026/11/27 10:00:00.000, 1, 81559, 0
2026/11/27 10:00:00.500, 5120, 81559, 87
2026/11/27 10:00:01.000, 7168, 81559, 95
2026/11/27 10:00:01.500, 30
"""


def _child(name: str, epochs: int, validation: float, labels: list[int]) -> ConfigRun:
    """A child run's result as `sst2-train-config` writes it."""
    hp = next(h for h in GRIDS["lora"] if h.name == name)
    probs = [0.9 if y else 0.1 for y in labels]
    probs[0] = 1 - probs[0]  # one error
    training = TrainingResult(
        config_name=name,
        hyperparams=hp.model_copy(update={"epochs": epochs}),
        adapter_dir="/x",
        validation_metrics={"accuracy": validation, "f1_macro": validation},
        history=[],
        best_epoch=float(epochs),
        train_seconds=100.0 * epochs,
        train_examples=47462,
        examples_per_second=474.6,
        trainable_parameters=1,
        total_parameters=2,
        target_modules=["query"],
        device="cuda",
        precision="bf16",
        resumed_from_checkpoint=False,
    )
    test = Evaluation(
        model_name=name,
        metrics=classification_metrics(labels, probs),
        labels=labels,
        predictions=[int(p >= 0.5) for p in probs],
        prob_positive=probs,
    )
    return ConfigRun(training=training, test=test)


def test_gpu_samples_peak_idle_and_utilisation(tmp_path: Path) -> None:
    path = tmp_path / "gpu.csv"
    path.write_text(GPU_CSV)
    samples = read_gpu_samples(path)
    assert len(samples) == 3  # the line cut short by the sampler's stop is skipped
    assert gpu_summary(samples) == {
        "samples": 3,
        "total_mib": 81559.0,
        "idle_mib": 1.0,
        "peak_used_mib": 7168.0,
        "peak_util_pct": 95.0,
        "mean_util_pct": 60.7,
    }
    assert read_gpu_samples(tmp_path / "missing.csv") == []
    assert gpu_summary([]) is None


def test_process_peaks_are_named_by_config(tmp_path: Path) -> None:
    path = tmp_path / "apps.csv"
    path.write_text(
        "1.0,101,900,\n"  # the pipeline's own process: no flow run id
        "1.0,202,2000,run-a\n"
        "2.0,202,2500,run-a\n"
        "2.0,303,1800,run-b\n"
        "3.0,202,2400,run-a\n"
        "3.0,404,[N/A],run-c\n"
    )
    peaks = read_process_peaks(path, {"run-a": "all-r16-lr1e-3-e4"})
    assert peaks == {"parent": 900.0, "all-r16-lr1e-3-e4": 2500.0, "run-b": 1800.0}
    by_pid = read_process_peaks(path, {}, by_pid=True)
    assert by_pid == {"pid 101": 900.0, "pid 202": 2500.0, "pid 303": 1800.0}


def test_a_run_cut_short_reports_the_children_it_finished(tmp_path: Path) -> None:
    results = tmp_path / "artifacts" / "results"
    results.mkdir(parents=True)
    labels = [1, 0, 1, 1, 0, 0, 1, 0]
    children = {
        "run-a": _child("all-r16-lr1e-3-e4", 4, 0.94, labels),
        "run-b": _child("qv-r8-lr1e-3-e2", 2, 0.91, labels),
    }
    for run_id, run in children.items():
        (results / f"{run_id}.json").write_text(run.model_dump_json())
    (tmp_path / "gpu.csv").write_text(GPU_CSV)
    (tmp_path / "apps.csv").write_text("1.0,7,3000,run-a\n1.0,8,2000,run-b\n1.0,9,800,\n")

    summary = summarize(tmp_path, flow_seconds=430.04, flow_rc=124, mode="gpu")

    assert not summary["flow_finished"]
    assert summary["selected"] == "all-r16-lr1e-3-e4"  # the better validation accuracy
    assert summary["best_test_accuracy"] == children["run-a"].test.metrics.accuracy
    by_name = {c["name"]: c for c in summary["configs"]}
    assert by_name["all-r16-lr1e-3-e4"]["train_seconds"] == 400.0
    assert by_name["all-r16-lr1e-3-e4"]["peak_gpu_mib"] == 3000.0
    assert by_name["qv-r8-lr1e-3-e2"]["epochs"] == 2
    assert summary["gpu"]["peak_used_mib"] == 7168.0
    markdown = to_markdown(summary)
    assert "did not finish (exit 124) in **430 s**" in markdown
    assert "| all-r16-lr1e-3-e4 | 4 | 47,462 | 400.0 | 474.6 | 0.9400 | 0.8750 | 3000 |" in markdown
    assert "own process peaked at 800 MiB" in markdown


def test_a_finished_run_reports_the_pipelines_selection(tmp_path: Path) -> None:
    latest = tmp_path / "reports" / "latest"
    latest.mkdir(parents=True)
    shutil.copy(FIXTURE_RUN / "fine_tuning_results.json", latest)
    expected = json.loads((latest / "fine_tuning_results.json").read_text())

    summary = summarize(tmp_path, flow_seconds=12.0, flow_rc=0, mode="dry")

    assert summary["flow_finished"]
    assert summary["selected"] == expected["best_config"]["name"]
    assert summary["best_test_accuracy"] == expected["test_metrics"]["accuracy"]
    tfidf = expected["baselines"]["tfidf-logreg"]["test_metrics"]["accuracy"]
    assert summary["tfidf_logreg_test_accuracy"] == tfidf
    assert {c["name"] for c in summary["configs"]} == {
        e["training"]["config_name"] for e in expected["hyperparameter_experiments"]
    }
    assert summary["gpu"] is None
    assert "GPU: not sampled" in to_markdown(summary)
