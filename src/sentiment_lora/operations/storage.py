"""The artifacts root: a local directory, or any fsspec URL (``s3://``, ``gs://``, ``file://``)
that several machines share.

Training always happens in a local directory. With a URL root, a worker trains into a local
mirror of the root, uploads the adapter to the URL, and whoever needs the model downloads it
into its own mirror.
"""

import hashlib
import os
from pathlib import Path

import fsspec


def is_url(root: str) -> bool:
    """True for an fsspec URL such as ``s3://bucket/prefix``; False for a local path."""
    return "://" in root


CACHE_ENV = "SENTIMENT_LORA_CACHE_DIR"


def local_root(root: str, *, cache_dir: Path | None = None) -> Path:
    """Local directory that holds (a mirror of) ``root``.

    Mirrors of URL roots live under ``cache_dir``, else ``$SENTIMENT_LORA_CACHE_DIR``, else
    ``~/.cache/sentiment-lora/artifacts`` (one directory per URL).
    """
    if not is_url(root):
        return Path(root)
    default = os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "sentiment-lora" / "artifacts"
    cache = Path(cache_dir or default)
    return cache / hashlib.sha256(root.encode()).hexdigest()[:16]


def remote_path(root: str, local_path: Path | str, *, mirror: Path) -> str:
    """URL under ``root`` that corresponds to ``local_path`` inside ``mirror``."""
    relative = Path(local_path).resolve().relative_to(mirror.resolve())
    return f"{root.rstrip('/')}/{relative.as_posix()}"


def upload_dir(local_dir: Path | str, url: str) -> str:
    """Copy a local directory to ``url`` (replacing what is there); returns ``url``."""
    fs, path = fsspec.core.url_to_fs(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)
    fs.put(str(local_dir).rstrip("/") + "/", path, recursive=True)
    return url


def download_dir(url: str, local_dir: Path | str) -> Path:
    """Copy ``url`` into ``local_dir`` unless it is already there; returns ``local_dir``."""
    local_dir = Path(local_dir)
    if local_dir.is_dir() and any(local_dir.iterdir()):
        return local_dir
    fs, path = fsspec.core.url_to_fs(url)
    if not fs.exists(path):
        raise FileNotFoundError(f"artifacts: {url} does not exist")
    tmp = local_dir.with_name(f".{local_dir.name}.download")
    tmp.parent.mkdir(parents=True, exist_ok=True)
    fs.get(path.rstrip("/") + "/", str(tmp), recursive=True)
    tmp.replace(local_dir)
    return local_dir


def download_to_mirror(url: str, root: str, *, cache_dir: Path | None = None) -> Path:
    """Copy ``url``, a directory under the artifacts root ``root``, to the same place in this
    machine's mirror of the root (see :func:`local_root`); returns the local directory."""
    prefix = root.rstrip("/") + "/"
    if not url.startswith(prefix) or ".." in url[len(prefix) :].split("/"):
        raise ValueError(f"artifacts: {url} is not under the artifacts root {root}")
    return download_dir(url, local_root(root, cache_dir=cache_dir) / url[len(prefix) :])


RESULTS_DIR = "results"


def result_location(root: str, run_id: str) -> str:
    """Where a child run's result is kept in the artifacts root (a path or an fsspec URL)."""
    return f"{root.rstrip('/')}/{RESULTS_DIR}/{run_id}.json"


def put_text(location: str, text: str) -> str:
    """Write ``text`` at ``location`` (a local path or an fsspec URL), whole or not at all:
    written under a temporary name, then moved into place."""
    fs, path = fsspec.core.url_to_fs(location)
    fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with fs.open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
    fs.mv(tmp, path)
    return location


def get_text(location: str) -> str:
    """The text at ``location`` (a local path or an fsspec URL); FileNotFoundError naming it."""
    fs, path = fsspec.core.url_to_fs(location)
    if not fs.exists(path):
        raise FileNotFoundError(f"artifacts: {location} does not exist")
    with fs.open(path, "r", encoding="utf-8") as fh:
        return fh.read()
