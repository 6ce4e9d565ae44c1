"""Summary of one ``bench/gpu/full_profile.sh`` run: wall time, per-config training and accuracy,
GPU memory and utilisation.

    python bench/gpu/summarize.py --work DIR --flow-seconds S --flow-rc RC --out OUTDIR

Reads ``DIR/reports/latest/fine_tuning_results.json`` when the flow finished, else each child's
result under ``DIR/artifacts/results/`` (written by every ``sst2-train-config`` run that
completed, so a run cut short by the time limit still reports what it trained); ``DIR/gpu.csv``
(``nvidia-smi --query-gpu`` samples) and ``DIR/apps.csv`` (``time,pid,MiB,flow run id`` per
process, from ``--query-compute-apps``). Writes ``summary.json`` and ``summary.md`` to OUTDIR.
Standard library only.
"""

import argparse
import csv
import json
import sys
from pathlib import Path
from statistics import mean
from typing import Any

PARENT = "parent"  # a GPU process without a flow run id: the pipeline's own process


def _column(header: list[str], name: str) -> int:
    """Index of the nvidia-smi column ``name`` (headers read ``memory.used [MiB]``)."""
    for i, title in enumerate(header):
        if title.strip().split(" [")[0] == name:
            return i
    raise ValueError(f"gpu.csv: no column {name!r} in {header}")


def read_gpu_samples(path: Path) -> list[dict[str, float]]:
    """Rows of ``nvidia-smi --query-gpu=...,memory.used,memory.total,utilization.gpu
    --format=csv,nounits``: MiB used, MiB total and utilisation (%) per sample."""
    if not path.is_file():
        return []
    rows = list(csv.reader(path.read_text().splitlines()))
    if not rows:
        return []
    header, body = rows[0], rows[1:]
    cols = {
        key: _column(header, name)
        for key, name in (
            ("used_mib", "memory.used"),
            ("total_mib", "memory.total"),
            ("util_pct", "utilization.gpu"),
        )
    }
    samples = []
    for row in body:
        try:
            samples.append({key: float(row[i]) for key, i in cols.items()})
        except (IndexError, ValueError):
            continue  # a line cut short when the sampler was stopped
    return samples


def gpu_summary(samples: list[dict[str, float]]) -> dict[str, float] | None:
    """Peak and idle memory, peak and mean utilisation; None without samples."""
    if not samples:
        return None
    return {
        "samples": len(samples),
        "total_mib": samples[0]["total_mib"],
        "idle_mib": samples[0]["used_mib"],
        "peak_used_mib": max(s["used_mib"] for s in samples),
        "peak_util_pct": max(s["util_pct"] for s in samples),
        "mean_util_pct": round(mean(s["util_pct"] for s in samples), 1),
    }


def read_process_peaks(
    path: Path, names: dict[str, str], *, by_pid: bool = False
) -> dict[str, float]:
    """Peak MiB per process from ``time,pid,MiB,flow run id`` lines, keyed by config name
    (``names`` maps flow run id to it), ``parent`` for the pipeline's process, else the id;
    ``by_pid``: keyed ``pid N`` (processes that are no flow runs, as in levers.sh)."""
    peaks: dict[str, float] = {}
    if not path.is_file():
        return peaks
    for row in csv.reader(path.read_text().splitlines()):
        if len(row) < 4:
            continue
        try:
            mib = float(row[2])
        except ValueError:
            continue
        run_id = row[3].strip()
        if by_pid:
            key = f"pid {row[1].strip()}"
        else:
            key = names.get(run_id, run_id) if run_id else PARENT
        peaks[key] = max(peaks.get(key, 0.0), mib)
    return peaks


def _config_row(training: dict[str, Any], test_accuracy: float) -> dict[str, Any]:
    """One config's line from its ``TrainingResult`` as JSON (a results file's experiment and a
    child run's result both hold one; read as plain JSON: the GPU machine has no pydantic)."""
    return {
        "name": training["config_name"],
        "epochs": training["hyperparams"]["epochs"],
        "train_examples": training["train_examples"],
        "train_seconds": training["train_seconds"],
        "examples_per_second": training["examples_per_second"],
        "validation_accuracy": training["validation_metrics"]["accuracy"],
        "test_accuracy": test_accuracy,
        "device": training["device"],
    }


def _from_results(summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        _config_row(e["training"], e["test_metrics"]["accuracy"])
        for e in summary["hyperparameter_experiments"]
    ]


def _from_child(run: dict[str, Any]) -> dict[str, Any]:
    return _config_row(run["training"], run["test"]["metrics"]["accuracy"])


def read_child_results(results_dir: Path) -> dict[str, dict[str, Any]]:
    """Each completed child run's result, keyed by its flow run id (the file's name)."""
    if not results_dir.is_dir():
        return {}
    return {p.stem: json.loads(p.read_text()) for p in sorted(results_dir.glob("*.json"))}


def summarize(work: Path, *, flow_seconds: float, flow_rc: int, mode: str) -> dict[str, Any]:
    """Everything measured in ``work``, as one JSON-ready dict."""
    children = read_child_results(work / "artifacts" / "results")
    names = {run_id: run["training"]["config_name"] for run_id, run in children.items()}
    results_path = work / "reports" / "latest" / "fine_tuning_results.json"
    finished = results_path.is_file()
    if finished:
        results = json.loads(results_path.read_text())
        configs = _from_results(results)
        selected = results["best_config"]["name"]
        best_test = results["test_metrics"]["accuracy"]
        baseline = results.get("baselines", {}).get("tfidf-logreg", {})
        tfidf = baseline.get("test_metrics", {}).get("accuracy")
        environment = results.get("environment", {})
    else:  # cut short or failed after training: what the children finished
        configs = [_from_child(run) for run in children.values()]
        best = max(configs, key=lambda c: c["validation_accuracy"], default=None)
        selected = best["name"] if best else None
        best_test = best["test_accuracy"] if best else None
        tfidf, environment = None, {}
    peaks = read_process_peaks(work / "apps.csv", names)
    for config in configs:
        config["peak_gpu_mib"] = peaks.get(config["name"])
    return {
        "mode": mode,
        "flow_rc": flow_rc,
        "flow_finished": finished,
        "flow_seconds": round(flow_seconds, 1),
        "selected": selected,
        "selection": "the pipeline's rule, validation macro-F1"
        if finished
        else "best validation accuracy of the finished children",
        "best_test_accuracy": best_test,
        "tfidf_logreg_test_accuracy": tfidf,
        "configs": sorted(configs, key=lambda c: c["name"]),
        "gpu": gpu_summary(read_gpu_samples(work / "gpu.csv")),
        "process_peak_mib": peaks,
        "device": environment.get("device"),
        "packages": environment.get("packages"),
    }


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def to_markdown(s: dict[str, Any]) -> str:
    """The summary as the lines bench/RESULTS.md takes."""
    status = "finished" if s["flow_finished"] else f"did not finish (exit {s['flow_rc']})"
    lines = [
        f"Full profile, `--backend work-pool`, every config at once ({s['mode']}): flow "
        f"{status} in **{s['flow_seconds']:.0f} s** ({s['flow_seconds'] / 60:.1f} min); "
        f"device {_fmt(s['device'])}.",
        f"Selected: {_fmt(s['selected'])} ({s['selection']}), test accuracy "
        f"**{_fmt(s['best_test_accuracy'], '.4f')}** (tfidf-logreg "
        f"{_fmt(s['tfidf_logreg_test_accuracy'], '.4f')}).",
        "",
        "| config | epochs | train rows | train s | examples/s | validation | test "
        "| peak GPU MiB |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in s["configs"]:
        lines.append(
            f"| {c['name']} | {c['epochs']} | {c['train_examples']:,} | "
            f"{c['train_seconds']:.1f} | {c['examples_per_second']:.1f} | "
            f"{c['validation_accuracy']:.4f} | {c['test_accuracy']:.4f} | "
            f"{_fmt(c['peak_gpu_mib'], '.0f')} |"
        )
    gpu = s["gpu"]
    if gpu:
        lines += [
            "",
            f"GPU: peak {gpu['peak_used_mib']:.0f} MiB used of {gpu['total_mib']:.0f} "
            f"(idle {gpu['idle_mib']:.0f}); utilisation peak {gpu['peak_util_pct']:.0f}%, mean "
            f"{gpu['mean_util_pct']:.1f}% over {gpu['samples']} samples (every 0.5 s); the "
            f"pipeline's own process peaked at {_fmt(s['process_peak_mib'].get(PARENT), '.0f')}"
            " MiB.",
        ]
    else:
        lines += ["", "GPU: not sampled (no nvidia-smi)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Write summary.json and summary.md; print the markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--flow-seconds", type=float, required=True)
    parser.add_argument("--flow-rc", type=int, required=True)
    parser.add_argument("--mode", default="gpu")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    summary = summarize(
        args.work, flow_seconds=args.flow_seconds, flow_rc=args.flow_rc, mode=args.mode
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    markdown = to_markdown(summary)
    (args.out / "summary.md").write_text(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
