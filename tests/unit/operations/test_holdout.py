"""The fresh holdout: a stratified share of every `data add`, versioned, never trained on,
and judged by the champion gate once it holds enough rows."""

import hashlib
from pathlib import Path

import numpy as np
import pytest

from sentiment_lora.config import DataConfig
from sentiment_lora.errors import UserError
from sentiment_lora.operations.data_manifest import read_manifest
from sentiment_lora.operations.data_versions import add_rows
from sentiment_lora.operations.gate import challenge_champion
from sentiment_lora.operations.holdout_routing import route_rows
from sentiment_lora.operations.registry import ModelRecord
from sentiment_lora.training.data import DataFormatError, prepare_sst2, read_split
from sentiment_lora.training.holdout import HOLDOUT_MIN_ROWS, gate_holdout, read_holdout
from tests.conftest import write_tsv

TRAIN = ["a fine old film\t1", "a dull old film\t0", "warm and wise\t1", "cold and dull\t0"]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "sst2"
    d.mkdir()
    write_tsv(d / "train.tsv", TRAIN)
    write_tsv(d / "dev.tsv", ["a fine film\t1", "a poor film\t0"])
    return d


def _new_rows(n: int, start: int = 0) -> list[str]:
    return [f"new review {i} was {'good' if i % 2 else 'bad'}\t{i % 2}" for i in range(start, n)]


def test_routing_is_stratified_deterministic_and_keeps_order() -> None:
    rows = [(f"s{i}", int(i < 30)) for i in range(100)]  # 30 positive, 70 negative
    train, held = route_rows(rows, fraction=0.1, key=lambda r: r[0], label=lambda r: r[1])
    assert sum(1 for _, y in held if y == 1) == 3 and sum(1 for _, y in held if y == 0) == 7
    assert len(train) == 90 and not set(train) & set(held)
    assert [r for r in rows if r in held] == held  # input order
    again = route_rows(list(reversed(rows)), fraction=0.1, key=lambda r: r[0], label=lambda r: r[1])
    assert set(again[1]) == set(held)  # by the sentence's hash, not its position
    expected = sorted(
        (r for r in rows if r[1] == 1), key=lambda r: hashlib.sha256(r[0].encode()).digest()
    )
    assert {r for r in held if r[1] == 1} == set(expected[:3])
    assert route_rows(rows[:4], fraction=0.1, key=lambda r: r[0], label=lambda r: r[1])[1] == []
    assert route_rows(rows, fraction=0.0, key=lambda r: r[0], label=lambda r: r[1])[1] == []


def test_data_add_moves_a_share_to_the_holdout_and_versions_it(
    data_dir: Path, tmp_path: Path
) -> None:
    update = add_rows(data_dir, write_tsv(tmp_path / "new.tsv", _new_rows(40)))
    assert (update.rows_added, update.rows_held_out, update.holdout_rows_after) == (36, 4, 4)
    holdout = read_holdout(data_dir)
    assert holdout is not None and sorted(holdout.labels) == [0, 0, 1, 1]
    train = (data_dir / "train.tsv").read_text()
    assert not any(s in train for s in holdout.sentences)  # never in training
    version = read_manifest(data_dir).latest
    assert version.rows_held_out == 4 and version.holdout_rows == 4
    assert (
        version.holdout_sha256
        == hashlib.sha256((data_dir / "holdout.tsv").read_bytes()).hexdigest()
    )
    archived = data_dir / version.holdout_file
    assert archived.read_bytes() == (data_dir / "holdout.tsv").read_bytes()
    # a second addition appends; the first version's holdout stays archived as it was
    first_holdout = archived.read_bytes()
    second = add_rows(data_dir, write_tsv(tmp_path / "more.tsv", _new_rows(60, start=40)))
    assert second.holdout_rows_after == 6 and archived.read_bytes() == first_holdout
    # the pipeline reads train.tsv and dev.tsv only: no holdout row is trained on or tested
    prepared = prepare_sst2(DataConfig(data_dir=str(data_dir), min_words=0), tmp_path / "p")
    used = {
        s
        for path in (prepared.train_path, prepared.validation_path, prepared.test_path)
        for s in read_split(path)["sentence"]
    }
    assert not used & set(read_holdout(data_dir).sentences)


def test_a_held_out_sentence_added_again_is_a_duplicate_and_never_relabelled(
    data_dir: Path, tmp_path: Path
) -> None:
    add_rows(data_dir, write_tsv(tmp_path / "new.tsv", _new_rows(40)))
    holdout = read_holdout(data_dir)
    sentence, label = holdout.sentences[0], holdout.labels[0]
    again = add_rows(data_dir, write_tsv(tmp_path / "again.tsv", [f"{sentence.upper()}\t{label}"]))
    assert again.version is None and again.duplicates_in_train == 1
    before = (data_dir / "holdout.tsv").read_bytes(), (data_dir / "train.tsv").read_bytes()
    flipped = write_tsv(tmp_path / "flip.tsv", [f"{sentence}\t{1 - label}"])
    for relabel in (False, True):
        with pytest.raises(
            DataFormatError,
            match=r"flip\.tsv:2: sentence already in .*holdout\.tsv:\d+ .*never relabelled",
        ):
            add_rows(data_dir, flipped, allow_relabel=relabel)
    assert (
        (data_dir / "holdout.tsv").read_bytes(),
        (data_dir / "train.tsv").read_bytes(),
    ) == before


def test_dry_run_and_zero_fraction_write_no_holdout(data_dir: Path, tmp_path: Path) -> None:
    new = write_tsv(tmp_path / "new.tsv", _new_rows(40))
    dry = add_rows(data_dir, new, dry_run=True)
    assert dry.rows_held_out == 4 and not (data_dir / "holdout.tsv").exists()
    none = add_rows(data_dir, new, holdout_fraction=0.0)
    assert none.rows_added == 40 and not (data_dir / "holdout.tsv").exists()
    for bad in (-0.1, 1.0, float("nan")):
        with pytest.raises(UserError, match="--holdout-fraction: must be at least 0 and below 1"):
            add_rows(data_dir, new, holdout_fraction=bad)


def test_a_failed_write_restores_the_holdout(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentiment_lora.operations import data_versions

    add_rows(data_dir, write_tsv(tmp_path / "a.tsv", _new_rows(40)))
    before = {p.name: p.read_bytes() for p in data_dir.glob("*.tsv")}

    def fail(*_args: object, **_kw: object) -> None:
        raise OSError(28, "No space left on device", "manifest.json")

    monkeypatch.setattr(data_versions, "atomic_write_text", fail)
    with pytest.raises(UserError, match="holdout.tsv and the manifest are unchanged"):
        add_rows(data_dir, write_tsv(tmp_path / "b.tsv", _new_rows(80, start=40)))
    assert {p.name: p.read_bytes() for p in data_dir.glob("*.tsv")} == before


def test_the_gate_uses_the_holdout_from_200_rows(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sentiment_lora.training import inference
    from sentiment_lora.training.evaluation import evaluate_probabilities

    rows = [f"held sentence {i}\t{i % 2}" for i in range(HOLDOUT_MIN_ROWS - 1)]
    write_tsv(data_dir / "holdout.tsv", rows)
    assert gate_holdout(data_dir) is None  # 199 rows decide nothing
    write_tsv(data_dir / "holdout.tsv", [*rows, f"held sentence {len(rows)}\t1"])
    holdout = gate_holdout(data_dir)
    assert holdout is not None and len(holdout.labels) == HOLDOUT_MIN_ROWS

    class Model:  # the champion is right on the holdout; the challenger says positive always
        def __init__(self, right: bool) -> None:
            self.right = right

        def predict_proba(self, texts: list[str]) -> np.ndarray:
            labels = [int(t.split()[-1]) % 2 for t in texts]
            p = np.array([float(y) if self.right else 1.0 for y in labels])
            return np.stack([1 - p, p], axis=1)

    challenger_dir, registry = tmp_path / "model", tmp_path / "registry"
    challenger_dir.mkdir()
    (challenger_dir / "adapter_model.safetensors").write_bytes(b"new")
    (registry / "champion").mkdir(parents=True)
    monkeypatch.setattr(
        inference, "load_analyzer", lambda d, **_: Model(right=Path(d) != challenger_dir)
    )
    labels = [1, 0] * 50
    champion = ModelRecord(
        run_id="old", config_name="c", model_key="old", test_accuracy=0.9, test_f1_macro=0.9,
        test_set_hash="t", predictions=[1 - y if i < 10 else y for i, y in enumerate(labels)],
    )  # fmt: skip
    (registry / "champion.json").write_text(champion.model_dump_json())
    test = evaluate_probabilities("new", labels, [float(y) for y in labels])  # perfect on test
    common = {
        "model_dir": challenger_dir, "run_id": "new", "sentences": [f"s {i}" for i in range(100)],
        "registry_dir": registry, "alpha": 0.05, "slice_rule": False,
    }  # fmt: skip
    monkeypatch.setattr("sentiment_lora.operations.gate.hash_test_set", lambda *_: "t")
    without = challenge_champion(test, **common)
    assert without.promoted and [c.test_set for c in without.checks] == ["test"]
    refused = challenge_champion(test, holdout=holdout, **common)
    assert not refused.promoted and refused.reason.startswith("possibly inferior on holdout")
    assert [c.test_set for c in refused.checks] == ["test", "holdout"]
    assert refused.checks[1].rows == HOLDOUT_MIN_ROWS
