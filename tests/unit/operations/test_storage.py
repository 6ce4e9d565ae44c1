"""Artifacts roots: local directories and fsspec URLs."""

from pathlib import Path

import pytest

from sentiment_lora.operations.storage import (
    download_dir,
    download_to_mirror,
    get_text,
    is_url,
    local_root,
    put_text,
    remote_path,
    result_location,
    upload_dir,
)


def _tree(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_local_paths_are_their_own_root(tmp_path: Path) -> None:
    assert not is_url(str(tmp_path)) and local_root(str(tmp_path)) == tmp_path
    assert is_url("s3://bucket/x") and is_url("file:///tmp/x")
    assert local_root("s3://b/x", cache_dir=tmp_path).parent == tmp_path
    assert local_root("s3://b/x", cache_dir=tmp_path) != local_root("s3://b/y", cache_dir=tmp_path)


@pytest.mark.parametrize("scheme", ["file", "memory"])
def test_upload_then_download_round_trip(tmp_path: Path, scheme: str) -> None:
    mirror = tmp_path / "worker"
    adapter = mirror / "train" / "k1" / "adapter"
    (adapter / "sub").mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    (adapter / "sub" / "tokenizer.json").write_text("{}")
    root = f"file://{tmp_path}/remote" if scheme == "file" else f"memory://bucket-{tmp_path.name}"
    url = remote_path(root, adapter, mirror=mirror)
    assert url == f"{root}/train/k1/adapter"
    upload_dir(adapter, url)
    upload_dir(adapter, url)  # idempotent: no nested copy
    local = download_dir(url, tmp_path / "parent" / "train" / "k1" / "adapter")
    assert _tree(local) == ["adapter_model.safetensors", "sub/tokenizer.json"]
    assert (local / "adapter_model.safetensors").read_bytes() == b"weights"


def test_missing_remote_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        download_dir(f"file://{tmp_path}/nothing", tmp_path / "x")


def test_download_to_mirror_keeps_the_path_under_the_root(tmp_path: Path) -> None:
    root = f"file://{tmp_path}/remote"
    adapter = tmp_path / "worker" / "train" / "k1" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_model.safetensors").write_bytes(b"weights")
    url = upload_dir(adapter, remote_path(root, adapter, mirror=tmp_path / "worker"))
    local = download_to_mirror(url, root, cache_dir=tmp_path / "cache")
    assert local == local_root(root, cache_dir=tmp_path / "cache") / "train" / "k1" / "adapter"
    assert (local / "adapter_model.safetensors").read_bytes() == b"weights"
    for outside in (f"file://{tmp_path}/other/x", f"{root}/../escape"):
        with pytest.raises(ValueError, match="not under the artifacts root"):
            download_to_mirror(outside, root, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize("scheme", ["path", "file", "memory"])
def test_results_round_trip_through_the_artifacts_root(tmp_path: Path, scheme: str) -> None:
    root = {
        "path": str(tmp_path / "root"),
        "file": f"file://{tmp_path}/root",
        "memory": f"memory://results-{tmp_path.name}",
    }[scheme]
    location = result_location(root, "0a1b")
    assert location == f"{root}/results/0a1b.json"
    put_text(location, '{"ok": true}')
    put_text(location, '{"ok": 2}')  # replaced whole
    assert get_text(location) == '{"ok": 2}'
    with pytest.raises(FileNotFoundError, match="does not exist"):
        get_text(result_location(root, "missing"))
