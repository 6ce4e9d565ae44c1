"""The data's entry points on hostile input: ``python flows/full.py --data-dir`` and
``sentiment-lora data add`` end in one line ``error: <file:line | path>: ...`` and exit 2."""

import subprocess
import sys
from pathlib import Path

import pytest

from sentiment_lora.cli import main as cli_main
from tests.conftest import write_tsv
from tests.hostile import HOSTILE, make_hostile

ROOT = Path(__file__).resolve().parents[3]
TRAIN = [f"a good film number {i}\t1" for i in range(20)] + [
    f"a bad film number {i}\t0" for i in range(20)
]


def _data_dir(tmp_path: Path, train: list[str] | None = TRAIN) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    if train is not None:
        write_tsv(data / "train.tsv", train)
    write_tsv(data / "dev.tsv", ["a fine film\t1", "a poor film\t0"])
    return data


def _flow_args(tmp_path: Path, data: Path) -> list[str]:
    return [
        "--data-dir", str(data),
        "--reports-dir", str(tmp_path / "reports"),
        "--artifacts-dir", str(tmp_path / "artifacts"),
        "--registry-dir", str(tmp_path / "registry"),
    ]  # fmt: skip


def _one_line(err: str) -> str:
    assert err.count("\n") == 1 and err.startswith("error: "), err
    return err.removeprefix("error: ").rstrip("\n")


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_full_flow_refuses_a_hostile_train_file(tmp_path: Path, capsys, kind: str) -> None:
    from flows.full import main

    data = _data_dir(tmp_path, train=None)
    expected = make_hostile(data / "train.tsv", kind)
    assert main(_flow_args(tmp_path, data)) == 2
    assert _one_line(capsys.readouterr().err).startswith(expected)
    assert not (tmp_path / "artifacts").exists() or not any((tmp_path / "artifacts").iterdir())


@pytest.mark.parametrize(
    ("train", "options", "expected"),
    [
        (TRAIN[:20], [], "train.tsv: only one class after filtering (20 rows of label 1, 0 of"),
        (["a good one\t1", "a bad one\t0"], [], "train.tsv: too few rows for the validation"),
        (TRAIN, ["--min-words", "9"], "train.tsv: no rows left after filtering: all 40 rows"),
    ],
    ids=["one-class", "two-rows", "all-too-short"],
)
def test_full_flow_refuses_data_that_cannot_train(
    tmp_path: Path, capsys, train: list[str], options: list[str], expected: str
) -> None:
    from flows.full import main

    data = _data_dir(tmp_path, train)
    assert main([*_flow_args(tmp_path, data), *options]) == 2
    assert _one_line(capsys.readouterr().err).startswith(f"{data}/{expected}")


def test_full_flow_script_names_the_physical_line(tmp_path: Path) -> None:
    data = _data_dir(tmp_path, ["a good\u2028film\t1", "a bad\x85film\t0", "a\x0cfine one\t0.0"])
    command = [sys.executable, str(ROOT / "flows" / "full.py"), *_flow_args(tmp_path, data)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"error: {data / 'train.tsv'}:4: label must be 0 or 1, got '0.0'"
    ]


def _add(data: Path, new: Path, *extra: str) -> list[str]:
    return ["data", "add", str(new), "--data-dir", str(data), *extra]


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_data_add_refuses_a_hostile_file(tmp_path: Path, capsys, kind: str) -> None:
    data = _data_dir(tmp_path)
    expected = make_hostile(tmp_path / "new.tsv", kind)
    assert cli_main(_add(data, tmp_path / "new.tsv")) == 2
    captured = capsys.readouterr()
    assert _one_line(captured.err).startswith(expected) and captured.out == ""
    assert sorted(p.name for p in data.iterdir()) == ["dev.tsv", "train.tsv"]


def _damaged_manifest(data: Path) -> str:
    (data / "versions").mkdir()
    (data / "versions" / "manifest.json").write_text('{"schema_version": 1, "vers')
    return f"{data}/versions/manifest.json: not a data manifest (Invalid JSON: EOF"


def _read_only(data: Path) -> str:
    data.chmod(0o555)
    return f"{data}: is read-only: copy it first"


def _hostile_train(data: Path) -> str:
    (data / "train.tsv").unlink()
    return make_hostile(data / "train.tsv", "utf-16")


@pytest.mark.parametrize(
    "damage", [_damaged_manifest, _read_only, _hostile_train], ids=lambda f: f.__name__[1:]
)
def test_data_add_refuses_a_damaged_data_dir(tmp_path: Path, capsys, damage) -> None:
    data = _data_dir(tmp_path)
    expected = damage(data)
    try:
        assert cli_main(_add(data, write_tsv(tmp_path / "new.tsv", ["new row\t1"]))) == 2
    finally:
        data.chmod(0o755)
    captured = capsys.readouterr()
    assert _one_line(captured.err).startswith(expected) and captured.out == ""


def test_data_add_command_is_one_line_and_exit_2(tmp_path: Path) -> None:
    data = _data_dir(tmp_path)
    new = tmp_path / "new.tsv"
    expected = make_hostile(new, "gzip")
    command = [sys.executable, "-m", "sentiment_lora.cli", *_add(data, new)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert _one_line(done.stderr).startswith(expected)
    command.insert(3, "--debug")
    debug = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr
