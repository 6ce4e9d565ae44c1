"""Shared helpers of the benchmark: thread settings, medians, machine and version facts."""

import os
import platform
import statistics
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

TORCH_THREADS = 2
PROJECT_ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = PROJECT_ROOT / "bench"
DATA_DIR = PROJECT_ROOT / "data" / "sst2"

# Child processes (memory probes, pipeline runs) get the same thread count as this one.
THREAD_ENV = {
    "OMP_NUM_THREADS": str(TORCH_THREADS),
    "MKL_NUM_THREADS": str(TORCH_THREADS),
    "TOKENIZERS_PARALLELISM": "false",
    "TRANSFORMERS_VERBOSITY": "error",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
}


def set_threads() -> None:
    """Pin torch (and the BLAS/OpenMP pools of children) to :data:`TORCH_THREADS` threads."""
    os.environ.update(THREAD_ENV)
    import datasets
    import torch
    import transformers

    torch.set_num_threads(TORCH_THREADS)
    transformers.utils.logging.set_verbosity_error()  # no weight-loading reports
    transformers.utils.logging.disable_progress_bar()
    datasets.disable_progress_bars()


def median(values: list[float]) -> float:
    """Median of a non-empty list."""
    return float(statistics.median(values))


def child_env(**extra: str) -> dict[str, str]:
    """Environment for a child process: ours plus the thread settings plus ``extra``."""
    return {**os.environ, **THREAD_ENV, **extra}


def load_average() -> tuple[float, float, float]:
    """1, 5 and 15 minute load averages."""
    return os.getloadavg()


def cpu_model() -> str:
    """lscpu's 'Model name' (falls back to platform.processor())."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    for line in out.splitlines():
        if line.startswith("Model name:"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def machine_info() -> dict:
    """CPU model, core count, versions and the date: the context of every number."""
    import peft
    import torch
    import transformers

    from sentiment_lora.training.modeling import fast_bf16_available

    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "peft": peft.__version__,
        "native_bf16": fast_bf16_available(torch.device("cpu")),
        "load_average_start": list(load_average()),
    }


def test_split() -> tuple[list[str], list[int]]:
    """The 872 GLUE dev sentences (the project's test set), whitespace-normalised as the
    pipeline does, and their labels."""
    from sentiment_lora.training.data import normalize_whitespace, read_glue_tsv

    frame = read_glue_tsv(DATA_DIR / "dev.tsv")
    return [normalize_whitespace(s) for s in frame["sentence"]], frame["label"].tolist()


def test_sentences() -> list[str]:
    """The sentences of :func:`test_split`."""
    return test_split()[0]
