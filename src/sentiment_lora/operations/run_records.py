"""A published run's ledger record, with the gate's verdict and the champion after it."""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from sentiment_lora.operations.gate import GateSummary
from sentiment_lora.operations.ledger import GateOutcome, RunLedgerRecord, append_record
from sentiment_lora.operations.locks import registry_lock
from sentiment_lora.operations.registry import read_champion_version
from sentiment_lora.operations.triggers import Trigger


def gate_outcome(decision: GateSummary | None) -> GateOutcome:
    """The gate's outcome in one word, as the ledger records it."""
    if decision is None:
        return "gate off"
    if decision.promoted:
        return "promoted"
    return "unchanged" if decision.unchanged else "kept"


def run_record(
    registry_dir: Path | str,
    *,
    run_id: str,
    triggered_by: Trigger,
    data: Mapping[str, str | int],
    best_config: str,
    test_accuracy: float,
    test_f1_macro: float,
    decision: GateSummary | None,
    hyperparameters: Mapping[str, JsonValue] | None = None,
    promoted_yet: bool = True,
    test_set_hash: str | None = None,
) -> RunLedgerRecord:
    """A published run's ledger record, with the champion version the registry holds now.

    With ``promoted_yet`` False (the record the run's own report shows, written before its
    promotion) a promoted run's version is not known yet: None.
    """
    champion = read_champion_version(registry_dir)
    version = champion.version if champion is not None else None
    if not promoted_yet and decision is not None and decision.promoted:
        version = None
    return RunLedgerRecord(
        run_id=run_id,
        triggered_by=triggered_by,
        data=dict(data),
        best_config=best_config,
        hyperparameters=dict(hyperparameters or {}),
        test_accuracy=test_accuracy,
        test_f1_macro=test_f1_macro,
        gate=gate_outcome(decision),
        gate_reason=decision.reason if decision is not None else "the gate is off",
        champion_version=version,
        test_set_hash=test_set_hash,
        gate_rule=decision.rule if decision is not None else None,
    )


def append_run_record(registry_dir: Path | str, **fields: Any) -> RunLedgerRecord:
    """Append a published run (:func:`run_record`'s fields) to the ledger, under the lock, so
    the champion version recorded is the one after this run's promotion."""
    with registry_lock(registry_dir):
        record = run_record(registry_dir, **fields)
        append_record(registry_dir, record)
    return record
