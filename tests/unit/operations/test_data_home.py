"""One data home: where it is, how it is created from the read-only copy, and that the
commands that feed it (``data init``, ``data add``) find it without being told."""

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from sentiment_lora.cli import main
from sentiment_lora.operations import data_home as home_module
from sentiment_lora.operations.data_home import (
    DATA_HOME_ENV,
    DataHomeError,
    data_home,
    ensure_data_home,
)
from sentiment_lora.operations.data_manifest import read_manifest
from tests.conftest import write_tsv


@pytest.fixture
def shared(tmp_path: Path) -> Path:
    """A read-only source reached through a link, like data/sst2 -> the shared copy."""
    real = tmp_path / "shared"
    real.mkdir()
    write_tsv(real / "train.tsv", ["a good film\t1", "a bad film\t0"])
    write_tsv(real / "dev.tsv", ["fine\t1"])
    for path in (real / "train.tsv", real / "dev.tsv", real):
        path.chmod(0o555 if path.is_dir() else 0o444)
    link = tmp_path / "sst2"
    link.symlink_to(real)
    yield link
    real.chmod(0o755)


def test_the_home_is_the_setting_or_its_default(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(DATA_HOME_ENV, raising=False)
    assert data_home(tmp_path) == tmp_path / "data" / "sst2-live"
    monkeypatch.setenv(DATA_HOME_ENV, "elsewhere/live")
    assert data_home(tmp_path) == tmp_path / "elsewhere" / "live"
    monkeypatch.setenv(DATA_HOME_ENV, str(tmp_path / "abs"))
    assert data_home(Path("/ignored")) == tmp_path / "abs"


def test_it_is_created_once_as_a_writable_copy(shared: Path, tmp_path: Path) -> None:
    home = tmp_path / "data" / "sst2-live"
    assert ensure_data_home(home, shared) is True
    for name in ("train.tsv", "dev.tsv"):
        assert not (home / name).is_symlink() and os.access(home / name, os.W_OK)
        assert (home / name).read_bytes() == (shared / name).read_bytes()
    (home / "train.tsv").write_text("sentence\tlabel\nchanged\t1\n")
    assert ensure_data_home(home, shared) is False  # never overwritten
    assert (home / "train.tsv").read_text().endswith("changed\t1\n")
    assert sorted(p.name for p in home.parent.iterdir()) == ["sst2-live"]  # no stage left


def test_refusals_name_the_directory_and_leave_nothing(
    shared: Path, tmp_path: Path, monkeypatch
) -> None:
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    with pytest.raises(DataHomeError, match=f"^{occupied}: exists without a train.tsv"):
        ensure_data_home(occupied, shared)
    with pytest.raises(DataHomeError, match="no train.tsv, dev.tsv to start the live data"):
        ensure_data_home(tmp_path / "new", tmp_path / "nowhere")

    copies = []

    def copy_then_fail(src, dst):  # the disk fills on the second file
        copies.append(dst)
        if len(copies) == 2:
            raise OSError(28, "No space left on device")
        return shutil.copyfile(src, dst)

    monkeypatch.setattr(home_module.shutil, "copyfile", copy_then_fail)
    home = tmp_path / "out" / "live"
    with pytest.raises(OSError, match="No space"):
        ensure_data_home(home, shared)
    assert not home.exists() and list((tmp_path / "out").iterdir()) == []


def test_data_init_and_data_add_use_the_home(
    shared: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    home = tmp_path / "live"
    monkeypatch.setenv(DATA_HOME_ENV, str(home))
    assert main(["data", "init", "--from", str(shared)]) == 0
    assert capsys.readouterr().out.startswith(f"{home}: created from {shared}")
    assert main(["data", "init", "--from", str(shared)]) == 0
    assert "already there; left as it is" in capsys.readouterr().out
    new = write_tsv(tmp_path / "new.tsv", ["a new sentence\t1"])
    assert main(["data", "add", str(new), "--holdout-fraction", "0"]) == 0  # no --data-dir
    sha = hashlib.sha256((home / "train.tsv").read_bytes()).hexdigest()
    assert read_manifest(home).latest.sha256 == sha
    assert (shared / "train.tsv").read_text().count("\n") == 3  # the source is untouched
