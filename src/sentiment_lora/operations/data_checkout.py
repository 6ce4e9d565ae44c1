"""A recorded data version as a data directory of its own (``--data-version vNNNN``).

The pipeline reads ``train.tsv``, ``dev.tsv`` and ``holdout.tsv`` from one directory, so a past
version is *checked out*: its files are copied, their sha256 verified against the manifest,
into ``<root>/data-versions/<name>-<version>-<sha12>/`` (content-addressed, made beside and
renamed into place, so concurrent runs share one copy and nobody sees half of one), with the
manifest up to that version, which names the version in the run's results as for live data.
``dev.tsv`` (the test set) is not versioned: the current one is used.
"""

import hashlib
import shutil
import tempfile
from pathlib import Path

from sentiment_lora.config import PipelineConfig, resolve_path
from sentiment_lora.io import atomic_write_text
from sentiment_lora.operations.data_manifest import (
    DataManifest,
    DataVersion,
    DataVersionError,
    manifest_path,
    read_manifest,
    version_path,
)

CHECKOUTS_DIR = "data-versions"


def recorded_version(data_dir: Path | str, version: str) -> DataVersion:
    """The manifest entry of ``version``; DataVersionError naming the versions there are."""
    versions = read_manifest(data_dir).versions
    found = next((v for v in versions if v.version == version), None)
    if found is None:
        known = f"{versions[0].version}-{versions[-1].version}" if versions else "none"
        raise DataVersionError(
            f"data_version: {version} is not recorded in {manifest_path(data_dir)} "
            f"(recorded: {known})"
        )
    return found


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_verified(src: Path, dst: Path, sha256: str) -> None:
    shutil.copyfile(src, dst)
    if _sha256(dst) != sha256:
        raise DataVersionError(f"{src}: its sha256 is not the one the manifest recorded")


def checkout_version(data_dir: Path | str, version: str, root: Path | str) -> Path:
    """The directory holding ``data_dir``'s ``version`` (created once, then reused)."""
    data_dir = Path(data_dir).resolve()
    entry = recorded_version(data_dir, version)
    out = Path(root) / CHECKOUTS_DIR / f"{data_dir.name}-{version}-{entry.sha256[:12]}"
    if out.is_dir():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _copy_verified(version_path(data_dir, entry), stage / "train.tsv", entry.sha256)
        shutil.copyfile(data_dir / "dev.tsv", stage / "dev.tsv")
        if entry.holdout_file and entry.holdout_sha256:
            _copy_verified(
                data_dir / entry.holdout_file, stage / "holdout.tsv", entry.holdout_sha256
            )
        history = read_manifest(data_dir).versions
        upto = DataManifest(versions=history[: history.index(entry) + 1])
        manifest_path(stage).parent.mkdir()
        atomic_write_text(manifest_path(stage), upto.model_dump_json(indent=2) + "\n")
        try:
            stage.rename(out)
        except OSError:  # another run checked it out first: theirs is the same bytes
            shutil.rmtree(stage, ignore_errors=True)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return out


def with_data_version(config: PipelineConfig, root: Path | str) -> PipelineConfig:
    """``config`` reading the checkout of ``data.data_version`` (unchanged without one)."""
    data = config.data
    if data.data_version is None:
        return config
    checkout = checkout_version(resolve_path(data.data_dir), data.data_version, root)
    return config.model_copy(update={"data": data.model_copy(update={"data_dir": str(checkout)})})
