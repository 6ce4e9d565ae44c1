"""The runs' history as a trend: every published run's test scores and the champion's line.

Built from the run ledger (:mod:`sentiment_lora.operations.ledger`): a point per run, the
champion's test accuracy after each run (a step line), promotions and rollbacks marked.
"""

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from sentiment_lora.operations.ledger import LedgerRecord, RollbackLedgerRecord, RunLedgerRecord


class TrendPoint(BaseModel):
    """One published run."""

    model_config = ConfigDict(frozen=True)
    run_id: str
    time: str
    accuracy: float
    f1_macro: float
    promoted: bool
    champion_version: str | None
    champion_accuracy: float | None  # the champion's test accuracy after this run


class TrendRollback(BaseModel):
    """A rollback between runs: ``after`` points were published before it."""

    model_config = ConfigDict(frozen=True)
    time: str
    version: str
    reason: str
    after: int


class Trend(BaseModel):
    """Every run in ledger order and the rollbacks between them."""

    model_config = ConfigDict(frozen=True)
    points: list[TrendPoint]
    rollbacks: list[TrendRollback]


def build_trend(records: Sequence[LedgerRecord]) -> Trend:
    """The trend of a ledger: runs in order, the champion's accuracy after each event.

    A promoted run becomes the champion (its version may still be unknown for the run being
    reported, which is promoted after its report is written); a rollback makes an earlier
    version champion again.
    """
    accuracy_of: dict[str, float] = {}  # champion version -> test accuracy of its run
    champion_accuracy: float | None = None
    points: list[TrendPoint] = []
    rollbacks: list[TrendRollback] = []
    for record in records:
        if isinstance(record, RollbackLedgerRecord):
            champion_accuracy = accuracy_of.get(record.version, champion_accuracy)
            rollbacks.append(
                TrendRollback(
                    time=record.time, version=record.version, reason=record.reason,
                    after=len(points),
                )
            )  # fmt: skip
            continue
        assert isinstance(record, RunLedgerRecord)
        promoted = record.gate == "promoted"
        if promoted:
            champion_accuracy = record.test_accuracy
            if record.champion_version:
                accuracy_of[record.champion_version] = record.test_accuracy
        points.append(
            TrendPoint(
                run_id=record.run_id,
                time=record.time,
                accuracy=record.test_accuracy,
                f1_macro=record.test_f1_macro,
                promoted=promoted,
                champion_version=record.champion_version,
                champion_accuracy=champion_accuracy,
            )
        )
    return Trend(points=points, rollbacks=rollbacks)
