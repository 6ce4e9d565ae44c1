"""Champion/challenger gate, promotion and the run ledger, around ``sentiment_lora.operations``.

These tasks run inside ``tasks.locking.registry_guard`` in the flow: called directly (not
submitted), so they run in the flow's thread, which holds the registry's re-entrant lock.
"""

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.client.orchestration import get_client
from prefect.logging import get_run_logger
from prefect.runtime import flow_run

from sentiment_lora.config import GateRule, TrainConfig
from sentiment_lora.deployment.export_check import check_export
from sentiment_lora.operations.events import champion_changed
from sentiment_lora.operations.gate import (
    GateDecision,
    as_dry_run,
    challenge_champion,
    gate_markdown,
    hash_test_set,
    with_export_check,
    without_export,
)
from sentiment_lora.operations.ledger import RunLedgerRecord, decisions_on_test_set, read_ledger
from sentiment_lora.operations.registry import VersionRecord, promote
from sentiment_lora.operations.run_records import PublishedRun, append_run_record
from sentiment_lora.operations.triggers import Trigger, classify_trigger
from sentiment_lora.paths import DATA_SNAPSHOT_DIR, MODEL_DIR
from sentiment_lora.training.data import PreparedData, read_split, train_data_hash
from sentiment_lora.training.ensemble import recorded_hyperparameters
from sentiment_lora.training.evaluation import Evaluation
from sentiment_lora.training.holdout import gate_holdout
from sentiment_lora.training.lora import TrainingResult
from tasks.events import emit


@task(name="champion-gate")
def champion_gate(
    best: TrainingResult,
    best_test: Evaluation,
    prepared: PreparedData,
    train: TrainConfig,
    *,
    run_id: str,
    registry_dir: str,
    alpha: float,
    slice_rule: bool = True,
    export_check: bool = False,
    rule: GateRule = "auto",
    margin: float = 0.01,
    data_dir: str | None = None,
    dry_run: bool = False,
) -> GateDecision:
    """Decide whether this run's best model replaces the registry's champion (scored on the
    data directory's holdout too, once it holds enough rows); the decision counts how many
    gate decisions this test set has served. A ``dry_run`` decides and reports, and promotes
    nothing."""
    sentences = read_split(prepared.test_path)["sentence"].tolist()
    decision = challenge_champion(
        best_test,
        model_dir=best.adapter_dir,
        run_id=run_id,
        sentences=sentences,
        registry_dir=registry_dir,
        alpha=alpha,
        inference_options=train.inference_options(),
        slice_rule=slice_rule,
        rule=rule,
        margin=margin,
        train_data_hash=train_data_hash(prepared),
        holdout=gate_holdout(data_dir),
    )
    if decision.rule is not None:
        served = decisions_on_test_set(read_ledger(registry_dir), decision.challenger.test_set_hash)
        decision = decision.model_copy(update={"test_set_decisions": served + 1})
    if export_check and best.members:
        why = f"{best.config_name} is {len(best.members)} models; ONNX export takes one"
        get_run_logger().info("export check: %s", why)
        decision = without_export(decision, why)
    elif export_check:
        check = check_export(best.adapter_dir, sentences, best_test.labels, quantize="int8")
        get_run_logger().info("export check: %s", check.reason)
        decision = with_export_check(decision, check)
    if dry_run:
        decision = as_dry_run(decision)
    get_run_logger().info("champion gate: %s: %s", decision.outcome(), decision.reason)
    create_markdown_artifact(
        key="sst2-champion-gate",
        description=f"Champion/challenger decision for run {run_id}",
        markdown=gate_markdown(decision),
    )
    return decision


@task(name="promote-champion")
def promote_champion(
    decision: GateDecision, run_dir: str, registry_dir: str, best: TrainingResult
) -> VersionRecord:
    """Copy the run's model and data snapshot into the registry as a new champion version."""
    record = promote(
        registry_dir,
        decision.challenger,
        Path(run_dir) / MODEL_DIR,
        hyperparameters=recorded_hyperparameters(best),
        reason=decision.reason,
        data_snapshot=Path(run_dir) / DATA_SNAPSHOT_DIR,
    )
    get_run_logger().info(
        "new champion %s: %s from run %s", record.version, record.config_name, record.run_id
    )
    emit(champion_changed(record, registry_dir, rolled_back=False))
    return record


@task(name="run-trigger")
def run_trigger() -> Trigger:
    """What started this flow run: the command line, the UI, the schedule or an automation."""
    run_id = flow_run.get_id()
    if run_id is None:
        return "cli"
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
    return classify_trigger(
        deployment_id=run.deployment_id,
        auto_scheduled=run.auto_scheduled,
        created_by_type=run.created_by.type if run.created_by else None,
    )


def published_run(
    *,
    run_id: str,
    triggered_by: Trigger,
    prepared: PreparedData,
    best: TrainingResult,
    best_test: Evaluation,
    decision: GateDecision | None,
) -> PublishedRun:
    """The facts of the run's ledger record (``operations.run_records.run_record`` builds it)."""
    sentences = read_split(prepared.test_path)["sentence"].tolist()
    return PublishedRun(
        run_id=run_id,
        triggered_by=triggered_by,
        data={"fingerprint": prepared.fingerprint, **prepared.counts},
        best_config=best.config_name,
        hyperparameters=recorded_hyperparameters(best),
        test_accuracy=best_test.metrics.accuracy,
        test_f1_macro=best_test.metrics.f1_macro,
        test_set_hash=hash_test_set(sentences, best_test.labels),
        train_sha256=prepared.source_hashes.get("train.tsv"),
        decision=decision.summary() if decision is not None else None,
    )


@task(name="record-run")
def record_run(registry_dir: str, run: PublishedRun) -> RunLedgerRecord:
    """Append the published run to the registry's ledger."""
    record = append_run_record(registry_dir, run)
    get_run_logger().info("ledger: %s %s (%s)", record.run_id, record.gate, record.triggered_by)
    return record
