"""Rollback to an earlier registry version, and the registry lock that serialises writers."""

import json
import multiprocessing
import threading
import time
from pathlib import Path

import pytest

from sentiment_lora.cli import main
from sentiment_lora.operations.gate import decide
from sentiment_lora.operations.ledger import RollbackLedgerRecord, read_ledger
from sentiment_lora.operations.locks import registry_lock
from sentiment_lora.operations.registry import (
    ModelRecord,
    VersionRecord,
    champion_model_dir,
    list_versions,
    promote,
    read_champion,
    read_champion_version,
    rollback,
)
from sentiment_lora.operations.run_records import PublishedRun, append_run_record

LABELS = [1, 0] * 10


def _record(name: str, wrong: set[int] = frozenset()) -> ModelRecord:
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


def _model(path: Path, weights: bytes) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "adapter_model.safetensors").write_bytes(weights)
    return path


def _registry_of_three(tmp_path: Path) -> Path:
    registry = tmp_path / "registry"
    for name in ("a", "b", "c"):
        promote(registry, _record(name), _model(tmp_path / f"model-{name}", name.encode()))
    return registry


def _files(registry: Path) -> dict[str, bytes]:
    root = registry / "versions"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_rollback_makes_an_earlier_version_champion_and_predict_serves_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    registry = _registry_of_three(tmp_path)
    versions_before = _files(registry)
    champion = rollback(registry, "v0001", reason="  v0003 misreads negations ")

    assert champion.version == "v0001" and champion.run_id == "run-a"
    change = champion.became_champion
    assert (change.cause, change.reason, change.previous_version) == (
        "rollback",
        "v0003 misreads negations",
        "v0003",
    )
    assert read_champion_version(registry) == champion
    assert read_champion(registry).config_name == "a"  # the gate now compares against v0001
    assert _files(registry) == versions_before  # versions are untouched
    assert [v.became_champion.cause for v in list_versions(registry)] == ["promotion"] * 3
    assert champion_model_dir(registry) == registry / "versions" / "v0001" / "model"
    [entry] = read_ledger(registry)
    assert isinstance(entry, RollbackLedgerRecord)
    assert (entry.version, entry.previous_version) == ("v0001", "v0003")
    assert entry.reason == "v0003 misreads negations" and entry.time == change.at

    from sentiment_lora.training.inference import Prediction, SentimentAnalyzer  # torch: slow

    loaded: list[Path] = []

    class Stub:
        def predict(self, texts: list[str]) -> list[Prediction]:
            p = {"negative": 0.2, "positive": 0.8}
            return [Prediction(label="positive", confidence=0.8, probabilities=p) for _ in texts]

    def load(cls, path: Path, **options: object) -> Stub:
        loaded.append(Path(path))
        return Stub()

    monkeypatch.setattr(SentimentAnalyzer, "load", classmethod(load))
    monkeypatch.chdir(tmp_path)  # predict's default registry is ./registry
    (tmp_path / "in.txt").write_text("a fine film\n", encoding="utf-8")
    assert main(["predict", "in.txt"]) == 0
    assert loaded == [Path("registry") / "versions" / "v0001" / "model"]
    assert json.loads(capsys.readouterr().out)["label"] == "positive"

    rollback(registry, "v0003", reason="the negation fix is out")  # and forward again
    assert main(["predict", "in.txt"]) == 0
    assert loaded[-1] == Path("registry") / "versions" / "v0003" / "model"


def test_a_promotion_after_a_rollback_is_the_next_version(tmp_path: Path) -> None:
    registry = _registry_of_three(tmp_path)
    rollback(registry, "v0002", reason="regression")
    new = promote(registry, _record("d"), _model(tmp_path / "model-d", b"d"))
    assert new.version == "v0004" and new.became_champion.previous_version == "v0002"
    assert (champion_model_dir(registry) / "adapter_model.safetensors").read_bytes() == b"d"


def test_rollback_refuses_unknown_versions_empty_reasons_and_the_champion(
    tmp_path: Path,
) -> None:
    registry = _registry_of_three(tmp_path)
    before = (registry / "champion.json").read_bytes()
    with pytest.raises(ValueError, match=r"^version: unknown version 'v0009' .*v0001, v0002"):
        rollback(registry, "v0009", reason="why not")
    with pytest.raises(ValueError, match="^reason: must not be empty"):
        rollback(registry, "v0001", reason=" \n")
    with pytest.raises(ValueError, match="^version: v0003 is the champion already"):
        rollback(registry, "v0003", reason="again")
    with pytest.raises(ValueError, match="^registry_dir: .* is not a directory"):
        rollback(tmp_path / "nowhere", "v0001", reason="why")
    with pytest.raises(ValueError, match="^version: unknown version 'v0001' .*none"):
        rollback(tmp_path, "v0001", reason="an empty registry")
    assert (registry / "champion.json").read_bytes() == before
    assert read_ledger(registry) == []
    assert not (tmp_path / "nowhere").exists()


def test_rollback_of_an_old_layout_registry_migrates_it_first(tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    _model(registry / "champion", b"old")
    (registry / "champion.json").write_text(_record("old").model_dump_json(), encoding="utf-8")
    with pytest.raises(ValueError, match="v0001 is the champion already"):
        rollback(registry, "v0001", reason="nothing to go back to")
    promote(registry, _record("new"), _model(tmp_path / "new", b"new"))
    rollback(registry, "v0001", reason="the new one is worse")
    assert (champion_model_dir(registry) / "adapter_model.safetensors").read_bytes() == b"old"


def test_rollback_keeps_a_champion_written_by_the_old_code_over_versions(tmp_path: Path) -> None:
    """An old-code promotion on a versioned registry: the next write migrates it first."""
    registry = _registry_of_three(tmp_path)
    _model(registry / "champion", b"old-code")
    (registry / "champion.json").write_text(_record("x").model_dump_json(), encoding="utf-8")
    assert [v.version for v in list_versions(registry)] == ["v0001", "v0002", "v0003", "v0004"]
    rollback(registry, "v0001", reason="back to a")
    assert [v.version for v in list_versions(registry)] == ["v0001", "v0002", "v0003", "v0004"]
    rollback(registry, "v0004", reason="forward to x")
    assert (champion_model_dir(registry) / "adapter_model.safetensors").read_bytes() == b"old-code"
    assert champion_model_dir(registry) == registry / "versions" / "v0004" / "model"


def test_the_lock_is_reentrant_in_a_thread_and_excludes_other_threads(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def other() -> None:
        try:
            with registry_lock(tmp_path, timeout=0.2):
                pass
        except TimeoutError as exc:
            errors.append(exc)

    with registry_lock(tmp_path) as path:
        with registry_lock(tmp_path, timeout=0.5):  # the same thread again: no deadlock
            assert path == tmp_path.resolve() / ".lock"
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert len(errors) == 1 and ".lock" in str(errors[0]) and "still locked" in str(errors[0])
    with registry_lock(tmp_path, timeout=0):  # released
        pass
    with pytest.raises(ValueError, match="timeout"):
        with registry_lock(tmp_path, timeout=-1):
            pass


def _gate_and_promote(registry: str, model: str, name: str, barrier) -> None:
    """One run: read the champion, decide, promote, record; all under the registry lock."""
    challenger = _record("same", {1})  # both runs trained the same model
    barrier.wait()
    with registry_lock(registry, timeout=60):
        champion = read_champion(registry)
        decision = decide(challenger, champion, labels=LABELS)
        time.sleep(0.5)  # a slow promotion: without the lock both runs would see no champion
        if decision.promoted:
            promote(registry, decision.challenger, model, reason=decision.reason)
        append_run_record(
            registry,
            PublishedRun(
                run_id=name,
                triggered_by="schedule",
                data={"fingerprint": "f"},
                best_config="same",
                test_accuracy=challenger.test_accuracy,
                test_f1_macro=challenger.test_f1_macro,
                decision=decision.summary(),
            ),
        )


def test_two_gated_runs_at_once_promote_once_and_leave_a_valid_registry(tmp_path: Path) -> None:
    registry, model = tmp_path / "registry", _model(tmp_path / "model", b"same")
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    runs = [
        ctx.Process(target=_gate_and_promote, args=(str(registry), str(model), name, barrier))
        for name in ("run-1", "run-2")
    ]
    for run in runs:
        run.start()
    for run in runs:
        run.join(timeout=120)
    assert [run.exitcode for run in runs] == [0, 0]

    assert [p.name for p in (registry / "versions").iterdir()] == ["v0001"]
    champion = VersionRecord.model_validate_json((registry / "champion.json").read_text())
    assert champion.version == "v0001" and champion_model_dir(registry).is_dir()
    ledger = read_ledger(registry)
    lines = (registry / "ledger.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(ledger) == 2
    assert sorted(r.gate for r in ledger) == ["promoted", "unchanged"]
    assert {r.champion_version for r in ledger} == {"v0001"}
