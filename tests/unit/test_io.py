"""Atomic writes: a failure mid-write leaves the previous complete file in place."""

import json
import os
from pathlib import Path

import pytest

from sentiment_lora import io
from sentiment_lora.io import atomic_write_json, atomic_write_text
from sentiment_lora.paths import copy_tree_atomic


def test_failure_mid_write_keeps_the_previous_file(tmp_path: Path, monkeypatch) -> None:
    target = tmp_path / "results.json"
    atomic_write_json(target, {"run": 1})

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_json(target, {"run": 2})
    assert json.loads(target.read_text()) == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_json_is_strict_and_files_are_readable(tmp_path: Path) -> None:
    path = atomic_write_json(tmp_path / "x.json", {"a": float("nan"), "b": [float("inf"), 1.0]})
    assert json.loads(path.read_text()) == {"a": None, "b": [None, 1.0]}
    assert oct(path.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    atomic_write_text(tmp_path / "y.txt", "ok")
    assert (tmp_path / "y.txt").read_text() == "ok"


def test_tree_copy_failure_keeps_the_previous_tree(tmp_path: Path, monkeypatch) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.mkdir()
    (src / "w.safetensors").write_text("new")
    dst.mkdir()
    (dst / "w.safetensors").write_text("old")
    import shutil

    def crash(*args, **kwargs):
        raise OSError("copy interrupted")

    monkeypatch.setattr(shutil, "copytree", crash)
    with pytest.raises(OSError):
        copy_tree_atomic(src, dst)
    assert (dst / "w.safetensors").read_text() == "old"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
