"""Champion/challenger gate tasks around ``sentiment_lora.operations.registry``."""

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger

from sentiment_lora.config import TrainConfig
from sentiment_lora.operations.registry import (
    GateDecision,
    ModelRecord,
    challenge_champion,
    gate_markdown,
    promote,
)
from sentiment_lora.paths import MODEL_DIR
from sentiment_lora.training.data import PreparedData, read_split
from sentiment_lora.training.evaluation import Evaluation
from sentiment_lora.training.lora import TrainingResult


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
) -> GateDecision:
    """Decide whether this run's best model replaces the registry's champion."""
    decision = challenge_champion(
        best_test,
        model_dir=best.adapter_dir,
        run_id=run_id,
        sentences=read_split(prepared.test_path)["sentence"].tolist(),
        registry_dir=registry_dir,
        alpha=alpha,
        inference_options=train.inference_options(),
        slice_rule=slice_rule,
    )
    verb = "promoted" if decision.promoted else "kept the champion"
    get_run_logger().info("champion gate: %s: %s", verb, decision.reason)
    create_markdown_artifact(
        key="sst2-champion-gate",
        description=f"Champion/challenger decision for run {run_id}",
        markdown=gate_markdown(decision),
    )
    return decision


@task(name="promote-champion")
def promote_champion(decision: GateDecision, run_dir: str, registry_dir: str) -> ModelRecord:
    """Copy the run's model into the registry as the new champion."""
    record = promote(registry_dir, decision.challenger, Path(run_dir) / MODEL_DIR)
    get_run_logger().info("new champion: %s from run %s", record.config_name, record.run_id)
    return record
