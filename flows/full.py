"""The SST-2 LoRA pipeline: prepare data, train every config, select, evaluate, write results.

Run ``python flows/full.py --help``.
"""

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as `python flows/full.py`: make `flows`, `tasks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import flows._env  # noqa: F401, I001  (process defaults: must precede the Prefect import)

import argparse
from datetime import UTC, datetime
from typing import get_args

from prefect import flow, get_run_logger, unmapped
from prefect.runtime import flow_run
from pydantic import ValidationError

from flows._env import PROJECT_ROOT, hide_user_error_tracebacks
from sentiment_lora.cli_options import ModelOptions
from sentiment_lora.config import (
    DataConfig,
    GridName,
    LoraHyperparams,
    PipelineConfig,
    Profile,
    RunOptions,
    StatsConfig,
    TrainConfig,
    build_pipeline_config,
    default_profile,
    resolve_path,
)
from sentiment_lora.errors import DEBUG_ENV, UserError, debug_requested, report_input_error
from sentiment_lora.evidence.collect import Evidence
from sentiment_lora.operations.data_checkout import with_data_version
from sentiment_lora.operations.events import champion_kept, data_drifted
from sentiment_lora.option_docs import PIPELINE_GROUPS, PIPELINE_RENAMES
from sentiment_lora.operations.preflight import preflight
from sentiment_lora.operations.registry import champion_data_snapshot
from sentiment_lora.operations.storage import local_root
from sentiment_lora.paths import PDF_FILE, RESULTS_FILE, new_run_id
from sentiment_lora.training.data import PreparedData
from sentiment_lora.training.ensemble import top_k
from sentiment_lora.training.halving import first_rungs, merge, promoted
from tasks.evidence_tasks import (
    calibration,
    error_analysis,
    evaluate_baselines_task,
    predict_validation,
    statistical_tests,
)
from tasks.pipeline_tasks import (
    ConfigRun,
    build_ensemble_fresh,
    evaluate_on_test,
    prepare_data_fresh,
    select_best_config,
    train_config_fresh,
    write_results,
)
from tasks.pool_tasks import train_on_pool
from tasks.events import emit
from tasks.lineage_tasks import data_diff, publish_data_diff, snapshot_data_fresh
from tasks.locking import registry_guard
from tasks.registry_tasks import (
    champion_gate,
    published_run,
    promote_champion,
    record_run,
    run_trigger,
)

# The command line's option groups: every field of these models is an option.
OPTIONS = ModelOptions(PIPELINE_GROUPS)


@flow(name="sst2-lora-pipeline")
def sst2_lora_pipeline(
    profile: Profile = "quick",
    data: DataConfig | None = None,
    train: TrainConfig = TrainConfig(),  # noqa: B008 (frozen model: a safe default)
    grid: list[LoraHyperparams] | None = None,
    grid_name: GridName | None = None,
    stats: StatsConfig = StatsConfig(),  # noqa: B008 (frozen model: a safe default)
    options: RunOptions = RunOptions(),  # noqa: B008 (frozen model: a safe default)
) -> str:
    """Fine-tune LoRA configs on SST-2, select the best on validation, evaluate on test,
    gather the evidence, write the report and (with ``options.gate``) update the champion.

    Args:
        profile: Preset of data caps and grid: 'quick' (12,000 training rows, the quick
            grid) or 'full' (every row, the lora grid).
        data: Data settings; fields left at their defaults keep the profile's values.
        train: Model and training settings shared by every config.
        grid: Hyperparameter configs to train; empty means the profile's grid.
        grid_name: A named grid instead of the profile's ('quick', 'quick-full', 'lora',
            'notebook').
        stats: Settings of the statistical tests, calibration and error analysis.
        options: Directories, training backend, champion gate and report server URL.

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
        options=options,
    )
    preflight(config)  # writable dirs, data files, model: before any expensive work
    options = config.options
    workdir = str(local_root(options.artifacts_dir))  # a URL root is mirrored locally
    config = with_data_version(config, workdir)  # --data-version: a recorded version's files
    prepared = prepare_data_fresh(config.data, workdir)
    data_dir = str(resolve_path(config.data.data_dir)) if config.data.source == "local" else None
    snapshot = snapshot_data_fresh(prepared, data_dir, workdir)
    runs = _train_grid(config, prepared, workdir)
    if config.train.ensemble_top_k:  # one more candidate: the mean of the k best
        members = top_k([run.training for run in runs], config.train.ensemble_top_k)
        runs.append(build_ensemble_fresh(members, prepared, config.train, workdir))
    best = select_best_config([run.training for run in runs])
    tests = {run.training.config_name: run.test for run in runs}
    best_test = tests[best.config_name]

    baselines = evaluate_baselines_task(prepared, config.train)
    validation = predict_validation(best, prepared, config.train)
    evidence = Evidence(
        tests=statistical_tests(best_test, baselines, tests, config.stats),
        calibration=calibration(validation, best_test, config.stats),
        errors=error_analysis(prepared, best_test, config.stats),
    )

    run_id = new_run_id((flow_run.get_id() or "local")[:8])
    triggered_by = run_trigger()
    with registry_guard(options.registry_dir):  # one run at a time: diff, gate, publish, promote
        diff = data_diff(
            prepared,
            data_dir,
            snapshot,
            _champion_snapshot(options.registry_dir),
            config.stats.alpha,
        )
        publish_data_diff(diff)  # the artifact and the alert, here: a cache hit says it again
        if diff.drifted:
            emit(data_drifted(diff, run_id=run_id, data_dir=data_dir))
        decision = None
        if options.gate != "off":
            decision = champion_gate(
                best,
                best_test,
                prepared,
                config.train,
                run_id=run_id,
                registry_dir=options.registry_dir,
                alpha=config.stats.alpha,
                slice_rule=options.slice_gate,
                export_check=options.export_check,
                rule=options.gate_rule,
                margin=options.gate_margin,
                data_dir=data_dir,
                dry_run=options.gate == "dry-run",
            )
        ledger = published_run(
            run_id=run_id,
            triggered_by=triggered_by,
            prepared=prepared,
            best=best,
            best_test=best_test,
            decision=decision,
        )
        run_dir = write_results(
            run_id=run_id,
            config=config,
            prepared=prepared,
            runs=runs,
            best=best,
            baselines=baselines,
            evidence=evidence,
            decision=decision,
            started_at=started,
            repo_dir=str(PROJECT_ROOT),
            data_diff=diff,
            data_snapshot=snapshot,
            ledger=ledger,
        )
        if decision is not None and decision.promoted:
            promote_champion(decision, run_dir, options.registry_dir, best)
        record = record_run(options.registry_dir, ledger)
        if decision is not None and not decision.promoted:  # a gated run ends in one event
            emit(champion_kept(decision, outcome=record.gate, registry_dir=options.registry_dir))
    return run_dir


def _champion_snapshot(registry_dir: str) -> str | None:
    snapshot = champion_data_snapshot(registry_dir)
    return str(snapshot) if snapshot is not None else None


def _train_grid(config: PipelineConfig, prepared: PreparedData, workdir: str) -> list[ConfigRun]:
    """Train and test every config of the grid; with successive halving
    (``train.first_rung_epochs``), each stops at the first rung and only the best there
    trains on, resuming from its checkpoint."""
    stops = first_rungs(config.grid, config.train.first_rung_epochs)
    runs = _train(config, prepared, workdir, config.grid, stops)
    on = promoted([run.training for run in runs.values()])
    if on:
        get_run_logger().info("successive halving: %s trains on to the end", ", ".join(on))
        finals = _train(config, prepared, workdir, [hp for hp in config.grid if hp.name in on], {})
        for name, final in finals.items():
            training = merge(runs[name].training, final.training)
            runs[name] = ConfigRun(training=training, test=final.test)
    return [runs[hp.name] for hp in config.grid]


def _train(
    config: PipelineConfig,
    prepared: PreparedData,
    workdir: str,
    grid: list[LoraHyperparams],
    stops: dict[str, float | None],
) -> dict[str, ConfigRun]:
    """Train and test ``grid``, each config stopping where ``stops`` says (None: at its end):
    as tasks of this flow run (at most ``max_parallel`` at once), or with the `work-pool`
    backend as one `sst2-train-config` deployment run per config, all at once."""
    if config.options.backend == "work-pool":
        futures = train_on_pool.map(
            grid,
            data=unmapped(config.data),
            train=unmapped(config.train),
            artifacts_dir=unmapped(config.options.artifacts_dir),
            stop_at_epoch=[stops.get(hp.name) for hp in grid],
        )
        return {run.training.config_name: run for run in futures.result()}
    runs: dict[str, ConfigRun] = {}
    step = config.train.max_parallel
    for wave in (grid[i : i + step] for i in range(0, len(grid), step)):
        futures = [
            train_config_fresh(prepared, hp, config.train, workdir, stops.get(hp.name))
            for hp in wave
        ]
        for future in futures:
            result = future.result()
            test = evaluate_on_test(result, prepared, config.train)
            runs[result.config_name] = ConfigRun(training=result, test=test)
    return runs


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of ``python flows/full.py``, derived from the config models."""
    parser = argparse.ArgumentParser(
        description="Fine-tune, select and evaluate LoRA sentiment classifiers on SST-2."
    )
    parser.add_argument(
        "--debug",
        action="store_true",
        help=f"show the traceback of an error in the input too (or set {DEBUG_ENV}=1)",
    )
    parser.add_argument(
        "--profile",
        choices=get_args(Profile),
        default=None,
        help="quick: CPU-sized subset (default without a GPU); full: all rows (default with one)",
    )
    parser.add_argument(
        "--grid",
        dest="grid_name",
        choices=get_args(GridName),
        default=None,
        help="named hyperparameter grid (default: the profile's)",
    )
    OPTIONS.add_to(parser, rename=PIPELINE_RENAMES)
    return parser


def flow_parameters(argv: list[str] | None = None) -> dict[str, object]:
    """The flow's parameters from the command line (ValueError naming the option if invalid)."""
    args = build_parser().parse_args(argv)
    return {
        "profile": args.profile or default_profile(),
        "grid_name": args.grid_name,
        **{group: OPTIONS.build(args, group) for group in OPTIONS.models},
    }


def main(argv: list[str] | None = None) -> int:
    """Validate the options and the environment, run the flow, print where the results are.

    An error in the input, found before Prefect starts or inside a task, ends as one line
    ``error: ...`` and exit 2 (``--debug`` shows the traceback); other errors keep theirs.
    """
    debug = debug_requested("--debug" in (sys.argv[1:] if argv is None else argv))
    try:
        parameters = flow_parameters(argv)
        preflight(build_pipeline_config(**parameters))  # before Prefect starts anything
    except (ValueError, ValidationError) as exc:
        return report_input_error(exc, debug)
    if not debug:  # the run's log keeps the message; the console no traceback
        hide_user_error_tracebacks()
    try:
        run_dir = sst2_lora_pipeline(**parameters)
    except UserError as exc:
        return report_input_error(exc, debug)
    print(f"results: {Path(run_dir) / RESULTS_FILE}")
    print(f"report:  {Path(run_dir) / PDF_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
