"""Adding rows to train.tsv as new versions (operations.data_versions)."""

import codecs
import hashlib
import threading
import time
from pathlib import Path

import pytest

from sentiment_lora.operations import data_versions
from sentiment_lora.operations.data_manifest import find_version, read_manifest, version_path
from sentiment_lora.operations.data_versions import DataVersionError, add_rows
from sentiment_lora.training.data import DataFormatError, read_glue_tsv
from tests.conftest import write_tsv
from tests.hostile import HOSTILE, make_hostile

TRAIN = ["a good film\t1", "a bad film\t0", "warm and funny\t1"]


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tree(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (the lock file aside) with its bytes."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "sst2"
    d.mkdir()
    write_tsv(d / "train.tsv", TRAIN)
    write_tsv(d / "dev.tsv", ["fine\t1"])
    return d


def test_first_add_appends_and_records_both_versions(data_dir: Path, tmp_path: Path) -> None:
    before = (data_dir / "train.tsv").read_bytes()
    new = write_tsv(tmp_path / "new.tsv", ["a brand new film\t1", "dreadful\t0"])
    update = add_rows(data_dir, new)

    after = (data_dir / "train.tsv").read_bytes()
    assert after == before + b"a brand new film\t1\ndreadful\t0\n"
    assert (update.rows_added, update.rows_before, update.rows_after) == (2, 3, 5)
    manifest = read_manifest(data_dir)
    first, second = manifest.versions
    assert (first.version, first.origin, first.rows, first.sha256) == (
        "v0001",
        "original",
        3,
        _sha(before),
    )
    assert (second.version, second.origin, second.rows, second.rows_added) == (
        "v0002",
        "data-add",
        5,
        2,
    )
    assert second.sha256 == _sha(after)
    assert (second.source, second.source_sha256) == ("new.tsv", _sha(new.read_bytes()))
    assert version_path(data_dir, first).read_bytes() == before
    assert version_path(data_dir, second).read_bytes() == after
    assert update.previous == first and update.version == second
    assert update.recorded == (first, second)
    # a past run's train.tsv hash names its data
    assert find_version(data_dir, _sha(before)) == first
    assert find_version(data_dir, _sha(after)[:12]) == second
    assert find_version(data_dir, "0" * 64) is None


def test_second_add_records_one_more_version(data_dir: Path, tmp_path: Path) -> None:
    add_rows(data_dir, write_tsv(tmp_path / "a.tsv", ["first batch row\t1"]))
    update = add_rows(data_dir, write_tsv(tmp_path / "b.tsv", ["second batch row\t0"]))
    versions = read_manifest(data_dir).versions
    assert [v.version for v in versions] == ["v0001", "v0002", "v0003"]
    assert [v.rows for v in versions] == [3, 4, 5]
    assert update.recorded == (versions[2],)
    for v in versions:
        assert _sha(version_path(data_dir, v).read_bytes()) == v.sha256


def test_duplicates_are_dropped_within_the_file_and_against_train(
    data_dir: Path, tmp_path: Path
) -> None:
    new = write_tsv(
        tmp_path / "new.tsv",
        [
            "A  GOOD film \t1",  # in train.tsv once whitespace and case are normalised
            "a bad film\t0",  # in train.tsv as is
            "something new\t1",
            "Something   new\t1",  # repeats the line above
            "something else\t0",
        ],
    )
    update = add_rows(data_dir, new)
    assert (update.rows_read, update.duplicates_in_train, update.duplicates_in_file) == (5, 2, 1)
    assert update.duplicates_dropped == 3
    assert update.rows_added == 2
    frame = read_glue_tsv(data_dir / "train.tsv")
    assert list(frame["sentence"][3:]) == ["something new", "something else"]


def test_nothing_new_writes_nothing(data_dir: Path, tmp_path: Path) -> None:
    before = _tree(data_dir)
    update = add_rows(data_dir, write_tsv(tmp_path / "old.tsv", ["a good film\t1"]))
    assert update.version is None and update.recorded == ()
    assert _tree(data_dir) == before


def test_crlf_bom_and_missing_final_newline_are_kept(data_dir: Path, tmp_path: Path) -> None:
    train = data_dir / "train.tsv"
    before = codecs.BOM_UTF8 + b"sentence\tlabel\r\na good film\t1\r\na bad film\t0"
    train.write_bytes(before)
    add_rows(data_dir, write_tsv(tmp_path / "new.tsv", ["new row\t1", "other row\t0"]))
    assert train.read_bytes() == before + b"\r\nnew row\t1\r\nother row\t0\r\n"
    assert len(read_glue_tsv(train)) == 4


@pytest.mark.parametrize(
    ("rows", "where", "reason"),
    [
        (["fine row\t1", "broken row\t2"], "new.tsv:3", "label must be 0 or 1"),
        (["no tab here"], "new.tsv:2", "expected 2 tab-separated fields"),
        (["some film\t1", "x\t1", "Some  film\t0"], "new.tsv:4", "same sentence as line 2"),
        (["ok row\t1", "a bad film\t1"], "new.tsv:3", "train.tsv:3 with label 0"),
    ],
)
def test_a_bad_file_names_its_line_and_changes_nothing(
    data_dir: Path, tmp_path: Path, rows: list[str], where: str, reason: str
) -> None:
    add_rows(data_dir, write_tsv(tmp_path / "first.tsv", ["earlier row\t1"]))
    before = _tree(data_dir)
    with pytest.raises(DataFormatError) as info:
        add_rows(data_dir, write_tsv(tmp_path / "new.tsv", rows))
    message = str(info.value)
    assert message.startswith(str(tmp_path / where) + ": ")
    assert reason in message and "\n" not in message
    assert _tree(data_dir) == before


def test_allow_relabel_changes_only_that_label(data_dir: Path, tmp_path: Path) -> None:
    before = (data_dir / "train.tsv").read_bytes()
    new = write_tsv(tmp_path / "fix.tsv", ["A bad  film\t1", "fresh row\t0"])
    update = add_rows(data_dir, new, allow_relabel=True)
    after = (data_dir / "train.tsv").read_bytes()
    assert after == before.replace(b"a bad film\t0", b"a bad film\t1") + b"fresh row\t0\n"
    assert (update.rows_relabelled, update.rows_added, update.rows_after) == (1, 1, 4)
    assert read_manifest(data_dir).versions[-1].rows_relabelled == 1


def test_an_edit_outside_data_add_is_recorded_first(data_dir: Path, tmp_path: Path) -> None:
    add_rows(data_dir, write_tsv(tmp_path / "a.tsv", ["first batch row\t1"]))
    train = data_dir / "train.tsv"
    edited = train.read_bytes() + b"typed by hand\t0\n"
    train.write_bytes(edited)
    add_rows(data_dir, write_tsv(tmp_path / "b.tsv", ["second batch row\t1"]))
    versions = read_manifest(data_dir).versions
    assert [v.origin for v in versions] == ["original", "data-add", "outside-edit", "data-add"]
    assert versions[2].sha256 == _sha(edited)
    assert version_path(data_dir, versions[2]).read_bytes() == edited


def test_dry_run_writes_nothing(data_dir: Path, tmp_path: Path) -> None:
    before = _tree(data_dir)
    update = add_rows(data_dir, write_tsv(tmp_path / "new.tsv", ["new row\t1"]), dry_run=True)
    assert update.dry_run and update.rows_added == 1
    assert [v.version for v in update.recorded] == ["v0001", "v0002"]
    assert _tree(data_dir) == before
    assert not (data_dir / ".lock").exists()


def test_a_symlinked_data_dir_is_refused_and_untouched(tmp_path: Path) -> None:
    data_dir = tmp_path / "shared" / "sst2"  # like data/sst2 -> ../shared/data/sst2
    data_dir.mkdir(parents=True)
    write_tsv(data_dir / "train.tsv", TRAIN)
    (tmp_path / "data").mkdir()
    link = tmp_path / "data" / "sst2"
    link.symlink_to(data_dir)
    new = write_tsv(tmp_path / "new.tsv", ["new row\t1"])
    before = sorted(p.name for p in data_dir.iterdir())
    # the link itself, and paths through it (".." after a link is the target's parent)
    for target in (link, link / ".." / "sst2", tmp_path / "data" / "." / "sst2" / ".." / "sst2"):
        with pytest.raises(DataVersionError, match="symbolic link.*copy it first"):
            add_rows(target, new)
        with pytest.raises(DataVersionError):
            add_rows(target, new, dry_run=True)
    assert sorted(p.name for p in data_dir.iterdir()) == before  # not even a lock file


def test_a_symlinked_or_read_only_train_file_is_refused(data_dir: Path, tmp_path: Path) -> None:
    new = write_tsv(tmp_path / "new.tsv", ["new row\t1"])
    shared = tmp_path / "shared.tsv"
    (data_dir / "train.tsv").rename(shared)
    (data_dir / "train.tsv").symlink_to(shared)
    with pytest.raises(DataVersionError, match="train.tsv: is a symbolic link"):
        add_rows(data_dir, new)
    (data_dir / "train.tsv").unlink()
    shared.rename(data_dir / "train.tsv")
    (data_dir / "train.tsv").chmod(0o444)
    with pytest.raises(DataVersionError, match="train.tsv: is read-only"):
        add_rows(data_dir, new)
    assert not (data_dir / "versions").exists()


def test_a_read_only_data_dir_is_refused(data_dir: Path, tmp_path: Path) -> None:
    new = write_tsv(tmp_path / "new.tsv", ["new row\t1"])
    data_dir.chmod(0o555)
    try:
        with pytest.raises(DataVersionError, match="is read-only"):
            add_rows(data_dir, new)
    finally:
        data_dir.chmod(0o755)
    assert not (data_dir / "versions").exists()


def test_a_broken_manifest_is_named(data_dir: Path, tmp_path: Path) -> None:
    (data_dir / "versions").mkdir()
    (data_dir / "versions" / "manifest.json").write_text('{"versions": [{"version": 1}]}')
    with pytest.raises(DataVersionError, match="manifest.json: not a data manifest"):
        add_rows(data_dir, write_tsv(tmp_path / "new.tsv", ["new row\t1"]))


def test_concurrent_adds_serialise(data_dir: Path, tmp_path: Path, monkeypatch) -> None:
    # Slow down the read-plan-write section: without the lock both threads would read the
    # same train.tsv and the second write would drop the first one's rows.
    read = data_versions.read_manifest

    def slow_read(directory):
        time.sleep(0.3)
        return read(directory)

    monkeypatch.setattr(data_versions, "read_manifest", slow_read)
    files = [
        write_tsv(tmp_path / f"batch{i}.tsv", [f"batch {i} row {j}\t{j % 2}" for j in range(5)])
        for i in range(2)
    ]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def add(path: Path) -> None:
        start.wait()
        try:
            add_rows(data_dir, path)
        except BaseException as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(f,)) for f in files]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    _assert_two_batches_landed(data_dir)


def _assert_two_batches_landed(data_dir: Path) -> None:
    versions = read_manifest(data_dir).versions
    assert [v.version for v in versions] == ["v0001", "v0002", "v0003"]
    assert [v.rows for v in versions] == [3, 8, 13]
    assert {v.source for v in versions[1:]} == {"batch0.tsv", "batch1.tsv"}
    train = (data_dir / "train.tsv").read_bytes()
    assert versions[-1].sha256 == _sha(train)
    assert train.startswith(version_path(data_dir, versions[1]).read_bytes())
    assert len(read_glue_tsv(data_dir / "train.tsv")) == 13


@pytest.mark.parametrize("sentence", ["A  Good\tFilm ", " caf\u00e9 \u00c9T\u00c9", "x"])
def test_rows_match_as_the_data_snapshot_hashes_them(sentence: str) -> None:
    from sentiment_lora.evidence.data_snapshot import normalize_sentence

    assert data_versions.normalize_sentence(sentence) == normalize_sentence(sentence)


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_a_hostile_file_is_one_line_and_changes_nothing(
    data_dir: Path, tmp_path: Path, kind: str
) -> None:
    add_rows(data_dir, write_tsv(tmp_path / "first.tsv", ["earlier row\t1"]))
    before = _tree(data_dir)
    expected = make_hostile(tmp_path / "new.tsv", kind)
    for dry_run in (True, False):
        with pytest.raises(DataFormatError) as info:
            add_rows(data_dir, tmp_path / "new.tsv", dry_run=dry_run)
        assert str(info.value).startswith(expected) and "\n" not in str(info.value)
    assert _tree(data_dir) == before


@pytest.mark.parametrize("inside", ["\u2028", "\u2029", "\x85", "\x0c", "\x0b", "\r"])
def test_lines_are_physical_lines_in_both_files(
    data_dir: Path, tmp_path: Path, inside: str
) -> None:
    train = data_dir / "train.tsv"
    write_tsv(train, [f"a good{inside}film\t1", "a bad film\t0"])
    new = write_tsv(tmp_path / "new.tsv", [f"new{inside}row one\t1", "a bad film\t1"])
    with pytest.raises(DataFormatError, match=r"new\.tsv:3: sentence already in .*train\.tsv:3 "):
        add_rows(data_dir, new)
    before = train.read_bytes()
    add_rows(data_dir, write_tsv(tmp_path / "ok.tsv", [f"new{inside}row one\t1", "x y z\t0"]))
    assert train.read_bytes() == before + f"new{inside}row one\t1\nx y z\t0\n".encode()
    assert len(read_glue_tsv(train)) == 4


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b'{"schema_version": 1, "versions": [{"version": "v0001", "ti', "Invalid JSON: EOF"),
        (b"", "Invalid JSON: EOF while parsing a value"),
        (b"\xff\xfe\x00garbage", "Invalid JSON"),
        (b"[]", "Input should be an object"),
    ],
    ids=["truncated", "empty", "binary", "a-list"],
)
def test_a_damaged_manifest_is_named_and_changes_nothing(
    data_dir: Path, tmp_path: Path, content: bytes, detail: str
) -> None:
    add_rows(data_dir, write_tsv(tmp_path / "first.tsv", ["earlier row\t1"]))
    (data_dir / "versions" / "manifest.json").write_bytes(content)
    before = _tree(data_dir)
    with pytest.raises(DataVersionError) as info:
        add_rows(data_dir, write_tsv(tmp_path / "new.tsv", ["new row\t1"]))
    message = str(info.value)
    assert message.startswith(f"{data_dir / 'versions' / 'manifest.json'}: not a data manifest (")
    assert detail in message and "restore it" in message and "\n" not in message
    assert _tree(data_dir) == before


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: (d / "versions").write_text("x"), "versions: is not a directory"),
        (lambda d: (d / "versions" / "manifest.json").mkdir(parents=True), "json: is not a file"),
        (lambda d: (d / "train.tsv").unlink() or (d / "train.tsv").mkdir(), "train.tsv: is a dir"),
    ],
    ids=["versions-is-a-file", "manifest-is-a-directory", "train-is-a-directory"],
)
def test_parts_of_the_wrong_kind_are_refused(
    data_dir: Path, tmp_path: Path, make, message: str
) -> None:
    make(data_dir)
    before = _tree(data_dir)
    with pytest.raises((DataVersionError, DataFormatError), match=message):
        add_rows(data_dir, write_tsv(tmp_path / "new.tsv", ["new row\t1"]))
    assert _tree(data_dir) == before


def test_a_data_dir_that_is_a_file_is_named(tmp_path: Path) -> None:
    not_a_dir = write_tsv(tmp_path / "train.tsv", ["a good film\t1"])
    with pytest.raises(DataVersionError, match=r"train\.tsv: is not a directory \(give the one"):
        add_rows(not_a_dir, write_tsv(tmp_path / "new.tsv", ["new row\t1"]))


def test_a_failed_write_leaves_train_and_manifest_as_they_were(
    data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_rows(data_dir, write_tsv(tmp_path / "first.tsv", ["earlier row\t1"]))
    train, manifest = (data_dir / "train.tsv").read_bytes(), read_manifest(data_dir)

    def disk_full(path: Path, text: str) -> Path:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(data_versions, "atomic_write_text", disk_full)  # the manifest's writer
    with pytest.raises(DataVersionError) as info:
        add_rows(data_dir, write_tsv(tmp_path / "new.tsv", ["new row\t1"]))
    assert str(info.value) == (
        f"{data_dir / 'versions' / 'manifest.json'}: cannot write (No space left on device); "
        "train.tsv, holdout.tsv and the manifest are unchanged"
    )
    assert (data_dir / "train.tsv").read_bytes() == train and read_manifest(data_dir) == manifest
