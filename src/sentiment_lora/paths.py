"""Layout of the reports directory: run-directory file names, run ids, publishing a run."""

import os
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

# The files of a run directory, reports/<run-id>/.
RESULTS_FILE = "fine_tuning_results.json"
PREDICTIONS_FILE = "test_predictions.csv"
PROB_PREFIX = "prob_positive:"  # + model name: a column of PREDICTIONS_FILE
HTML_FILE = "report.html"
PDF_FILE = "report.pdf"
MODEL_DIR = "model"
DATA_SNAPSHOT_DIR = "data_snapshot"  # the run's data (sentiment_lora.evidence.data_snapshot)
LATEST = "latest"

# The files of a model directory (a run's model/, a registry version's, a Trainer output).
ADAPTER_WEIGHTS = "adapter_model.safetensors"  # a LoRA adapter (and the trained head)
ADAPTER_CONFIG = "adapter_config.json"
FULL_WEIGHTS = "model.safetensors"  # a fully fine-tuned model, or a base model
MODEL_CONFIG = "config.json"
METADATA_FILE = "sentiment_lora.json"  # what this project records about any model it saves
ENSEMBLE_FILE = "ensemble.json"  # an ensemble: members/<config>/ plus this file
ENSEMBLE_MEMBERS_DIR = "members"
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def safe_name(name: str, *, what: str = "name") -> str:
    """``name`` if it is safe as one path component (no '/', no '..'), else ValueError."""
    if not _SAFE.fullmatch(name) or ".." in name:
        raise ValueError(f"{what}: {name!r} is not a safe file name (letters, digits, . _ -)")
    return name


def new_run_id(suffix: str = "") -> str:
    """Sortable run id: UTC timestamp plus an optional short suffix."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{safe_name(suffix, what='run id suffix')}" if suffix else stamp


def staging_dir(reports_dir: Path, run_id: str) -> Path:
    """Hidden directory a run is written into before it is published."""
    return Path(reports_dir) / f".{safe_name(run_id, what='run id')}.partial"


def publish_run(staging: Path, reports_dir: Path, run_id: str) -> Path:
    """Move a complete staging directory to ``reports_dir/run_id`` and point ``latest`` at it."""
    final = Path(reports_dir) / safe_name(run_id, what="run id")
    if final.exists():
        raise FileExistsError(f"run directory already exists: {final}")
    os.replace(staging, final)
    update_latest(Path(reports_dir), run_id)
    return final


def update_latest(reports_dir: Path, run_id: str) -> None:
    """Atomically repoint the ``latest`` symlink at ``run_id``."""
    link = reports_dir / LATEST
    tmp = reports_dir / f".{LATEST}.{os.getpid()}.tmp"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_id, target_is_directory=True)
    os.replace(tmp, link)


def copy_tree_atomic(src: Path, dst: Path) -> Path:
    """Copy directory ``src`` to ``dst`` via a temporary sibling and a rename."""
    tmp = dst.with_name(f".{dst.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp)
    if dst.exists():
        shutil.rmtree(dst)
    os.replace(tmp, dst)
    return dst
