"""Champion/challenger gate."""

from pathlib import Path

import pytest

from sentiment_lora.operations.registry import (
    ModelRecord,
    champion_model_dir,
    decide,
    hash_test_set,
    promote,
    read_champion,
)

LABELS = [1, 0] * 50  # 100 test sentences


def _record(
    name: str, wrong: set[int], *, key: str | None = None, f1: float | None = None
) -> ModelRecord:
    preds = [1 - y if i in wrong else y for i, y in enumerate(LABELS)]
    acc = 1 - len(wrong) / len(LABELS)
    return ModelRecord(
        run_id=f"run-{name}",
        config_name=name,
        model_key=key or name,
        test_accuracy=acc,
        test_f1_macro=acc if f1 is None else f1,
        test_set_hash="t1",
        predictions=preds,
    )


def test_first_model_becomes_champion() -> None:
    d = decide(_record("a", {1, 2}), None, labels=LABELS)
    assert d.promoted and "no champion" in d.reason


def test_same_model_is_unchanged_and_not_promoted() -> None:
    champ = _record("a", {1, 2})
    d = decide(_record("a", {1, 2}), champ, labels=LABELS)
    assert not d.promoted and d.unchanged and "cache" in d.reason


def test_better_and_not_significantly_worse_is_promoted() -> None:
    d = decide(_record("b", {1}), _record("a", {1, 2, 3}), labels=LABELS)
    assert d.promoted and d.mcnemar is not None and "better test macro-F1" in d.reason


def test_not_better_keeps_champion() -> None:
    d = decide(_record("b", {4, 5, 6}), _record("a", {1, 2, 3}), labels=LABELS)
    assert not d.promoted and "not better" in d.reason


def test_significantly_worse_is_refused_even_with_higher_f1() -> None:
    wrong = set(range(0, 40))  # 40 more errors than the champion: McNemar p << 0.05
    challenger = _record("b", wrong, f1=0.99)  # an inconsistent F1 must not sneak it through
    d = decide(challenger, _record("a", set(), f1=0.5), labels=LABELS)
    assert not d.promoted and "significantly worse" in d.reason


def test_changed_test_set_needs_champion_rescored() -> None:
    champ = _record("a", {1}).model_copy(update={"test_set_hash": "old"})
    with pytest.raises(ValueError, match="champion_predictions"):
        decide(_record("b", {2}), champ, labels=LABELS)
    rescored = [1 - y if i in {1, 2, 3} else y for i, y in enumerate(LABELS)]
    d = decide(_record("b", {2}), champ, labels=LABELS, champion_predictions=rescored)
    assert d.promoted


def test_promote_writes_record_and_model(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    (model / "adapter_model.safetensors").write_bytes(b"x")
    assert read_champion(tmp_path / "reg") is None
    promote(tmp_path / "reg", _record("a", set()), model)
    (model / "adapter_model.safetensors").write_bytes(b"y")
    promote(tmp_path / "reg", _record("b", set()), model)
    champ = read_champion(tmp_path / "reg")
    assert champ is not None and champ.config_name == "b" and champ.promoted_at
    assert (champion_model_dir(tmp_path / "reg") / "adapter_model.safetensors").read_bytes() == b"y"
    assert sorted(p.name for p in (tmp_path / "reg").iterdir()) == ["champion", "champion.json"]


def test_test_set_hash_depends_on_sentences_and_labels() -> None:
    assert hash_test_set(["a", "b"], [0, 1]) != hash_test_set(["a", "b"], [1, 1])
    assert hash_test_set(["a", "b"], [0, 1]) != hash_test_set(["a", "c"], [0, 1])
