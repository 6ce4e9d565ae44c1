"""The sentence-level validation split: roots, leak removal, and the leak counts."""

from pathlib import Path

import pandas as pd
import pytest

from sentiment_lora.config import DataConfig
from sentiment_lora.training.data import prepare_sst2, read_split
from sentiment_lora.training.sentence_split import (
    count_inside,
    find_roots,
    hold_out,
    inside_mask,
    phrase_keys,
    root_mask,
)
from tests.conftest import write_tsv

# Six treebank-like sentences, each with the phrases the treebank would also list as rows.
TREES: list[tuple[str, int, list[str]]] = [
    ("a gorgeous , witty , seductive movie .", 1, ["a gorgeous , witty", "seductive movie"]),
    ("the acting is superb throughout", 1, ["the acting", "superb throughout", "superb"]),
    ("a warm and funny family film", 1, ["warm and funny", "family film", "funny"]),
    ("a dull , lifeless mess of a film", 0, ["a dull , lifeless mess", "lifeless", "mess"]),
    ("the plot is painfully slow", 0, ["the plot", "painfully slow", "slow"]),
    ("an ugly and pointless sequel", 0, ["ugly and pointless", "pointless sequel", "sequel"]),
]


def _treebank() -> pd.DataFrame:
    rows = []
    for sentence, label, phrases in TREES:
        rows.append((sentence, label))
        rows.extend((phrase, label) for phrase in phrases)
    return pd.DataFrame(rows, columns=["sentence", "label"])


def test_keys_fold_case_and_spacing() -> None:
    assert phrase_keys(["  A  Fine\tFilm ", "it 's"]) == ["a fine film", "it 's"]


def test_roots_are_the_rows_inside_no_other_row() -> None:
    frame = _treebank()
    roots = root_mask(phrase_keys(frame["sentence"]))
    assert frame["sentence"][roots].tolist() == [s for s, _, _ in TREES]


def test_containment_is_by_whole_words() -> None:
    # "film 1" is not inside "film 10"; "good film" is inside "a Good  film" (case, spacing)
    assert root_mask(["film 1", "film 10", "good film", "a good film"]).tolist() == [
        True,
        True,
        False,
        True,
    ]
    assert inside_mask(["funny", "fun", "warm and"], ["a warm and funny film"]).tolist() == [
        True,
        False,
        True,
    ]
    assert count_inside(["a film"], ["a film"]) == 1  # equal counts as inside


def test_a_duplicated_root_is_one_root_and_leaves_training_with_it() -> None:
    sentences = ["a fine film", "A fine  film", "a poor film", "poor", "great fun", "awful"]
    frame = pd.DataFrame({"sentence": sentences, "label": [1, 1, 0, 0, 1, 0]})
    roots = find_roots(frame)
    assert roots.frame["key"].tolist() == ["a fine film", "a poor film", "great fun", "awful"]
    for seed in range(6):
        split = hold_out(frame, roots, size=2, seed=seed)
        held = set(phrase_keys(split.validation["sentence"]))
        left = phrase_keys(split.train["sentence"])
        assert not held & set(left)
        assert ("poor" in left) == ("a poor film" not in held)
        assert len(split.train) + len(split.validation) + split.removed_inside_validation == 6


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_sentence_and_its_phrases_land_on_one_side_only(seed: int) -> None:
    frame = _treebank()
    roots = find_roots(frame)
    split = hold_out(frame, roots, size=2, seed=seed)
    held = set(split.validation["sentence"])
    assert len(held) == 2 and set(split.validation["label"]) == {0, 1}  # stratified
    for sentence, _, phrases in TREES:
        if sentence in held:
            assert not set(split.train["sentence"]) & {sentence, *phrases}
        else:
            assert {sentence, *phrases} <= set(split.train["sentence"])
    # "superb" is a phrase of one tree only; shared words alone never remove a row
    assert split.removed_inside_validation == sum(
        len(phrases) for sentence, _, phrases in TREES if sentence in held
    )
    train_keys = phrase_keys(split.train["sentence"])
    assert count_inside(phrase_keys(split.validation["sentence"]), train_keys) == 0


def test_the_split_is_seeded() -> None:
    frame = _treebank()
    roots = find_roots(frame)
    first = hold_out(frame, roots, size=2, seed=7).validation
    assert first.equals(hold_out(frame, roots, size=2, seed=7).validation)
    others = {
        tuple(hold_out(frame, roots, size=2, seed=s).validation["sentence"]) for s in range(8)
    }
    assert len(others) > 1


def test_prepare_keeps_validation_out_of_training_and_counts_it(tmp_path: Path) -> None:
    frame = _treebank()
    rows = [f"{s}\t{y}" for s, y in zip(frame["sentence"], frame["label"], strict=True)]
    data = tmp_path / "sst2"
    data.mkdir()
    write_tsv(data / "train.tsv", rows)
    # one test sentence is a training phrase, one is a whole training sentence
    write_tsv(data / "dev.tsv", ["painfully slow\t0", "the acting is superb throughout\t1"])
    config = DataConfig(data_dir=str(data), validation_fraction=0.34, min_words=0)
    prepared = prepare_sst2(config, tmp_path / "out")
    validation = read_split(prepared.validation_path)["sentence"].tolist()
    train = read_split(prepared.train_path)["sentence"].tolist()
    assert len(validation) == 3  # ceil(0.34 * 6) roots
    removed = sum(len(p) for s, _, p in TREES if s in validation)
    assert prepared.counts["removed_inside_validation"] == removed
    assert len(train) == len(frame) - 3 - removed
    assert prepared.validation_inside_train == 0
    held_test = {"painfully slow", "the acting is superb throughout"} & {
        p for s, _, ps in TREES if s in validation for p in (s, *ps)
    }
    assert prepared.test_inside_train == 2 - len(held_test)


def test_plain_sentences_lose_no_row(tmp_path: Path) -> None:
    rows = [f"review number {i} was {'good' if i % 2 else 'bad'}\t{i % 2}" for i in range(40)]
    data = tmp_path / "sst2"
    data.mkdir()
    write_tsv(data / "train.tsv", rows)
    write_tsv(data / "dev.tsv", ["a fine film\t1", "a poor film\t0"])
    prepared = prepare_sst2(DataConfig(data_dir=str(data)), tmp_path / "out")
    assert prepared.counts["root_sentences"] == 40
    assert prepared.counts["removed_inside_validation"] == 0
    assert prepared.counts["train"] + prepared.counts["validation"] == 40
