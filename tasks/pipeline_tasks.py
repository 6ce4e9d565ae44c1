"""Thin Prefect tasks: each calls one or two functions of ``sentiment_lora``.

Caching, retries and logging live here; the logic lives in ``src/sentiment_lora``.
"""

import shutil
from pathlib import Path
from typing import Any

from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.logging import get_run_logger
from pydantic import BaseModel, ConfigDict

from sentiment_lora.config import DataConfig, LoraHyperparams, PipelineConfig, TrainConfig
from sentiment_lora.paths import RESULTS_FILE, publish_run
from sentiment_lora.reporting.report import render_report, summary_markdown
from sentiment_lora.reporting.results import (
    build_summary,
    environment_info,
    stage_run,
    test_predictions_frame,
)
from sentiment_lora.training.data import PreparedData, prepare_sst2
from sentiment_lora.training.evaluation import Evaluation, evaluate_saved_model
from sentiment_lora.training.lora import TrainingResult, select_best, train_lora
from tasks.caching import (
    adapter_complete,
    evaluate_cache_key,
    prepare_cache_key,
    prepared_complete,
    prepared_dir,
    train_cache_key,
    training_dir,
)

_CACHED = {"persist_result": True, "cache_expiration": None}


class ConfigRun(BaseModel):
    """One config trained and evaluated on test (what a `sst2-train-config` run returns)."""

    model_config = ConfigDict(frozen=True)
    training: TrainingResult
    test: Evaluation


@task(
    name="prepare-data", cache_key_fn=prepare_cache_key, retries=1, retry_delay_seconds=5, **_CACHED
)
def prepare_data(config: DataConfig, artifacts_dir: str) -> PreparedData:
    """Validate, clean and split SST-2 into the artifacts root."""
    prepared = prepare_sst2(config, prepared_dir(artifacts_dir, config))
    get_run_logger().info("data: %s", prepared.counts)
    return prepared


@task(
    name="train-config",
    task_run_name="train-{hp.name}",
    cache_key_fn=train_cache_key,
    retries=1,
    retry_delay_seconds=10,
    **_CACHED,
)
def train_config(
    prepared: PreparedData, hp: LoraHyperparams, train: TrainConfig, artifacts_dir: str
) -> TrainingResult:
    """Fine-tune one grid config (resuming from its checkpoint after a crash)."""
    result = train_lora(prepared, hp, train, training_dir(artifacts_dir, prepared, hp, train))
    get_run_logger().info(
        "[%s] validation accuracy %.4f, macro-F1 %.4f in %.0fs",
        hp.name,
        result.validation_metrics["accuracy"],
        result.validation_metrics["f1_macro"],
        result.train_seconds,
    )
    return result


@task(
    name="evaluate-on-test",
    task_run_name="evaluate-{result.config_name}",
    cache_key_fn=evaluate_cache_key,
    **_CACHED,
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
    prepared: PreparedData, hp: LoraHyperparams, train: TrainConfig, artifacts_dir: str
):
    """``train_config`` submitted; recomputed instead of a cache hit if its adapter is gone."""
    adapter = training_dir(artifacts_dir, prepared, hp, train) / "adapter"
    task = train_config.with_options(refresh_cache=not adapter_complete(adapter))
    return task.submit(prepared, hp, train, artifacts_dir)


@task(name="select-best")
def select_best_config(results: list[TrainingResult]) -> TrainingResult:
    """Pick the best config on validation metrics."""
    best = select_best(results)
    get_run_logger().info(
        "best config: %s (validation macro-F1 %.4f)",
        best.config_name,
        best.validation_metrics["f1_macro"],
    )
    return best


@task(name="write-results")
def write_results(
    *,
    run_id: str,
    config: PipelineConfig,
    prepared: PreparedData,
    results: list[TrainingResult],
    best: TrainingResult,
    evaluations: dict[str, Evaluation],
    baselines: dict[str, Evaluation],
    repo_dir: str,
    extra: dict[str, Any],
) -> str:
    """Write ``reports/<run-id>/`` (JSON, model, predictions, report) and move ``latest``."""
    summary = build_summary(
        run_id=run_id,
        config=config,
        prepared=prepared,
        results=results,
        best=best,
        test_evaluations=evaluations,
        environment=environment_info(config, prepared, repo_dir=Path(repo_dir)),
        extra=extra,
    )
    reports_dir = Path(config.reports_dir)
    stage = stage_run(
        reports_dir=reports_dir,
        run_id=run_id,
        summary=summary,
        best_adapter_dir=Path(best.adapter_dir),
        predictions=test_predictions_frame(prepared, {**evaluations, **baselines}),
    )
    try:
        render_report(stage)  # the run is published only once its report is complete
        run_dir = publish_run(stage, reports_dir, run_id)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)  # nothing half-written is left behind
        raise

    base = config.report_base_url.rstrip("/")
    links = {
        "report (PDF)": f"{base}/runs/{run_id}/report.pdf",
        "report (HTML)": f"{base}/runs/{run_id}/report.html",
        "results (JSON)": f"{base}/runs/{run_id}/{RESULTS_FILE}",
    }
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
