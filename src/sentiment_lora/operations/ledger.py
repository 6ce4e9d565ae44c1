"""The run ledger: one JSON line per published run or rollback, in ``<registry>/ledger.jsonl``.

The ledger only grows. Each append rewrites the file atomically (the old lines plus the new
one, then a rename) under the registry's lock, so a reader sees the old ledger or the new one,
never half a line. A truncated last line (left by a crash of another writer or a copy) is
skipped with a warning; any other bad line raises :class:`LedgerError` naming the file and line.
"""

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from sentiment_lora.errors import UserError, validation_message
from sentiment_lora.io import atomic_write_bytes
from sentiment_lora.operations.locks import LOCK_TIMEOUT, registry_lock
from sentiment_lora.operations.triggers import Trigger

LEDGER_FILE = "ledger.jsonl"
_DAMAGED = "restore the ledger from a backup, or move the line out of it"

GateOutcome = Literal["promoted", "kept", "unchanged", "gate off", "dry run"]

log = logging.getLogger(__name__)


class LedgerError(UserError):
    """A ledger that cannot be read, or a line of it that is not a record; names file:line."""


def now_utc() -> str:
    """The current time as the ledger and the registry write it (ISO 8601, UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


class RunFacts(BaseModel):
    """What a published run was: its trigger, data, best model and test scores."""

    model_config = ConfigDict(frozen=True)
    run_id: str = Field(..., min_length=1)
    triggered_by: Trigger
    data: dict[str, str | int]  # data fingerprint and row counts
    best_config: str
    hyperparameters: dict[str, JsonValue] = {}
    test_accuracy: float
    test_f1_macro: float
    test_set_hash: str | None = None  # the test set it was scored on (None: older records)
    train_sha256: str | None = None  # the train.tsv it read (None: older records)


class RunLedgerRecord(RunFacts):
    """A published run with the gate's verdict and the champion after it."""

    kind: Literal["run"] = "run"
    time: str = Field(default_factory=now_utc)
    gate: GateOutcome
    gate_reason: str
    champion_version: str | None  # the registry's champion after the run
    gate_rule: str | None = None  # the promotion rule applied, if the gate compared


class RollbackLedgerRecord(BaseModel):
    """A rollback: an earlier registry version made champion again, and why."""

    model_config = ConfigDict(frozen=True)
    kind: Literal["rollback"] = "rollback"
    time: str = Field(default_factory=now_utc)
    version: str
    previous_version: str | None
    reason: str = Field(..., min_length=1)


LedgerRecord = Annotated[RunLedgerRecord | RollbackLedgerRecord, Field(discriminator="kind")]
_RECORD = TypeAdapter(LedgerRecord)


def ledger_path(registry_dir: Path | str) -> Path:
    """The ledger file of a registry."""
    return Path(registry_dir) / LEDGER_FILE


def _parse(line: bytes, *, where: str) -> LedgerRecord:
    try:
        return _RECORD.validate_json(line.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise LedgerError(
            f"{where}: not UTF-8 ({exc.reason} at byte {exc.start}); {_DAMAGED}"
        ) from None
    except ValidationError as exc:
        raise LedgerError(
            f"{where}: not a ledger record: {validation_message(exc)}; {_DAMAGED}"
        ) from None


def _read(path: Path) -> bytes:
    """The ledger's bytes (b"" without a ledger)."""
    if not path.exists():
        return b""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"{path}: cannot be read ({exc.strerror or exc})") from None


def _complete_lines(path: Path) -> bytes:
    """The ledger's bytes up to its last complete record (a truncated tail is dropped)."""
    data = _read(path)
    if not data or data.endswith(b"\n"):
        return data
    head, _, tail = data.rpartition(b"\n")
    head = head + b"\n" if head else b""
    try:
        _parse(tail, where=str(path))
    except LedgerError:
        log.warning("%s: dropped a truncated last line (%d bytes)", path, len(tail))
        return head
    return data + b"\n"  # a complete record without its newline


def append_record(
    registry_dir: Path | str,
    record: RunLedgerRecord | RollbackLedgerRecord,
    *,
    timeout: float = LOCK_TIMEOUT,
) -> Path:
    """Append ``record`` to the registry's ledger (under the registry lock); returns the file."""
    path = ledger_path(registry_dir)
    line = record.model_dump_json().encode("utf-8") + b"\n"
    with registry_lock(registry_dir, timeout=timeout):
        return atomic_write_bytes(path, _complete_lines(path) + line)


def read_ledger(registry_dir: Path | str) -> list[LedgerRecord]:
    """The ledger's records, oldest first ([] without a ledger).

    A truncated last line is skipped with a warning; any other bad line raises
    :class:`LedgerError` naming the file and line.
    """
    path = ledger_path(registry_dir)
    lines = _read(path).split(b"\n")
    truncated = lines.pop()  # empty when the file ends with a newline
    records = [
        _parse(line, where=f"{path}:{number}")
        for number, line in enumerate(lines, start=1)
        if line.strip()
    ]
    if truncated.strip():
        try:
            records.append(_parse(truncated, where=f"{path}:{len(lines) + 1}"))
        except LedgerError:
            log.warning("%s:%d: skipped a truncated last line", path, len(lines) + 1)
    return records


def decisions_on_test_set(records: list[LedgerRecord], test_set_hash: str) -> int:
    """How many gate decisions of the ledger compared a challenger with the champion on the
    test set ``test_set_hash``: each one spent some of its power as a fresh holdout."""
    return sum(
        1
        for record in records
        if isinstance(record, RunLedgerRecord)
        and record.gate_rule is not None
        and record.test_set_hash == test_set_hash
    )
