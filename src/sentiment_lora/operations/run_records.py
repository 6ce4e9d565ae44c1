"""A published run's ledger record, with the gate's verdict and the champion after it."""

from pathlib import Path

from sentiment_lora.operations.gate import GateSummary
from sentiment_lora.operations.ledger import (
    GateOutcome,
    RunFacts,
    RunLedgerRecord,
    append_record,
)
from sentiment_lora.operations.locks import registry_lock
from sentiment_lora.operations.registry import read_champion_version


def gate_outcome(decision: GateSummary | None) -> GateOutcome:
    """The gate's outcome in one word, as the ledger records it."""
    if decision is None:
        return "gate off"
    if decision.dry_run:
        return "dry run"
    if decision.promoted:
        return "promoted"
    return "unchanged" if decision.unchanged else "kept"


class PublishedRun(RunFacts):
    """What a run knows about itself when it publishes: its facts and the gate's decision."""

    decision: GateSummary | None = None  # None: the gate was off


def run_record(
    registry_dir: Path | str, run: PublishedRun, *, promoted_yet: bool = True
) -> RunLedgerRecord:
    """``run``'s ledger record, with the champion version the registry holds now: the one
    place a run's record is built.

    With ``promoted_yet`` False (the record the run's own report shows, written before its
    promotion) a promoted run's version is not known yet: None.
    """
    champion = read_champion_version(registry_dir)
    version = champion.version if champion is not None else None
    decision = run.decision
    if not promoted_yet and decision is not None and decision.promoted:
        version = None
    return RunLedgerRecord(
        **run.model_dump(include=set(RunFacts.model_fields)),
        gate=gate_outcome(decision),
        gate_reason=decision.reason if decision is not None else "the gate is off",
        champion_version=version,
        gate_rule=decision.rule if decision is not None else None,
    )


def append_run_record(registry_dir: Path | str, run: PublishedRun) -> RunLedgerRecord:
    """Append ``run`` to the ledger, under the lock, so the champion version recorded is the
    one after this run's promotion."""
    with registry_lock(registry_dir):
        record = run_record(registry_dir, run)
        append_record(registry_dir, record)
    return record
