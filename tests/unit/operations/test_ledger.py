"""The run ledger: append-only JSON lines beside the registry."""

import logging
import multiprocessing
from pathlib import Path

import pytest
from pydantic import ValidationError

from sentiment_lora.operations.gate import as_dry_run, decide
from sentiment_lora.operations.ledger import (
    LedgerError,
    RollbackLedgerRecord,
    RunLedgerRecord,
    append_record,
    decisions_on_test_set,
    ledger_path,
    read_ledger,
)
from sentiment_lora.operations.registry import ModelRecord, promote
from sentiment_lora.operations.run_records import PublishedRun, append_run_record, gate_outcome

LABELS = [1, 0] * 10


def _run(run_id: str, **update: object) -> RunLedgerRecord:
    fields = {
        "run_id": run_id,
        "time": "2025-01-02T03:04:05+00:00",
        "triggered_by": "schedule",
        "data": {"fingerprint": "abc123", "train": 120, "validation": 20, "test": 20},
        "best_config": "r8",
        "hyperparameters": {"lora_r": 8, "target_modules": None},
        "test_accuracy": 0.9,
        "test_f1_macro": 0.89,
        "gate": "promoted",
        "gate_reason": "no champion yet",
        "champion_version": "v0001",
    }
    return RunLedgerRecord.model_validate({**fields, **update})


def _record(name: str, wrong: set[int]) -> ModelRecord:
    acc = 1 - len(wrong) / len(LABELS)
    return ModelRecord(
        run_id=f"run-{name}",
        config_name=name,
        model_key=name,
        test_accuracy=acc,
        test_f1_macro=acc,
        test_set_hash="t",
        predictions=[1 - y if i in wrong else y for i, y in enumerate(LABELS)],
    )


def test_records_round_trip_in_order(tmp_path: Path) -> None:
    assert read_ledger(tmp_path) == []  # no ledger yet
    records = [
        _run("run-1"),
        RollbackLedgerRecord(version="v0001", previous_version="v0002", reason="bad slice"),
        _run("run-2", triggered_by="ui", gate="kept", champion_version="v0001"),
    ]
    for record in records:
        append_record(tmp_path, record)
    assert read_ledger(tmp_path) == records
    lines = ledger_path(tmp_path).read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and '"kind":"rollback"' in lines[1]


def test_a_truncated_last_line_is_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    append_record(tmp_path, _run("run-1"))
    whole = _run("run-2").model_dump_json()
    with ledger_path(tmp_path).open("a", encoding="utf-8") as fh:
        fh.write(whole[: len(whole) // 2])  # a writer died mid-line
    with caplog.at_level(logging.WARNING):
        assert [r.run_id for r in read_ledger(tmp_path)] == ["run-1"]
    assert "truncated last line" in caplog.text and ":2:" in caplog.text

    caplog.clear()
    with caplog.at_level(logging.WARNING):
        append_record(tmp_path, _run("run-3"))  # the fragment is dropped, not kept mid-file
    assert "truncated last line" in caplog.text
    assert [r.run_id for r in read_ledger(tmp_path)] == ["run-1", "run-3"]


def test_a_whole_last_record_without_its_newline_is_kept(tmp_path: Path) -> None:
    ledger_path(tmp_path).write_text(_run("run-1").model_dump_json(), encoding="utf-8")
    assert [r.run_id for r in read_ledger(tmp_path)] == ["run-1"]
    append_record(tmp_path, _run("run-2"))
    assert [r.run_id for r in read_ledger(tmp_path)] == ["run-1", "run-2"]


def test_a_bad_line_inside_the_ledger_raises_naming_it(tmp_path: Path) -> None:
    good = _run("run-1").model_dump_json()
    ledger_path(tmp_path).write_text(f"{good}\n{{not json\n{good}\n", encoding="utf-8")
    with pytest.raises(LedgerError, match=r"ledger\.jsonl:2: not a ledger record"):
        read_ledger(tmp_path)


def test_a_line_of_the_wrong_type_is_named_with_its_field(tmp_path: Path) -> None:
    good = _run("run-1").model_dump_json()
    retyped = good.replace('"test_accuracy":0.9', '"test_accuracy":"high"')
    ledger_path(tmp_path).write_text(f"{good}\n{retyped}\n{good}\n", encoding="utf-8")
    with pytest.raises(LedgerError) as raised:
        read_ledger(tmp_path)
    assert str(raised.value) == (
        f"{ledger_path(tmp_path)}:2: not a ledger record: run.test_accuracy: Input should be a "
        "valid number, unable to parse string as a number; restore the ledger from a backup, "
        "or move the line out of it"
    )


def test_a_ledger_that_is_not_a_file_is_named(tmp_path: Path) -> None:
    ledger_path(tmp_path).mkdir()
    with pytest.raises(LedgerError, match=r"ledger\.jsonl: cannot be read \(Is a directory"):
        read_ledger(tmp_path)


def test_records_reject_unknown_triggers_and_outcomes() -> None:
    with pytest.raises(ValidationError, match="triggered_by"):
        _run("run-1", triggered_by="cron")
    with pytest.raises(ValidationError, match="gate"):
        _run("run-1", gate="maybe")
    with pytest.raises(ValidationError, match="reason"):
        RollbackLedgerRecord(version="v0001", previous_version=None, reason="")


def test_gate_outcome_names_every_case() -> None:
    champion = _record("a", {1, 2, 3})
    assert gate_outcome(None) == "gate off"
    assert gate_outcome(decide(_record("b", {1}), champion, labels=LABELS)) == "promoted"
    assert gate_outcome(decide(_record("b", {1, 2, 3, 4}), champion, labels=LABELS)) == "kept"
    assert gate_outcome(decide(_record("a", {1, 2, 3}), champion, labels=LABELS)) == "unchanged"
    dry = as_dry_run(decide(_record("b", {1}), champion, labels=LABELS))
    assert gate_outcome(dry) == "dry run"


def test_append_run_record_writes_the_champion_version_after_the_run(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "adapter_model.safetensors").write_bytes(b"w")
    registry = tmp_path / "registry"
    decision = decide(_record("a", {1}), None, labels=LABELS)
    promote(registry, decision.challenger, model, reason=decision.reason)
    record = append_run_record(
        registry,
        PublishedRun(
            run_id="run-a",
            triggered_by="trigger",
            data={"fingerprint": "f", "test": 20},
            best_config="a",
            test_accuracy=0.95,
            test_f1_macro=0.94,
            decision=decision.summary(),
            hyperparameters={"lora_r": 4},
        ),
    )
    assert (record.gate, record.champion_version) == ("promoted", "v0001")
    assert record.gate_reason == decision.reason
    off = append_run_record(
        registry,
        PublishedRun(
            run_id="run-b",
            triggered_by="cli",
            data={},
            best_config="b",
            test_accuracy=0.5,
            test_f1_macro=0.5,
            decision=None,
        ),
    )
    assert (off.gate, off.champion_version) == ("gate off", "v0001")
    assert read_ledger(registry) == [record, off]


def _append_many(registry: str, prefix: str, barrier) -> None:
    barrier.wait()
    for i in range(25):
        append_record(registry, _run(f"{prefix}-{i}"))


def test_appends_from_two_processes_at_once_are_all_kept(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    writers = [
        ctx.Process(target=_append_many, args=(str(tmp_path), prefix, barrier))
        for prefix in ("a", "b")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
    assert [w.exitcode for w in writers] == [0, 0]
    ids = [r.run_id for r in read_ledger(tmp_path)]
    assert sorted(ids) == sorted(f"{p}-{i}" for p in "ab" for i in range(25))


def test_the_ledger_counts_the_gate_decisions_each_test_set_served(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    for run_id, test_set, rule in (
        ("run-1", "t1", None),  # first champion: nothing compared
        ("run-2", "t1", "superiority"),
        ("run-3", "t1", "non-inferiority"),
        ("run-4", "t2", "non-inferiority"),
        ("run-5", None, None),  # gate off
    ):
        append_record(registry, _run(run_id, test_set_hash=test_set, gate_rule=rule))
    append_record(
        registry, RollbackLedgerRecord(version="v0001", previous_version=None, reason="x")
    )
    records = read_ledger(registry)
    assert decisions_on_test_set(records, "t1") == 2
    assert decisions_on_test_set(records, "t2") == 1
    assert decisions_on_test_set(records, "t3") == 0
    old = _run("run-0")  # a record from before the ledger kept the test set
    assert old.test_set_hash is None and old.gate_rule is None
