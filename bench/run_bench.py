"""Benchmark of the project's recipe against the research notebook's (issue 6), in one process.

    python bench/run_bench.py            # make bench: 5 rounds, the quick profile's pipeline
    python bench/run_bench.py --quick    # make bench-quick: 2 rounds, pipeline capped

Parts: compute ceiling (fp32 matmul rate vs the model's FLOPs), training throughput (project vs
notebook recipe, alternated A/B/A/B), inference throughput (project vs the notebook's loop vs
``transformers.pipeline``, rotated each round) with each method's peak memory (in-process;
in full mode also in a fresh subprocess per method), pipeline wall time cold vs warm, int8 ONNX
against fp32 PyTorch ``predict`` on the cold run's model (``onnx``), and (full mode only)
accuracy for time read from run directories. torch runs on 2 threads
(``torch.set_num_threads(2)``; children get ``OMP_NUM_THREADS=2``). Ends with one ``bench: ...``
line, which names the CPU (``cpu=``, ``bf16=native|none``) its numbers come from.
"""

import argparse
import functools
import json
import os
import re
import sys
import time
from pathlib import Path

import ceiling
import infer_throughput
import onnx_throughput
import pipeline_walltime
import torch
import train_throughput
from accuracy import read_run, read_run_dir
from common import (
    BENCH_DIR,
    DATA_DIR,
    TORCH_THREADS,
    load_average,
    machine_info,
    median,
    set_threads,
)

QUICK_NOTEBOOK_STEPS = 9  # bench-quick: 8 timed steps of the notebook recipe (~10 s, not ~38 s)
PARTS = ("train", "infer", "memory", "pipeline", "onnx")
ONNX_QUICK_ROUNDS = 1  # bench-quick: the export plus one timed round keeps it under 5 minutes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick",
        action="store_true",
        help="bench-quick: 2 rounds instead of 5, pipeline capped to 1,000/200 rows, no accuracy",
    )
    p.add_argument("--rounds", type=int, default=None, help="rounds per part (5; 2 with --quick)")
    p.add_argument(
        "--train-steps",
        type=int,
        default=None,
        help=f"optimizer steps per training run ({train_throughput.DEFAULT_STEPS}: one megabatch)",
    )
    p.add_argument(
        "--onnx-rounds",
        type=int,
        default=None,
        help=f"timed rounds of the onnx part (--rounds; {ONNX_QUICK_ROUNDS} with --quick)",
    )
    p.add_argument("--quick-run", default=None, help="run dir of a quick-profile run (accuracy)")
    p.add_argument("--full-run", default=None, help="run dir of a full-profile run (accuracy)")
    p.add_argument(
        "--out",
        default=None,
        help="results JSON (default bench/results.json; bench/results-quick.json with --quick)",
    )
    p.add_argument(
        "--skip", action="append", choices=PARTS, default=[], help="leave a part out (dev only)"
    )
    p.add_argument(
        "--keep-pipeline-dir", action="store_true", help="keep the pipeline runs' temp dir"
    )
    args = p.parse_args(argv)
    args.rounds = args.rounds or (2 if args.quick else 5)  # a round of the project: ~2.5 s, +-10%
    args.onnx_rounds = args.onnx_rounds or (ONNX_QUICK_ROUNDS if args.quick else args.rounds)
    args.train_steps = args.train_steps or train_throughput.DEFAULT_STEPS
    if args.rounds < 1 or args.onnx_rounds < 1 or args.train_steps < 2:
        p.error("--rounds and --onnx-rounds must be >= 1 and --train-steps >= 2")
    out = args.out or ("bench/results-quick.json" if args.quick else "bench/results.json")
    args.out = Path(out) if Path(out).is_absolute() else BENCH_DIR.parent / out
    return args


def log(message: str) -> None:
    """Progress line, flushed at once (make shows it live)."""
    print(message, flush=True)


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(value, spec)


def accuracy_part(args: argparse.Namespace, pipeline: dict | None) -> dict:
    """Quick and full runs' accuracy and wall minutes (never in --quick)."""
    if args.quick:
        return {"quick": None, "full": None, "note": "not measured in bench-quick"}
    quick = None
    if args.quick_run:
        quick = read_run_dir(args.quick_run)
    elif pipeline and pipeline.get("cold_summary"):
        quick = read_run(  # this bench's own cold run is a complete quick-profile run
            pipeline["cold_summary"],
            "this bench's cold pipeline run",
            wall=pipeline["cold"]["seconds"],
            how="subprocess wall time of the cold run",
        )
    full = read_run_dir(args.full_run) if args.full_run else None
    return {"quick": quick, "full": full}


def cpu_fields(machine: dict) -> dict[str, str]:
    """``cpu`` (the model, spaces as ``_``) and ``bf16`` (``native`` or ``none``)."""
    model = re.sub(r"\s+", "_", str(machine.get("cpu_model") or "unknown").strip())
    return {"cpu": model, "bf16": "native" if machine.get("native_bf16") else "none"}


def final_line(results: dict) -> str:
    """The one ``bench: ...`` summary line.

    ``quick_min`` is the quick profile's wall minutes (full mode); bench-quick caps the pipeline's
    rows, so its cold run's minutes are ``capped_min`` instead.
    """
    train, infer = results.get("train"), results.get("infer")
    pipeline, acc = results.get("pipeline"), results.get("accuracy") or {}
    onnx = results.get("onnx")
    fields = {
        "train_x": train and train["ratio_examples_per_s"]["median"],
        "infer_x": infer and infer["ratio_vs_notebook"]["median"],
        "pipe_x": infer and infer["ratio_vs_pipeline"]["median"],
        "warm_pct": pipeline and pipeline["warm_pct"],
        "ceiling_pct": results.get("ceiling_pct"),
    }
    for name in ("quick", "full"):
        run = acc.get(name)
        if run and run.get("test_accuracy") is not None:
            fields[f"{name}_acc"] = run["test_accuracy"]
            fields[f"{name}_min"] = run["wall_minutes"]
    if results.get("mode") == "quick":
        fields["capped_min"] = pipeline and pipeline["cold"]["seconds"] / 60
    fields["onnx_x"] = onnx and onnx["onnx_x"]
    fields["onnx_acc_delta"] = onnx and onnx["onnx_acc_delta"]
    text = {k: _fmt(v) for k, v in fields.items()} | cpu_fields(results.get("machine") or {})
    return "bench: " + " ".join(f"{k}={v}" for k, v in text.items())


def print_tables(r: dict) -> None:
    """Human-readable summary of every measured number."""
    c = r["ceiling"]
    log("\n== compute ceiling ==")
    log(
        f"fp32 matmul {c['matmul']['n']}x{c['matmul']['n']}, {c['matmul']['threads']} threads: "
        f"{c['matmul']['gflops_median']:.1f} GFLOP/s (median of {c['matmul']['repeats']}); "
        f"bf16 {c['matmul_bf16']['gflops_median']:.1f} GFLOP/s (native bf16 on this CPU: "
        f"{r['machine'].get('native_bf16')})"
    )
    f = c["model"]
    log(
        f"encoder params N = {f['encoder_parameters']:,}; forward "
        f"{f['forward_flops_per_token'] / 1e6:.1f} MFLOP/token, LoRA training "
        f"{f['lora_train_flops_per_token'] / 1e6:.1f} MFLOP/token"
    )
    if t := r.get("train"):
        log(f"\n== training: {t['rows']} rows, batch {t['batch_size']}, {t['steps']} steps ==")
        log("recipe    examples/s  tokens/s  tok/ex  pad%")
        for k, m in t["median"].items():
            log(
                f"{k:9s} {m['examples_per_s']:10.1f} {m['tokens_per_s']:9.0f} "
                f"{m['mean_tokens_per_example']:7.1f} {100 * m['pad_fraction']:5.0f}"
            )
        log(
            f"project/notebook: examples/s x{t['ratio_examples_per_s']['median']:.2f}, "
            f"tokens/s x{t['ratio_tokens_per_s']['median']:.2f} (median of {t['rounds']} rounds)"
        )
        rates = [x["matmul_gflops_this_round"] for x in t["runs"] if x["recipe"] == "project"]
        log(f"matmul GFLOP/s measured at the start of each round: {[round(g) for g in rates]}")
        log(
            f"ceiling (vs the same round's matmul rate, median): project "
            f"{r['ceiling_pct']:.1f}%; notebook "
            f"{r['ceiling_pct_notebook_useful']:.1f}% useful (non-pad), "
            f"{r['ceiling_pct_notebook_executed']:.1f}% executed (incl. padding); project vs the "
            f"bf16 matmul rate {r['ceiling_pct_vs_bf16_matmul']:.1f}% (precision "
            f"{t['precision']['project']})"
        )
    if i := r.get("infer"):
        log(f"\n== inference: {i['sentences']} sentences, {i['rounds']} rounds ==")
        mem = r.get("memory") or {}
        log(f"model loaded: {i['rss_after_load_mib']:.0f} MiB RSS")
        for k, v in i["median_sps"].items():
            m = mem.get(k)
            fresh = f"; fresh process +{m['delta_mib']:.1f} MiB" if m else ""
            inproc = i["peak_delta_mib_in_process"][k]
            log(
                f"{k:9s} {i['precision'][k]:5s} {v:7.1f} sentences/s  peak RSS +{inproc:.1f} MiB "
                f"in-process{fresh}"
            )
        log(
            f"project vs notebook loop x{i['ratio_vs_notebook']['median']:.2f}, "
            f"vs pipeline x{i['ratio_vs_pipeline']['median']:.2f} (median of {i['rounds']} rounds)"
        )
        agree = i["label_agreement_vs_project"]
        log(
            f"same labels as the project's: notebook {100 * agree['notebook']:.1f}%, pipeline "
            f"{100 * agree['pipeline']:.1f}%; {i['mean_tokens_per_sentence']:.1f} tokens/sentence;"
            f" project at {r['infer_ceiling_pct']:.1f}% of the start matmul rate (2N/token)"
        )
    if p := r.get("pipeline"):
        log(f"\n== pipeline: {p['command']} ({p['rows']}) ==")
        log(
            f"cold {p['cold']['seconds']:.1f} s, warm {p['warm']['seconds']:.1f} s "
            f"({p['warm_pct']:.1f}% of cold); Prefect server: {p['prefect_server']}"
        )
        log(f"task states: cold {p['cold']['task_states']}, warm {p['warm']['task_states']}")
    if a := r.get("precision_accuracy"):
        log(
            f"\n== inference precision on the cold run's model ({a['sentences']} test sentences) "
            f"==\nfp32 {a['accuracy_fp32']:.4f}, project default ({a['resolved_auto']}) "
            f"{a['accuracy_auto']:.4f}: {a['delta_points']:+.2f} points, same label on "
            f"{100 * a['label_agreement']:.1f}%"
        )
    if o := r.get("onnx"):
        sps = o["sentences_per_s"]
        log(
            f"\n== ONNX int8 vs fp32 PyTorch predict, cold run's model ({o['sentences']} test "
            f"sentences, batch {o['batch_size']}, {o['threads']} threads, median of {o['rounds']} "
            "rounds) =="
        )
        log(", ".join(f"{k} {v:.0f} sentences/s" for k, v in sps.items()))
        acc = o["accuracy"]
        log(
            f"onnx_int8 / torch_fp32 x{o['onnx_x']:.2f}; accuracy {acc['onnx_int8']:.4f} vs "
            f"{acc['torch_fp32']:.4f} ({o['onnx_acc_delta']:+.2f} points), McNemar p = "
            f"{o['mcnemar']['pvalue']:.2f}, same label on {100 * o['label_agreement']:.1f}%; "
            f"int8 file {o['int8_megabytes']:.1f} MB, exported in {o['export_seconds']:.0f} s"
        )
    log("\n== time per part (s, 1-min load average at its end) ==")
    log(
        ", ".join(f"{k} {v['seconds']:.0f} s ({v['load_1min']:.1f})" for k, v in r["parts"].items())
    )
    acc = r.get("accuracy") or {}
    log("\n== accuracy for time ==")
    for name in ("quick", "full"):
        run = acc.get(name)
        if run:
            log(
                f"{name}: test accuracy {_fmt(run['test_accuracy'], '.4f')} in "
                f"{_fmt(run['wall_minutes'], '.1f')} min ({run['wall_source']}); tfidf-logreg "
                f"{_fmt(run['tfidf_logreg_accuracy'], '.4f')} [profile {run['profile']}, "
                f"{run['train_rows']} training rows, {run['source']}]"
            )
        else:
            log(f"{name}: not measured")


def check_model(model_dir: str, *, args: argparse.Namespace) -> dict:
    """What runs on the cold pipeline run's model before its temp dir goes: the inference
    precision check and (unless skipped) the onnx part, with the latter's own wall time."""
    out = {"precision_accuracy": infer_throughput.precision_accuracy(model_dir), "onnx": None}
    if "onnx" not in args.skip:
        log(f"onnx int8 vs fp32 PyTorch predict: {args.onnx_rounds} round(s) ...")
        started = time.perf_counter()
        out["onnx"] = onnx_throughput.measure(model_dir, args.onnx_rounds, log=log)
        out["onnx_part"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "load_1min": os.getloadavg()[0],
        }
    return out


def run_parts(args: argparse.Namespace, results: dict) -> None:
    """Every measurement, in order; each part's wall time and load average are recorded."""
    parts = results["parts"] = {}

    def mark(name: str, started: float, less: float = 0.0) -> None:
        parts[name] = {
            "seconds": round(time.perf_counter() - started - less, 1),
            "load_1min": os.getloadavg()[0],
        }

    started = time.perf_counter()
    log("compute ceiling ...")
    results["ceiling"] = {
        "matmul": ceiling.matmul_gflops(),
        "matmul_bf16": ceiling.matmul_gflops(dtype=torch.bfloat16),  # context: what bf16 offers
        "model": ceiling.model_flops(),
    }
    gflops = results["ceiling"]["matmul"]["gflops_median"]
    flops = results["ceiling"]["model"]
    mark("ceiling", started)

    if "train" not in args.skip:
        started = time.perf_counter()
        log(f"training throughput: {args.rounds} rounds x {args.train_steps} steps ...")
        train = results["train"] = train_throughput.benchmark(
            args.train_steps,
            args.rounds,
            DATA_DIR,
            log=log,
            probe=ceiling.probe_gflops,
            # bench-quick: the notebook's fixed-length batches need no whole megabatch
            notebook_steps=QUICK_NOTEBOOK_STEPS if args.quick else None,
        )
        per_token = flops["lora_train_flops_per_token"]

        def share(recipe: str, metric: str) -> float:
            """Median over rounds of the run's FLOP rate / that round's matmul rate."""
            return median(
                [
                    ceiling.ceiling_pct(x[metric], per_token, x["matmul_gflops_this_round"])
                    for x in train["runs"]
                    if x["recipe"] == recipe
                ]
            )

        results["ceiling_pct"] = share("project", "tokens_per_s")
        results["ceiling_pct_vs_start_matmul"] = ceiling.ceiling_pct(
            train["median"]["project"]["tokens_per_s"], per_token, gflops
        )
        results["ceiling_pct_vs_bf16_matmul"] = ceiling.ceiling_pct(
            train["median"]["project"]["tokens_per_s"],
            per_token,
            results["ceiling"]["matmul_bf16"]["gflops_median"],
        )
        results["ceiling_pct_notebook_useful"] = share("notebook", "tokens_per_s")
        results["ceiling_pct_notebook_executed"] = share("notebook", "positions_per_s")
        mark("train", started)
    if "infer" not in args.skip:
        started = time.perf_counter()
        log(f"inference throughput: {args.rounds} rounds ...")
        infer = results["infer"] = infer_throughput.benchmark(args.rounds, log=log)
        results["infer_ceiling_pct"] = ceiling.ceiling_pct(
            infer["median_sps"]["project"] * infer["mean_tokens_per_sentence"],
            flops["forward_flops_per_token"],
            gflops,
        )
        mark("infer", started)
    if "memory" not in args.skip and not args.quick:
        started = time.perf_counter()
        log("inference peak memory (one fresh subprocess per method) ...")
        results["memory"] = infer_throughput.memory_in_subprocesses(log=log)
        mark("memory", started)
    if "pipeline" not in args.skip:
        started = time.perf_counter()
        log(
            "pipeline wall time, cold then warm, quick profile "
            + (
                "CAPPED for bench-quick: --max-train-samples 1000 --max-validation-samples 200"
                if args.quick
                else "(12,000 train / 1,000 validation rows)"
            )
            + " ..."
        )
        results["pipeline"] = pipeline_walltime.benchmark(
            args.quick,
            log=log,
            keep=args.keep_pipeline_dir,
            on_model=functools.partial(check_model, args=args),
        )
        checked = results["pipeline"].pop("model_check")
        results["precision_accuracy"] = checked["precision_accuracy"]
        results["onnx"] = checked["onnx"]
        onnx_part = checked.get("onnx_part")  # its time is its own part's, not the pipeline's
        mark("pipeline", started, less=onnx_part["seconds"] if onnx_part else 0.0)
        if onnx_part:
            parts["onnx"] = onnx_part
    elif "onnx" not in args.skip:
        log("onnx: not measured (it needs the pipeline part's model)")
    results["accuracy"] = accuracy_part(args, results.get("pipeline"))
    if results.get("pipeline"):
        results["pipeline"].pop("cold_summary", None)  # large; its numbers are in accuracy


def main(argv: list[str] | None = None) -> int:
    """Run every part, write the JSON, print the tables and the final line."""
    args = parse_args(argv)
    started = time.perf_counter()
    set_threads()
    info = machine_info()
    log(
        f"bench ({'quick' if args.quick else 'full'}): {info['cpu_model']}, {info['cpu_cores']} "
        f"cores, torch {info['torch']} on {TORCH_THREADS} threads (set explicitly), load "
        f"{info['load_average_start'][0]:.2f}"
    )
    results: dict = {"mode": "quick" if args.quick else "full", "machine": info}
    results["settings"] = {
        "rounds": args.rounds,
        "train_steps": args.train_steps,
        "notebook_train_steps": QUICK_NOTEBOOK_STEPS if args.quick else args.train_steps,
    }
    run_parts(args, results)
    results["machine"]["load_average_end"] = list(load_average())
    results["total_seconds"] = round(time.perf_counter() - started, 1)

    print_tables(results)
    line = final_line(results)
    results["final_line"] = line
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    end = results["machine"]["load_average_end"]
    log(
        f"\nresults: {args.out}; {results['total_seconds']:.0f} s in all; load average "
        f"{info['load_average_start'][0]:.2f} at the start, {end[0]:.2f} at the end"
    )
    log(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
