"""The SST-2 LoRA pipeline: prepare data, train every config, select, evaluate, write results.

Run ``python flows/full.py --help``.
"""

import argparse
import sys
from datetime import UTC, datetime
from typing import Literal

from prefect import flow, unmapped
from prefect.runtime import flow_run
from pydantic import ValidationError

import flows._env  # noqa: F401, I001  (must precede the Prefect import)
from flows._env import PROJECT_ROOT
from sentiment_lora.config import (
    PRECISIONS,
    DataConfig,
    GridName,
    LoraHyperparams,
    PipelineConfig,
    Profile,
    StatsConfig,
    TrainConfig,
    build_pipeline_config,
    default_profile,
    resolve_path,
)
from sentiment_lora.operations.preflight import preflight
from sentiment_lora.operations.storage import is_url, local_root
from sentiment_lora.paths import new_run_id
from sentiment_lora.reporting.results import evidence_sections
from sentiment_lora.training.data import PreparedData
from tasks.evidence_tasks import (
    calibration,
    error_analysis,
    evaluate_baselines_task,
    predict_validation,
    statistical_tests,
)
from tasks.pipeline_tasks import (
    ConfigRun,
    evaluate_on_test,
    prepare_data_fresh,
    select_best_config,
    train_config_fresh,
    write_results,
)
from tasks.pool_tasks import train_on_pool
from tasks.registry_tasks import champion_gate, promote_champion


@flow(name="sst2-lora-pipeline")
def sst2_lora_pipeline(
    profile: Profile = "quick",
    data: DataConfig | None = None,
    train: TrainConfig = TrainConfig(),  # noqa: B008 (frozen model: a safe default)
    grid: list[LoraHyperparams] | None = None,
    grid_name: GridName | None = None,
    stats: StatsConfig = StatsConfig(),  # noqa: B008 (frozen model: a safe default)
    reports_dir: str = "reports",
    artifacts_dir: str = "artifacts",
    report_base_url: str = "http://127.0.0.1:8765",
    backend: Literal["local", "work-pool"] = "local",
    gate: bool = True,
    registry_dir: str = "registry",
) -> str:
    """Fine-tune LoRA configs on SST-2, select the best on validation, evaluate on test,
    gather the evidence, write the report and (with ``gate``) update the champion.

    Returns the run directory ``reports/<run-id>``.
    """
    started = datetime.now(UTC)
    config = build_pipeline_config(
        profile,
        data=data,
        train=train,
        grid=grid,
        grid_name=grid_name,
        stats=stats,
        reports_dir=str(resolve_path(reports_dir)),
        artifacts_dir=artifacts_dir if is_url(artifacts_dir) else str(resolve_path(artifacts_dir)),
        report_base_url=report_base_url,
        backend=backend,
        gate=gate,
        registry_dir=str(resolve_path(registry_dir)),
    )
    preflight(config)  # writable dirs, data files, model: before any expensive work
    workdir = str(local_root(config.artifacts_dir))  # a URL root is mirrored locally
    prepared = prepare_data_fresh(config.data, workdir)
    if config.backend == "work-pool":
        runs = _train_on_pool(config)
    else:
        runs = _train_here(config, prepared, workdir)
    results = [run.training for run in runs]
    evaluations = {run.training.config_name: run.test for run in runs}

    best = select_best_config(results)
    best_test = evaluations[best.config_name]

    baselines = evaluate_baselines_task(prepared, config.train)
    validation = predict_validation(best, prepared, config.train)
    evidence = evidence_sections(
        baselines=baselines,
        tests=statistical_tests(best_test, baselines, evaluations, config.stats),
        calibration=calibration(validation, best_test, config.stats),
        errors=error_analysis(prepared, best_test, config.stats),
    )

    run_id = new_run_id((flow_run.get_id() or "local")[:8])
    decision = None
    if config.gate:
        decision = champion_gate(
            best,
            best_test,
            prepared,
            run_id=run_id,
            registry_dir=config.registry_dir,
            alpha=config.stats.alpha,
        )
    run_dir = write_results(
        run_id=run_id,
        config=config,
        prepared=prepared,
        results=results,
        best=best,
        evaluations=evaluations,
        baselines=baselines,
        repo_dir=str(PROJECT_ROOT),
        extra={
            **evidence,
            "prefect": {"flow_run_id": flow_run.get_id(), "flow_run_name": flow_run.get_name()},
            "timings": {"started_at": started.isoformat(timespec="seconds")},
            "training_backend": config.backend,
            "champion": decision.model_dump(
                exclude={"challenger": {"predictions"}, "champion": {"predictions"}}
            )
            if decision
            else None,
        },
    )
    if decision is not None and decision.promoted:
        promote_champion(decision, run_dir, config.registry_dir)
    return run_dir


def _train_here(config: PipelineConfig, prepared: PreparedData, workdir: str) -> list[ConfigRun]:
    """Train the grid as tasks of this flow run, at most ``max_parallel`` at once."""
    runs: list[ConfigRun] = []
    step = config.train.max_parallel
    for wave in (config.grid[i : i + step] for i in range(0, len(config.grid), step)):
        futures = [train_config_fresh(prepared, hp, config.train, workdir) for hp in wave]
        for future in futures:
            result = future.result()
            runs.append(
                ConfigRun(training=result, test=evaluate_on_test(result, prepared, config.train))
            )
    return runs


def _train_on_pool(config: PipelineConfig) -> list[ConfigRun]:
    """One `sst2-train-config` deployment run per config, all at once; waits for every one."""
    futures = train_on_pool.map(
        config.grid,
        data=unmapped(config.data),
        train=unmapped(config.train),
        artifacts_dir=unmapped(config.artifacts_dir),
    )
    return futures.result()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options of ``python flows/full.py``."""
    p = argparse.ArgumentParser(
        description="Fine-tune, select and evaluate LoRA sentiment classifiers on SST-2."
    )
    p.add_argument(
        "--profile",
        choices=["quick", "full"],
        default=None,
        help="quick: CPU-sized subset (default without a GPU); full: all rows (default with one)",
    )
    p.add_argument(
        "--data-dir", default="data/sst2", help="directory with GLUE train.tsv and dev.tsv"
    )
    p.add_argument(
        "--data-source",
        choices=["local", "hub"],
        default="local",
        help="local TSV files or glue/sst2 from the Hugging Face hub",
    )
    p.add_argument(
        "--model",
        default="embedded",
        help="'embedded' (all-MiniLM-L6-v2), a local model directory or a hub id",
    )
    p.add_argument(
        "--grid",
        dest="grid_name",
        choices=["quick", "lora", "notebook"],
        default=None,
        help="named hyperparameter grid (default: the profile's)",
    )
    p.add_argument("--max-train-samples", type=int, default=None, help="cap on training rows")
    p.add_argument(
        "--max-validation-samples", type=int, default=None, help="cap on validation rows"
    )
    p.add_argument("--max-parallel", type=int, default=1, help="configs trained at once")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="auto",
        help="bf16 autocast training and bf16 inference; auto: where the device runs bf16 natively",
    )
    p.add_argument("--reports-dir", default="reports", help="where run directories are written")
    p.add_argument(
        "--artifacts-dir", default="artifacts", help="cache of prepared data and adapters"
    )
    p.add_argument(
        "--report-base-url",
        default="http://127.0.0.1:8765",
        help="where `sentiment-lora serve-reports` runs (for the report links in Prefect)",
    )
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Validate the options and the environment, run the flow, print where the results are."""
    args = parse_args(argv)
    profile = args.profile or default_profile()
    caps = {
        "max_train_samples": args.max_train_samples,
        "max_validation_samples": args.max_validation_samples,
    }
    try:
        base = build_pipeline_config(profile).data.model_dump()
        data = DataConfig.model_validate(
            {
                **base,
                "data_dir": args.data_dir,
                "source": args.data_source,
                **{k: v for k, v in caps.items() if v is not None},
            }
        )
        train = TrainConfig(
            model=args.model,
            max_parallel=args.max_parallel,
            device=args.device,
            precision=args.precision,
        )
        options = {
            "profile": profile,
            "data": data,
            "train": train,
            "grid_name": args.grid_name,
            "reports_dir": args.reports_dir,
            "artifacts_dir": args.artifacts_dir,
            "report_base_url": args.report_base_url,
        }
        preflight(
            build_pipeline_config(**{**options, "reports_dir": str(resolve_path(args.reports_dir))})
        )
    except (ValueError, ValidationError) as exc:  # before Prefect starts anything
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_dir = sst2_lora_pipeline(**options)
    print(f"results: {run_dir}/fine_tuning_results.json")
    print(f"report:  {run_dir}/report.pdf")
    return 0


if __name__ == "__main__":
    sys.exit(main())
