"""Data snapshots and diffs: known-answer row changes (duplicates included), first run, a
changed test set, the stored round trip, and the drift tests on the real SST-2 train.tsv: none
between two seeded random halves, several between a half and negation-only sentences.

The two real-data tests embed 2 x 300 sentences each (a few seconds apiece on 2 cores)."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, chi2_contingency

from sentiment_lora.evidence.data_diff import DataDiff, diff_data, diff_split
from sentiment_lora.evidence.data_snapshot import (
    SNAPSHOT_FILE,
    SOURCE_TEST,
    SOURCE_TRAIN,
    TRAINING,
    read_snapshot,
    sentence_hash,
    take_snapshot,
    write_snapshot,
)
from sentiment_lora.evidence.drift_tests import (
    class_balance_test,
    mmd_permutation_test,
    vocabulary_novelty,
)
from sentiment_lora.training.data import read_glue_tsv

NEGATION = re.compile(r"\b(?:not|no|never)\b|n't")
REAL_SAMPLE = 300


def _frame(rows: list[tuple[str, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["sentence", "label"])


def _split_diff(before: list[tuple[str, int]], after: list[tuple[str, int]]):
    frame_b, frame_a = _frame(before), _frame(after)
    _, tables_b = take_snapshot({TRAINING: frame_b})
    _, tables_a = take_snapshot({TRAINING: frame_a})
    return diff_split(TRAINING, tables_b[TRAINING], tables_a[TRAINING], frame_a)


def test_row_changes_known_answer_with_duplicates_and_normalisation() -> None:
    before = [("a good film", 1), ("a good film", 1), ("dull", 0), ("meh movie", 0), ("fine", 1)]
    after = [
        ("A  good film ", 1),  # same normalised sentence: one of the two copies is kept
        ("dull", 1),  # relabelled
        ("meh movie", 0),
        ("fine", 1),
        ("fine", 1),  # a second copy: added
        ("a new one", 0),  # added
    ]
    diff = _split_diff(before, after)
    assert (diff.rows_before, diff.rows_after) == (5, 6)
    assert (diff.unchanged, diff.added, diff.removed, diff.relabelled) == (3, 2, 1, 1)
    assert not diff.identical
    assert diff.class_balance_before == {"negative": 2, "positive": 3}
    assert diff.class_balance_after == {"negative": 2, "positive": 4}
    assert {(e.sentence, e.label) for e in diff.added_examples} == {
        ("fine", "positive"),
        ("a new one", "negative"),
    }
    # the champion's sample holds all 5 rows here, so the removed row has its sentence
    assert [(e.sentence, e.label) for e in diff.removed_examples] == [("a good film", "positive")]
    [relabelled] = diff.relabelled_examples
    assert (relabelled.sentence, relabelled.label, relabelled.previous_label) == (
        "dull",
        "positive",
        "negative",
    )


def test_duplicates_count_as_a_multiset() -> None:
    # x/0 twice and x/1 once -> x/1 twice: one x/1 kept, one x/0 relabelled, one x/0 removed
    diff = _split_diff([("x", 0), ("x", 0), ("x", 1)], [("x", 1), ("x", 1)])
    assert (diff.unchanged, diff.added, diff.removed, diff.relabelled) == (1, 0, 1, 1)
    # a sentence present twice before and once after is one removed row
    diff = _split_diff([("y", 0), ("y", 0), ("z", 1)], [("y", 0), ("z", 1)])
    assert (diff.unchanged, diff.added, diff.removed, diff.relabelled) == (2, 0, 1, 0)
    # the same rows in another order, spacing or case are no change
    diff = _split_diff([("Good  one", 1), ("bad", 0)], [("bad", 0), ("good one", 1)])
    assert diff.identical and diff.unchanged == 2


def test_removed_examples_come_only_from_the_stored_sample() -> None:
    before = _frame([(f"sentence number {i}", i % 2) for i in range(50)])
    after = before.iloc[10:].reset_index(drop=True)
    _, tables_b = take_snapshot({TRAINING: before}, sample_size=10, seed=0)
    _, tables_a = take_snapshot({TRAINING: after}, sample_size=10, seed=0)
    diff = diff_split(TRAINING, tables_b[TRAINING], tables_a[TRAINING], after, n_examples=10)
    assert diff.removed == 10  # exact, from the hashes
    sampled = set(tables_b[TRAINING].sample["sentence"])
    removed = {f"sentence number {i}" for i in range(10)}
    shown = sampled & removed
    assert 0 < len(shown) < 10  # some, not all, removed rows fell in the sample of 10
    assert {e.sentence for e in diff.removed_examples} == shown


def _small_frames(*, dev_label_flip: bool = False) -> dict[str, pd.DataFrame]:
    train = _frame([(f"a fine film number {i}", i % 2) for i in range(20)])
    dev = _frame([("a lovely film", 1), ("a boring film", 0), ("so so", 0)])
    if dev_label_flip:
        dev.loc[2, "label"] = 1
    return {SOURCE_TRAIN: train, SOURCE_TEST: dev, TRAINING: train.iloc[:15]}


def test_first_run_is_a_valid_diff(tmp_path: Path) -> None:
    frames = _small_frames()
    for champion_dir in (None, tmp_path):  # no directory, or one without a snapshot
        diff = diff_data(frames, champion_dir)
        assert diff.first_run and not diff.drifted and not diff.test_set_changed
        assert diff.training is None and diff.tests == [] and diff.source == {}
        assert diff.summary[0].startswith("First run")
        assert DataDiff.model_validate_json(diff.model_dump_json()) == diff
    assert "holds no data snapshot" in diff.summary[-1]


def test_a_changed_test_set_is_flagged_first(tmp_path: Path) -> None:
    write_snapshot(tmp_path, *take_snapshot(_small_frames()))
    same = diff_data(_small_frames(), tmp_path)
    assert not same.first_run and not same.test_set_changed and not same.drifted
    assert all(d.identical for d in same.source.values()) and same.training.identical
    assert all(t.pvalue == 1.0 for t in same.tests)  # identical data: no embedding needed

    changed = diff_data(_small_frames(dev_label_flip=True), tmp_path)
    assert changed.test_set_changed
    assert changed.source[SOURCE_TEST].relabelled == 1
    assert changed.source[SOURCE_TRAIN].identical and changed.training.identical
    assert changed.summary[0].startswith("THE TEST SET CHANGED")
    assert "not comparable" in changed.summary[0]


def test_snapshot_round_trip(tmp_path: Path) -> None:
    frames = _small_frames()
    snapshot, tables = take_snapshot(frames, sample_size=4, seed=3)
    write_snapshot(tmp_path, snapshot, tables)
    again, tables_again = read_snapshot(tmp_path)
    assert again == snapshot
    for split in frames:
        for name in ("rows", "sample", "vocabulary"):
            pd.testing.assert_frame_equal(
                getattr(tables_again[split], name), getattr(tables[split], name)
            )
        assert (tmp_path / snapshot.splits[split].rows_file).is_file()
    dev = snapshot.splits[SOURCE_TEST]
    assert dev.rows == 3 and dev.class_balance == {"negative": 2, "positive": 1}
    assert (dev.length.p50, dev.length.max) == (3.0, 3)
    assert [(t.term, t.count) for t in dev.top_terms] == [("film", 2), ("boring", 1), ("lovely", 1)]
    assert tables[SOURCE_TEST].rows["hash"].tolist() == [
        sentence_hash(s) for s in frames[SOURCE_TEST]["sentence"]
    ]
    assert tables[TRAINING].rows.dtypes.to_dict() == {
        "hash": np.dtype("uint64"),
        "label": np.dtype("int8"),
        "words": np.dtype("int16"),
    }
    stored = json.loads((tmp_path / SNAPSHOT_FILE).read_text())
    assert "a fine film number 0" not in json.dumps(stored)  # sentences live in files only


def test_snapshot_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="training split"):
        take_snapshot({SOURCE_TRAIN: _frame([("a", 1)])})
    with pytest.raises(ValueError, match="0/1"):
        take_snapshot({TRAINING: _frame([("a", 2)])})
    with pytest.raises(FileNotFoundError, match="no data snapshot"):
        read_snapshot(tmp_path)


def test_class_balance_and_novelty_known_answers() -> None:
    before = pd.DataFrame({"label": np.repeat([0, 1], [50, 50]).astype(np.int8)})
    after = pd.DataFrame({"label": np.repeat([0, 1], [80, 20]).astype(np.int8)})
    result = class_balance_test(before, after)
    expected = chi2_contingency(np.array([[50, 50], [80, 20]]), correction=True)
    assert result.pvalue == pytest.approx(expected.pvalue) and result.pvalue < 0.05

    vocabulary = pd.DataFrame({"token": ["good", "film"], "count": [2, 1]})
    novelty, test = vocabulary_novelty(vocabulary, ["good zorblax film"])
    assert (novelty.added_tokens, novelty.novel_tokens) == (3, 1)
    assert novelty.expected_share == pytest.approx(1 / 3)  # Good-Turing: 1 hapax in 3 tokens
    assert [t.term for t in novelty.new_terms] == ["zorblax"]
    assert test.pvalue == pytest.approx(binomtest(1, 3, 1 / 3, alternative="greater").pvalue)


def test_mmd_permutation_test_on_gaussians() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(100, 5)), rng.normal(size=(100, 5))
    _, p_same = mmd_permutation_test(x, y, n_permutations=200, seed=1)
    stat, p_shifted = mmd_permutation_test(x, y + 0.5, n_permutations=200, seed=1)
    assert p_same > 0.05 and p_shifted < 0.01 and stat > 0
    with pytest.raises(ValueError, match="equal widths"):
        mmd_permutation_test(x, y[:, :3])


@pytest.fixture(scope="module")
def sst2_halves(sst2_dir: Path, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """The champion's snapshot of a seeded random half of train.tsv, and the other half."""
    train = read_glue_tsv(sst2_dir / "train.tsv")
    order = np.random.default_rng(7).permutation(len(train))
    half_a = train.iloc[order[: len(train) // 2]].reset_index(drop=True)
    half_b = train.iloc[order[len(train) // 2 :]].reset_index(drop=True)
    champion = tmp_path_factory.mktemp("champion")
    write_snapshot(champion, *take_snapshot({TRAINING: half_a}, sample_size=REAL_SAMPLE))
    return champion, half_b


def _diff(champion: Path, training: pd.DataFrame) -> DataDiff:
    frames = {TRAINING: training}
    current = take_snapshot(frames, sample_size=REAL_SAMPLE)
    return diff_data(frames, champion, current=current, n_permutations=500)


def test_no_drift_between_random_halves_of_sst2(sst2_halves) -> None:
    champion, half_b = sst2_halves
    diff = _diff(champion, half_b)
    assert {t.name for t in diff.tests} == {
        "class_balance",
        "sentence_length",
        "vocabulary_novelty",
        "semantic",
    }
    assert not any(t.significant for t in diff.tests), diff.summary
    assert not diff.drifted and not diff.test_set_changed
    assert diff.training.added > 30_000 and diff.training.unchanged < 1_000
    assert "No drift detected" in diff.summary[-1]


def test_drift_detected_for_negation_only_sentences(sst2_halves) -> None:
    champion, half_b = sst2_halves
    negated = half_b[half_b["sentence"].str.contains(NEGATION)].reset_index(drop=True)
    assert 2_000 < len(negated) < 5_000
    diff = _diff(champion, negated)
    fired = {t.name for t in diff.tests if t.significant}
    assert {"semantic", "sentence_length", "class_balance"} <= fired, diff.summary
    assert diff.drifted and diff.summary[-1].startswith("The training data drifted")
    semantic = next(t for t in diff.tests if t.name == "semantic")
    assert semantic.verdict.startswith("what the sentences say shifted")
