"""Validation, preprocessing and splitting of SST-2."""

import os
from pathlib import Path

import pytest

from sentiment_lora.config import DataConfig
from sentiment_lora.training.data import (
    DataFormatError,
    cap_rows,
    check_sst2,
    filter_min_words,
    normalize_whitespace,
    prepare_sst2,
    read_glue_tsv,
    read_split,
    source_fingerprint,
)
from tests.conftest import write_tsv
from tests.hostile import HOSTILE, make_hostile


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


def test_caps_are_stratified_and_seeded() -> None:
    import pandas as pd

    frame = pd.DataFrame({"sentence": [f"s {i} x" for i in range(200)], "label": [0, 1] * 100})
    capped = cap_rows(frame, 50, seed=0)
    assert len(capped) == 50 and capped["label"].sum() == 25
    assert capped.equals(cap_rows(frame, 50, seed=0))
    assert not capped.equals(cap_rows(frame, 50, seed=1))
    assert cap_rows(frame, None, seed=0) is frame


def test_prepare_records_counts(tiny_sst2: Path, tmp_path: Path) -> None:
    prepared = prepare_sst2(
        DataConfig(data_dir=str(tiny_sst2), validation_fraction=0.25), tmp_path / "out"
    )
    c = prepared.counts
    assert c["train_raw"] == 42 and c["test_raw"] == 10
    assert c["root_sentences"] == 42  # plain sentences: every row is a root
    assert c["removed_inside_validation"] == 0  # ... and nothing extra is removed
    assert c["removed_min_words"] == 2  # "ok" and "bad film" (never held out: 11 of 42)
    assert c["train"] + c["validation"] == 40
    assert c["validation"] == 11  # ceil(0.25 * 42)
    assert c["test"] == 10
    assert prepared.class_balance["validation"] in (
        {"negative": 5, "positive": 6},
        {"negative": 6, "positive": 5},
    )
    assert prepared.test_train_overlap == 0
    assert prepared.validation_inside_train == 0
    assert prepared.test_inside_train == 10  # each dev sentence begins a training row
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
    removed = c["removed_min_words"] + c["removed_inside_validation"]
    assert c["train"] + c["validation"] + removed == 67349
    assert c["root_sentences"] == 6885
    assert c["validation"] == 1033  # ceil(0.15 * 6,885) root sentences
    assert c["removed_inside_validation"] > 5 * c["validation"]  # their phrases leave training
    assert prepared.validation_inside_train == 0
    assert prepared.test_inside_train == 2  # GLUE dev against the training split
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


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_files_name_file_line_and_reason(tmp_path: Path, kind: str) -> None:
    expected = make_hostile(tmp_path / "train.tsv", kind)
    with pytest.raises(DataFormatError) as err:
        read_glue_tsv(tmp_path / "train.tsv")
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


def test_a_link_to_a_system_file_is_named_as_a_link(tmp_path: Path) -> None:
    link = tmp_path / "train.tsv"
    link.symlink_to("/etc/passwd")
    with pytest.raises(DataFormatError, match=r"train\.tsv:1: header must be .*is a link to /etc/"):
        read_glue_tsv(link)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: p.mkdir(), "is a directory, not a TSV file"),
        (lambda p: p.symlink_to("/dev/zero"), "is not a regular file"),  # would never end
        (lambda p: p.symlink_to(p.parent / "gone.tsv"), "a link to .*gone.tsv, which does not"),
    ],
    ids=["directory", "device", "dangling-link"],
)
def test_a_path_that_is_not_a_file_is_named(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "train.tsv"
    make(path)
    for check in (read_glue_tsv, lambda p: source_fingerprint(DataConfig(data_dir=str(p.parent)))):
        with pytest.raises(DataFormatError, match=f"^{path}: {reason}"):
            check(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file")
def test_an_unreadable_file_is_named(tmp_path: Path) -> None:
    path = write_tsv(tmp_path / "train.tsv", ["a fine film\t1"])
    path.chmod(0)
    with pytest.raises(DataFormatError, match=r"train\.tsv: cannot be read \(Permission denied"):
        read_glue_tsv(path)


def test_a_read_error_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # chmod 000 as above, but also where the tests run as root (who reads any file)
    path = write_tsv(tmp_path / "train.tsv", ["a fine film\t1"])

    def refuse(self: Path) -> bytes:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    with pytest.raises(DataFormatError, match=r"train\.tsv: cannot be read \(Permission denied"):
        read_glue_tsv(path)


@pytest.mark.parametrize("inside", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\r", "\x1c"])
def test_line_numbers_are_physical_lines(tmp_path: Path, inside: str) -> None:
    path = tmp_path / "train.tsv"
    rows = [f"a fine{inside}film\t1", f"a{inside}poor film\t0", "broken row\t2"]
    write_tsv(path, rows)
    with pytest.raises(DataFormatError, match=r"train\.tsv:4: label must be 0 or 1, got '2'"):
        read_glue_tsv(path)
    write_tsv(path, rows[:2])
    frame = read_glue_tsv(path)
    assert frame["sentence"].tolist() == [f"a fine{inside}film", f"a{inside}poor film"]
    assert [normalize_whitespace(s) for s in frame["sentence"]] == ["a fine film", "a poor film"]


def _data(tmp_path: Path, train: list[str], dev: list[str] | None = None) -> Path:
    data = tmp_path / "sst2"
    data.mkdir()
    write_tsv(data / "train.tsv", train)
    write_tsv(data / "dev.tsv", dev or ["a fine film\t1", "a poor film\t0"])
    return data


POS = [f"a good film number {i}\t1" for i in range(50)]
NEG = [f"a bad film number {i}\t0" for i in range(50)]


@pytest.mark.parametrize(
    ("train", "dev", "options", "message"),
    [
        (
            POS,
            None,
            {},
            "train.tsv: only one class after filtering (50 rows of label 1, 0 of label 0; "
            "min_words=3); the model needs both labels",
        ),
        (
            [*POS, "bad\t0", "so bad\t0"],
            None,
            {},
            "train.tsv: only one class after filtering (50 rows of label 1, 0 of label 0; ",
        ),
        (
            ["a good one\t1", "a bad one\t0"],
            None,
            {},
            "train.tsv: too few rows for the validation split (root sentences (rows inside no "
            "other row): 1 row of label 0, 1 of label 1): each label needs at least 2 root",
        ),
        (
            ["ok\t1", "bad\t0", "so so\t1"],
            None,
            {},
            "train.tsv: no rows left after filtering: all 3 rows have fewer than min_words=3 words",
        ),
        (
            POS[:10] + NEG[:10],
            None,
            {"validation_fraction": 0.01},
            "train.tsv: validation_fraction=0.01 of 20 rows (root sentences (rows inside no "
            "other row): 10 rows of label 0, 10 of label 1) leaves 1 row for validation",
        ),
        (
            POS[:10] + NEG[:10],
            None,
            {"validation_fraction": 0.95},
            "train.tsv: validation_fraction=0.95 of 20 rows (root sentences (rows inside no "
            "other row): 10 rows of label 0, 10 of label 1) leaves 1 row for training",
        ),
        (
            NEG[:49] + POS[:2],
            None,
            {"validation_fraction": 0.03},
            "train.tsv: the validation split (validation_fraction=0.03, min_words=3) keeps 2 rows, "
            "none of label 1 (out of 49 rows of label 0, 2 of label 1)",
        ),
        (
            POS + NEG,
            None,
            {"max_train_samples": 1},
            "train.tsv: max_train_samples=1 keeps 1 row, none of label ",
        ),
        (
            POS + NEG,
            ["a good one\t1", "a fine film\t1"],
            {},
            "dev.tsv: only one class (2 rows of label 1, 0 of label 0); the test metrics",
        ),
        (POS + NEG, None, {"max_test_samples": 1}, "dev.tsv: max_test_samples=1 keeps 1 row"),
    ],
    ids=[
        "one-class",
        "one-class-after-filtering",
        "two-rows",
        "all-too-short",
        "tiny-validation",
        "tiny-training",
        "validation-without-a-label",
        "cap-of-one",
        "one-class-dev",
        "test-cap-of-one",
    ],  # fmt: skip
)
def test_data_that_cannot_train_is_refused_with_the_counts(
    tmp_path: Path, train: list[str], dev: list[str] | None, options: dict, message: str
) -> None:
    data = _data(tmp_path, train, dev)
    config = DataConfig(data_dir=str(data), **options)
    for check in (check_sst2, lambda c: prepare_sst2(c, tmp_path / "out")):
        with pytest.raises(DataFormatError) as err:
            check(config)
        assert str(err.value).startswith(str(data / message.split(":")[0]))
        assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cap", [2, 83, 84])
def test_caps_that_scikit_learn_cannot_stratify_still_keep_both_labels(
    tmp_path: Path, cap: int
) -> None:
    # 100 rows: 85 for training; a cap of 84 drops one row (fewer than the number of labels)
    config = DataConfig(data_dir=str(_data(tmp_path, POS + NEG)), max_train_samples=cap)
    prepared = prepare_sst2(config, tmp_path / "out")
    assert prepared.counts["train"] == cap
    assert min(prepared.class_balance["train"].values()) >= 1
