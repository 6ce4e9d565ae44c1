"""Validation, preprocessing and splitting of SST-2."""

from pathlib import Path

import pytest

from sentiment_lora.config import DataConfig
from sentiment_lora.training.data import (
    DataFormatError,
    cap_rows,
    filter_min_words,
    normalize_whitespace,
    prepare_sst2,
    read_glue_tsv,
    read_split,
    split_train_validation,
)
from tests.conftest import write_tsv


@pytest.mark.parametrize(
    ("row", "line", "reason"),
    [
        ("only one field", 3, "expected 2 tab-separated fields, got 1"),
        ("a\tb\t1", 3, "expected 2 tab-separated fields, got 3"),
        ("fine words\t2", 3, "label must be 0 or 1, got '2'"),
        ("fine words\t-1", 3, "label must be 0 or 1, got '-1'"),
        ("fine words\tpos", 3, "label must be 0 or 1, got 'pos'"),
        ("fine words\t", 3, "label must be 0 or 1, got ''"),
        ("\t1", 3, "empty sentence"),
        ("   \t0", 3, "empty sentence"),
    ],
)
def test_bad_row_names_file_line_and_reason(
    tmp_path: Path, row: str, line: int, reason: str
) -> None:
    path = write_tsv(tmp_path / "train.tsv", ["a good movie\t1", row])
    with pytest.raises(DataFormatError) as err:
        read_glue_tsv(path)
    assert err.value.line == line
    assert err.value.path == str(path)
    assert reason in str(err.value)
    assert str(err.value).startswith(f"{path}:{line}: ")


def test_missing_empty_and_header_only_files(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="file not found"):
        read_glue_tsv(tmp_path / "nope.tsv")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(DataFormatError, match="file is empty"):
        read_glue_tsv(tmp_path / "empty.tsv")
    write_tsv(tmp_path / "header.tsv", [])
    with pytest.raises(DataFormatError, match="no data rows"):
        read_glue_tsv(tmp_path / "header.tsv")
    write_tsv(tmp_path / "wrong.tsv", ["x\t1"], header="text\tlabel")
    with pytest.raises(DataFormatError, match=":1: header must be"):
        read_glue_tsv(tmp_path / "wrong.tsv")


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.tsv"
    path.write_bytes(b"sentence\tlabel\ngood one here\t1\nbad \xff\xfe bytes\t0\n")
    with pytest.raises(DataFormatError, match=r"bad\.tsv:3: invalid UTF-8"):
        read_glue_tsv(path)


def test_bom_and_crlf_are_accepted(tmp_path: Path) -> None:
    path = tmp_path / "crlf.tsv"
    path.write_bytes("\ufeffsentence\tlabel\r\na fine film\t1\r\na poor film\t0\r\n".encode())
    frame = read_glue_tsv(path)
    assert frame["sentence"].tolist() == ["a fine film", "a poor film"]
    assert frame["label"].tolist() == [1, 0]


def test_quotes_are_literal(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "q.tsv", ['he said " it \'s great "\t1'])
    assert read_glue_tsv(path)["sentence"].iloc[0] == 'he said " it \'s great "'


def test_missing_data_directory(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="data directory not found"):
        prepare_sst2(DataConfig(data_dir=str(tmp_path / "absent")), tmp_path / "out")


def test_normalize_and_min_words() -> None:
    assert normalize_whitespace("  it 's   a\tfine  film ") == "it 's a fine film"
    import pandas as pd

    frame = pd.DataFrame(
        {
            "sentence": ["one", "two words", "now three words", "and four words here"],
            "label": [0, 1, 0, 1],
        }
    )
    assert filter_min_words(frame, 3)["sentence"].tolist() == [
        "now three words",
        "and four words here",
    ]
    assert len(filter_min_words(frame, 0)) == 4


def test_split_is_stratified_and_seeded() -> None:
    import pandas as pd

    frame = pd.DataFrame(
        {"sentence": [f"s {i} x" for i in range(200)], "label": [i % 4 == 0 for i in range(200)]}
    )
    frame["label"] = frame["label"].astype(int)
    train, val = split_train_validation(frame, fraction=0.15, seed=1)
    assert len(val) == 30 and len(train) == 170
    assert val["label"].sum() == 8 or val["label"].sum() == 7  # 25% positives, stratified
    again, _ = split_train_validation(frame, fraction=0.15, seed=1)
    assert train.equals(again)
    other, _ = split_train_validation(frame, fraction=0.15, seed=2)
    assert not train.equals(other)
    assert len(cap_rows(train, 50, seed=0)) == 50
    assert cap_rows(train, None, seed=0) is train


def test_prepare_records_counts(tiny_sst2: Path, tmp_path: Path) -> None:
    prepared = prepare_sst2(
        DataConfig(data_dir=str(tiny_sst2), validation_fraction=0.25), tmp_path / "out"
    )
    c = prepared.counts
    assert c["train_raw"] == 42 and c["test_raw"] == 10
    assert c["removed_min_words"] == 2
    assert c["train"] + c["validation"] == 40
    assert c["validation"] == 10
    assert c["test"] == 10
    assert prepared.class_balance["validation"] == {"negative": 5, "positive": 5}
    assert prepared.test_train_overlap == 0
    assert len(read_split(prepared.test_path)) == 10
    assert set(prepared.source_hashes) == {"train.tsv", "dev.tsv"}


def test_overlap_counts_verbatim_test_sentences_in_train(tiny_sst2: Path, tmp_path: Path) -> None:
    dev = tiny_sst2 / "dev.tsv"
    dev.write_text(dev.read_text() + "a truly great and moving film 0\t1\n")
    prepared = prepare_sst2(DataConfig(data_dir=str(tiny_sst2)), tmp_path / "out")
    assert prepared.test_train_overlap == 1


def test_real_sst2_counts(sst2_dir: Path, tmp_path: Path) -> None:
    prepared = prepare_sst2(DataConfig(data_dir=str(sst2_dir)), tmp_path / "out")
    c = prepared.counts
    assert c["train_raw"] == 67349 and c["test"] == 872
    assert c["train"] + c["validation"] + c["removed_min_words"] == 67349
    assert abs(c["validation"] / (c["train"] + c["validation"]) - 0.15) < 0.001
    assert prepared.class_balance["test"] == {"negative": 428, "positive": 444}
    assert prepared.source_hashes["dev.tsv"].startswith("54a9c12c")


def test_a_10mb_single_line_fails_fast_with_a_short_message(tmp_path: Path) -> None:
    path = tmp_path / "huge.tsv"
    path.write_text("x" * 10_000_000)
    with pytest.raises(DataFormatError) as err:
        read_glue_tsv(path)
    assert str(err.value).startswith(f"{path}:1: header must be")
    assert len(str(err.value)) < 300


def test_a_10mb_sentence_row_is_rejected_naming_the_line(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "train.tsv", ["a fine film\t1", "y" * 10_000_000 + "\t0"])
    with pytest.raises(DataFormatError, match=r"train\.tsv:3: sentence of 10,000,000 characters"):
        read_glue_tsv(path)


def test_nothing_is_written_when_the_data_is_bad(tiny_sst2: Path, tmp_path: Path) -> None:
    with open(tiny_sst2 / "dev.tsv", "a") as fh:
        fh.write("a broken row\tpos\n")
    with pytest.raises(DataFormatError, match="dev.tsv:12"):
        prepare_sst2(DataConfig(data_dir=str(tiny_sst2)), tmp_path / "out")
    assert not (tmp_path / "out").exists()
