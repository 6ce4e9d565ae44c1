"""Thin Prefect tasks: each calls one or two functions of ``sentiment_lora``.

Caching, retries and logging live here; the logic lives in ``src/sentiment_lora``.
"""

import shutil
from datetime import datetime
from pathlib import Path

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.logging import get_run_logger
from prefect.runtime import flow_run
from pydantic import BaseModel, ConfigDict

from sentiment_lora.config import DataConfig, LoraHyperparams, PipelineConfig, TrainConfig
from sentiment_lora.evidence.collect import Evidence
from sentiment_lora.evidence.data_diff import DataDiff
from sentiment_lora.operations.data_manifest import DataVersionError, find_version
from sentiment_lora.operations.data_versions import TRAIN_FILE
from sentiment_lora.operations.disk import dir_bytes, free_bytes
from sentiment_lora.operations.gate import GateDecision
from sentiment_lora.operations.ledger import read_ledger
from sentiment_lora.operations.run_records import PublishedRun, run_record
from sentiment_lora.operations.storage import is_url
from sentiment_lora.paths import publish_run
from sentiment_lora.reporting.environment import environment_info
from sentiment_lora.reporting.render import render_report
from sentiment_lora.reporting.results import DiskUse, PrefectInfo, build_run_summary
from sentiment_lora.reporting.run_files import stage_run, test_predictions_frame
from sentiment_lora.reporting.sentences import report_links, summary_markdown
from sentiment_lora.training.data import PreparedData, prepare_sst2
from sentiment_lora.training.ensemble import (
    ensemble_name,
    ensemble_result,
    is_ensemble_dir,
    write_ensemble,
)
from sentiment_lora.training.evaluation import Evaluation
from sentiment_lora.training.lora import TrainingResult, train_lora
from sentiment_lora.training.scoring import evaluate_saved_model
from sentiment_lora.training.selection import select_best
from tasks.caching import (
    CACHED,
    adapter_complete,
    adapter_path,
    ensemble_cache_key,
    ensemble_dir,
    evaluate_cache_key,
    prepare_cache_key,
    prepared_complete,
    prepared_dir,
    retry_unless_user_error,
    train_cache_key,
    training_dir,
)


class ConfigRun(BaseModel):
    """One config trained and evaluated on test (what a `sst2-train-config` run returns)."""

    model_config = ConfigDict(frozen=True)
    training: TrainingResult
    test: Evaluation


def _run_name(verb: str, config: str, first_rung: float | None) -> str:
    """Task run name, e.g. ``train-all-r16`` or ``train-all-r16-first-rung``."""
    return f"{verb}-{config}" + ("-first-rung" if first_rung else "")


@task(
    name="prepare-data",
    cache_key_fn=prepare_cache_key,
    retries=1,
    retry_delay_seconds=5,
    retry_condition_fn=retry_unless_user_error,
    **CACHED,
)
def prepare_data(config: DataConfig, artifacts_dir: str) -> PreparedData:
    """Validate, clean and split SST-2 into the artifacts root."""
    prepared = prepare_sst2(config, prepared_dir(artifacts_dir, config))
    get_run_logger().info("data: %s", prepared.counts)
    return prepared


@task(
    name="train-config",
    task_run_name=lambda parameters: _run_name(
        "train", parameters["hp"].name, parameters.get("stop_at_epoch")
    ),
    cache_key_fn=train_cache_key,
    retries=1,
    retry_delay_seconds=10,
    retry_condition_fn=retry_unless_user_error,
    **CACHED,
)
def train_config(
    prepared: PreparedData,
    hp: LoraHyperparams,
    train: TrainConfig,
    artifacts_dir: str,
    stop_at_epoch: float | None = None,
) -> TrainingResult:
    """Fine-tune one grid config (resuming from its checkpoint after a crash or a first rung);
    ``stop_at_epoch`` stops it at successive halving's first rung."""
    result = train_lora(
        prepared,
        hp,
        train,
        training_dir(artifacts_dir, prepared, hp, train),
        stop_at_epoch=stop_at_epoch,
    )
    get_run_logger().info(
        "[%s]%s validation accuracy %.4f, macro-F1 %.4f in %.0fs",
        hp.name,
        f" first rung ({stop_at_epoch:g} epoch):" if stop_at_epoch else "",
        result.validation_metrics.accuracy,
        result.validation_metrics.f1_macro,
        result.train_seconds,
    )
    return result


@task(
    name="evaluate-on-test",
    task_run_name=lambda parameters: _run_name(
        "evaluate", parameters["result"].config_name, parameters["result"].stopped_at_epoch
    ),
    cache_key_fn=evaluate_cache_key,
    **CACHED,
)
def evaluate_on_test(
    result: TrainingResult, prepared: PreparedData, train: TrainConfig
) -> Evaluation:
    """Evaluate one trained config on the test split."""
    evaluation = evaluate_saved_model(
        result.adapter_dir,
        prepared.test_path,
        name=result.config_name,
        **train.inference_options(),
    )
    get_run_logger().info(
        "[%s] test accuracy %.4f, macro-F1 %.4f",
        result.config_name,
        evaluation.metrics.accuracy,
        evaluation.metrics.f1_macro,
    )
    return evaluation


def prepare_data_fresh(config: DataConfig, artifacts_dir: str) -> PreparedData:
    """``prepare_data``, recomputed instead of served from the cache if its files are gone."""
    refresh = not prepared_complete(artifacts_dir, config)
    return prepare_data.with_options(refresh_cache=refresh)(config, artifacts_dir)


def train_config_fresh(
    prepared: PreparedData,
    hp: LoraHyperparams,
    train: TrainConfig,
    artifacts_dir: str,
    stop_at_epoch: float | None = None,
):
    """``train_config`` submitted; recomputed instead of a cache hit if its adapter is gone."""
    adapter = adapter_path(artifacts_dir, prepared, hp, train, stop_at_epoch)
    task = train_config.with_options(refresh_cache=not adapter_complete(adapter))
    return task.submit(prepared, hp, train, artifacts_dir, stop_at_epoch)


@task(
    name="build-ensemble",
    task_run_name=lambda parameters: ensemble_name(len(parameters["members"])),
    cache_key_fn=ensemble_cache_key,
    **CACHED,
)
def build_ensemble(
    members: list[TrainingResult], prepared: PreparedData, train: TrainConfig, artifacts_dir: str
) -> ConfigRun:
    """Save the mean of ``members`` as one model and evaluate it on validation (where it is
    selected against the configs) and on test, with the same function as any model."""
    name = ensemble_name(len(members))
    model_dir = str(write_ensemble(members, ensemble_dir(artifacts_dir, members)))
    options = train.inference_options()
    validation = evaluate_saved_model(model_dir, prepared.validation_path, name=name, **options)
    test = evaluate_saved_model(model_dir, prepared.test_path, name=name, **options)
    result = ensemble_result(members, model_dir, validation)
    get_run_logger().info(
        "[%s] mean of %s: validation macro-F1 %.4f; test accuracy %.4f, predictions %.1fs",
        name,
        ", ".join(result.members),
        result.validation_metrics.f1_macro,
        test.metrics.accuracy,
        test.predict_seconds or 0.0,
    )
    return ConfigRun(training=result, test=test)


def build_ensemble_fresh(
    members: list[TrainingResult], prepared: PreparedData, train: TrainConfig, artifacts_dir: str
) -> ConfigRun:
    """``build_ensemble``, recomputed instead of a cache hit if its directory is gone."""
    refresh = not is_ensemble_dir(ensemble_dir(artifacts_dir, members))
    return build_ensemble.with_options(refresh_cache=refresh)(
        members, prepared, train, artifacts_dir
    )


@task(name="select-best")
def select_best_config(results: list[TrainingResult]) -> TrainingResult:
    """Pick the best config on validation metrics."""
    best = select_best(results)
    get_run_logger().info(
        "best config: %s (validation macro-F1 %.4f)",
        best.config_name,
        best.validation_metrics.f1_macro,
    )
    return best


def _disk_use(best: TrainingResult, runs: list[ConfigRun], reports_dir: Path) -> DiskUse:
    """Bytes of the published model, of every config's saved model, and free on the reports'
    file system (saved models on a remote artifacts store count 0 here)."""
    local = [Path(r.training.adapter_dir) for r in runs if not is_url(r.training.adapter_dir)]
    model = Path(best.adapter_dir)
    return DiskUse(
        model_bytes=0 if is_url(best.adapter_dir) else dir_bytes(model),
        training_bytes=sum(dir_bytes(path) for path in local),
        free_bytes=free_bytes(reports_dir),
    )


def _data_version(prepared: PreparedData) -> str | None:
    """The recorded version (``data add``) of the train.tsv this run read; None for data that
    is not versioned. A damaged manifest costs the label, not the finished run."""
    sha256 = prepared.source_hashes.get(TRAIN_FILE)
    if sha256 is None or not Path(prepared.source).is_dir():
        return None
    try:
        version = find_version(prepared.source, sha256)
    except DataVersionError as exc:
        get_run_logger().warning("data version not recorded in the results: %s", exc)
        return None
    return version.version if version else None


@task(name="write-results")
def write_results(
    *,
    run_id: str,
    config: PipelineConfig,
    prepared: PreparedData,
    runs: list[ConfigRun],
    best: TrainingResult,
    baselines: dict[str, Evaluation],
    evidence: Evidence,
    decision: GateDecision | None,
    started_at: datetime,
    repo_dir: str,
    data_diff: DataDiff | None = None,
    data_snapshot: str | None = None,
    ledger: PublishedRun | None = None,
) -> str:
    """Write ``reports/<run-id>/`` (JSON, model, predictions, snapshot, report), move ``latest``.

    ``ledger`` holds this run's ledger fields: the report's trend shows the ledger so far
    with this run last.
    """
    registry_dir = config.options.registry_dir
    history = [*read_ledger(registry_dir)]
    if ledger is not None:
        history.append(run_record(registry_dir, ledger, promoted_yet=False))
    summary = build_run_summary(
        run_id=run_id,
        config=config,
        prepared=prepared,
        results=[(run.training, run.test) for run in runs],
        best=best,
        baselines=baselines,
        evidence=evidence,
        decision=decision,
        environment=environment_info(config, prepared.source_hashes, repo_dir=Path(repo_dir)),
        prefect=PrefectInfo(flow_run_id=flow_run.get_id(), flow_run_name=flow_run.get_name()),
        started_at=started_at,
        data_diff=data_diff,
        history=history,
        data_version=_data_version(prepared),
        disk=_disk_use(best, runs, Path(config.options.reports_dir)),
    )
    reports_dir = Path(config.options.reports_dir)
    evaluations = {run.training.config_name: run.test for run in runs}
    stage = stage_run(
        reports_dir=reports_dir,
        summary=summary,
        best_adapter_dir=Path(best.adapter_dir),
        predictions=test_predictions_frame(prepared, {**evaluations, **baselines}),
        data_snapshot=Path(data_snapshot) if data_snapshot else None,
    )
    try:
        render_report(stage)  # the run is published only once its report is complete
        run_dir = publish_run(stage, reports_dir, run_id)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # nothing half-written is left behind
        raise

    links = report_links(config.options.report_base_url, run_id)
    create_markdown_artifact(
        key="sst2-run-summary",
        description=f"Run {run_id}: key metrics and verdicts",
        markdown=summary_markdown(summary, links=links),
    )
    create_link_artifact(
        key="sst2-report-pdf", link=links["report (PDF)"], link_text=f"{run_id} report.pdf"
    )
    create_link_artifact(
        key="sst2-report-html", link=links["report (HTML)"], link_text=f"{run_id} report.html"
    )
    get_run_logger().info("wrote %s (report: %s)", run_dir, links["report (PDF)"])
    return str(run_dir)
