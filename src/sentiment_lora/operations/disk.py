"""Disk space: what a directory holds, what is free, and what a run will need.

The estimate is deliberately generous and simple, so the preflight can refuse a run that would
fill the disk hours in, before anything is written: per config, a LoRA adapter with its two
Trainer checkpoints stays under a fifth of the base model's weights; a fully fine-tuned model
with two checkpoints (weights plus Adam's two moments each) takes about seven times them.
"""

import os
import shutil
from pathlib import Path

from sentiment_lora.config import PipelineConfig

RUN_OVERHEAD_BYTES = 200 * 2**20  # prepared data, snapshot, report, predictions, registry copy
LORA_SHARE, FULL_SHARE = 0.2, 7.0  # of the base model's weight bytes, per config


def dir_bytes(path: Path | str) -> int:
    """Bytes of the regular files under ``path`` (links not followed; 0 if it is missing)."""
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                stat = os.lstat(os.path.join(root, name))
            except OSError:  # removed while walking
                continue
            total += stat.st_size if not os.path.islink(os.path.join(root, name)) else 0
    return total


def free_bytes(path: Path | str) -> int:
    """Free bytes on the file system of ``path`` (its nearest existing ancestor)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


def weights_bytes(model_dir: Path | str) -> int:
    """Bytes of a model directory's weight files (``*.safetensors``, ``*.bin``)."""
    model_dir = Path(model_dir)
    return sum(p.stat().st_size for p in model_dir.glob("*.safetensors")) + sum(
        p.stat().st_size for p in model_dir.glob("*.bin")
    )


def run_need_bytes(config: PipelineConfig, base_bytes: int) -> int:
    """Disk a run of ``config``'s grid is expected to need, given its base model's weights."""
    shares = sum(FULL_SHARE if hp.method == "full" else LORA_SHARE for hp in config.grid)
    ensemble = base_bytes * LORA_SHARE if config.train.ensemble_top_k else 0
    return int(RUN_OVERHEAD_BYTES + shares * base_bytes + ensemble)


def mib(n: int) -> str:
    """``n`` bytes in MiB, for messages."""
    return f"{n / 2**20:,.0f} MiB"
