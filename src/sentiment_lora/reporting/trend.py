"""The runs' history as a trend: every published run's test scores and the champion's line.

Built from the run ledger (:mod:`sentiment_lora.operations.ledger`): a point per run, the
champion's test accuracy after each run (a step line), promotions and rollbacks marked.
Scores on different test sets are not comparable, so the runs fall into segments by the
test set's hash: a new segment starts where the test set changed, and the champion's line
restarts there (its score on the old test set says nothing about the new one).
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
    test_set_hash: str | None = None  # None: a run recorded before the ledger kept it
    segment: int = 0  # index into Trend.segments


class TrendSegment(BaseModel):
    """Consecutive runs scored on one test set: points ``start`` to ``end`` - 1."""

    model_config = ConfigDict(frozen=True)
    start: int
    end: int
    test_set_hash: str | None
    test_rows: int | None  # sentences in that test set, where the ledger recorded it


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
    segments: list[TrendSegment] = []


def build_trend(records: Sequence[LedgerRecord]) -> Trend:
    """The trend of a ledger: runs in order, the champion's accuracy after each event.

    A promoted run becomes the champion (its version may still be unknown for the run being
    reported, which is promoted after its report is written); a rollback makes an earlier
    version champion again.
    """
    accuracy_of: dict[str, float] = {}  # champion version -> test accuracy of its run
    test_set_of: dict[str, str | None] = {}  # champion version -> the test set of that score
    champion_accuracy: float | None = None
    champion_test_set: str | None = None
    points: list[TrendPoint] = []
    rollbacks: list[TrendRollback] = []
    segments: list[TrendSegment] = []
    for record in records:
        if isinstance(record, RollbackLedgerRecord):
            if record.version in accuracy_of:
                champion_accuracy = accuracy_of[record.version]
                champion_test_set = test_set_of[record.version]
            rollbacks.append(
                TrendRollback(
                    time=record.time, version=record.version, reason=record.reason,
                    after=len(points),
                )
            )  # fmt: skip
            continue
        assert isinstance(record, RunLedgerRecord)
        promoted = record.gate == "promoted"
        if not segments or segments[-1].test_set_hash != record.test_set_hash:
            if segments:
                segments[-1] = segments[-1].model_copy(update={"end": len(points)})
            test_rows = record.data.get("test")
            segments.append(
                TrendSegment(
                    start=len(points),
                    end=len(points) + 1,
                    test_set_hash=record.test_set_hash,
                    test_rows=test_rows if isinstance(test_rows, int) else None,
                )
            )
        if promoted:
            champion_accuracy, champion_test_set = record.test_accuracy, record.test_set_hash
            if record.champion_version:
                accuracy_of[record.champion_version] = record.test_accuracy
                test_set_of[record.champion_version] = record.test_set_hash
        comparable = champion_test_set == record.test_set_hash
        points.append(
            TrendPoint(
                run_id=record.run_id,
                time=record.time,
                accuracy=record.test_accuracy,
                f1_macro=record.test_f1_macro,
                promoted=promoted,
                champion_version=record.champion_version,
                champion_accuracy=champion_accuracy if comparable else None,
                test_set_hash=record.test_set_hash,
                segment=len(segments) - 1,
            )
        )
    if segments:
        segments[-1] = segments[-1].model_copy(update={"end": len(points)})
    return Trend(points=points, rollbacks=rollbacks, segments=segments)
