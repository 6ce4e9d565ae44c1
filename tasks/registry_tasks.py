"""Champion/challenger gate tasks around ``sentiment_lora.operations.registry``."""

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger

from sentiment_lora.operations.registry import (
    GateDecision,
    ModelRecord,
    champion_model_dir,
    decide,
    model_record,
    promote,
    read_champion,
)
from sentiment_lora.paths import MODEL_DIR
from sentiment_lora.training.data import DECISION_THRESHOLD, PreparedData, read_split
from sentiment_lora.training.evaluation import Evaluation
from sentiment_lora.training.inference import SentimentAnalyzer
from sentiment_lora.training.lora import TrainingResult


@task(name="champion-gate")
def champion_gate(
    best: TrainingResult,
    best_test: Evaluation,
    prepared: PreparedData,
    *,
    run_id: str,
    registry_dir: str,
    alpha: float,
) -> GateDecision:
    """Decide whether this run's best model replaces the registry's champion."""
    test = read_split(prepared.test_path)
    challenger = model_record(
        best_test,
        run_id=run_id,
        model_key=Path(best.adapter_dir).parent.name,
        sentences=test["sentence"].tolist(),
    )
    champion = read_champion(registry_dir)
    champion_predictions = None
    if (
        champion is not None
        and champion.model_key != challenger.model_key
        and champion.test_set_hash != challenger.test_set_hash
    ):  # the test set changed since the champion was scored: score it again
        analyzer = SentimentAnalyzer.load(champion_model_dir(registry_dir))
        probs = analyzer.predict_proba(test["sentence"].tolist())[:, 1]
        champion_predictions = [int(p >= DECISION_THRESHOLD) for p in probs]
    decision = decide(
        challenger,
        champion,
        labels=test["label"].tolist(),
        champion_predictions=champion_predictions,
        alpha=alpha,
    )
    verb = "promoted" if decision.promoted else "kept the champion"
    get_run_logger().info("champion gate: %s: %s", verb, decision.reason)
    champ = decision.champion
    create_markdown_artifact(
        key="sst2-champion-gate",
        description=f"Champion/challenger decision for run {run_id}",
        markdown=(
            f"# Champion gate: {'promoted' if decision.promoted else 'champion kept'}\n\n"
            f"{decision.reason}\n\n| | challenger | champion |\n|---|---|---|\n"
            f"| run | {challenger.run_id} | {champ.run_id if champ else '-'} |\n"
            f"| config | {challenger.config_name} | {champ.config_name if champ else '-'} |\n"
            f"| test accuracy | {challenger.test_accuracy:.4f} | "
            f"{f'{champ.test_accuracy:.4f}' if champ else '-'} |\n"
            f"| test macro-F1 | {challenger.test_f1_macro:.4f} | "
            f"{f'{champ.test_f1_macro:.4f}' if champ else '-'} |\n"
        ),
    )
    return decision


@task(name="promote-champion")
def promote_champion(decision: GateDecision, run_dir: str, registry_dir: str) -> ModelRecord:
    """Copy the run's model into the registry as the new champion."""
    record = promote(registry_dir, decision.challenger, Path(run_dir) / MODEL_DIR)
    get_run_logger().info("new champion: %s from run %s", record.config_name, record.run_id)
    return record
