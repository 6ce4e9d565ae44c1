"""Cache keys for the pipeline's tasks: content of the inputs plus the version of the code.

Each key is built from what the task's result really depends on: data content hashes, the
parameters that change the result, the model's identity and a hash of all of
``src/sentiment_lora`` (so a change to the logic a task calls invalidates it, not only a change
to the task's own body). Output directories in the artifacts root are named by the same keys.
"""

from pathlib import Path
from typing import Any

from prefect.context import TaskRunContext
from pydantic import BaseModel

from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig
from sentiment_lora.errors import UserError
from sentiment_lora.evidence.data_snapshot import SNAPSHOT_FILE
from sentiment_lora.fingerprint import code_version, fingerprint
from sentiment_lora.paths import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    FULL_WEIGHTS,
    METADATA_FILE,
    MODEL_CONFIG,
)
from sentiment_lora.training.data import PreparedData, sha256_file, source_fingerprint
from sentiment_lora.training.ensemble import weights_identity
from sentiment_lora.training.lora import (
    ADAPTER_DIR,
    FIRST_RUNG_DIR,
    FULL_MODEL_DIR,
    TrainingResult,
)
from sentiment_lora.training.modeling import (
    model_fingerprint,
    pick_device,
    resolve_precision,
)

# Task options of every cached task: results persisted and kept until their key changes.
CACHED = {"persist_result": True, "cache_expiration": None}


def retry_unless_user_error(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retry_condition_fn: retry transient failures, not an error in the input."""
    try:
        state.result()
    except UserError:
        return False
    except Exception:  # noqa: BLE001 (any other failure may be transient)
        return True
    return True


# Fields of TrainConfig that do not change a trained model. A config promoted by successive
# halving ends where an uninterrupted run would: first_rung_epochs only names the first rung.
# ensemble_top_k only adds a candidate built from the trained configs.
_RUNTIME_ONLY = {"max_parallel", "eval_batch_size", "first_rung_epochs", "ensemble_top_k"}
_PREPARED_FILES = ("train.parquet", "validation.parquet", "test.parquet")
_ADAPTER_FILES = (ADAPTER_WEIGHTS, ADAPTER_CONFIG, METADATA_FILE)
_FULL_MODEL_FILES = (FULL_WEIGHTS, MODEL_CONFIG, METADATA_FILE)


def prepared_dir(workdir: str, config: DataConfig) -> Path:
    """Where the data task writes its splits."""
    return Path(workdir) / "data" / data_key(config)


def training_dir(
    workdir: str, prepared: PreparedData, hp: LoraHyperparams, train: TrainConfig
) -> Path:
    """Where the training task writes checkpoints and the adapter (a first rung's adapter
    under ``first-rung/``): one directory per config, so a promoted one resumes there."""
    return Path(workdir) / "train" / training_key(prepared, hp, train)


def adapter_path(
    workdir: str,
    prepared: PreparedData,
    hp: LoraHyperparams,
    train: TrainConfig,
    stop_at_epoch: float | None = None,
) -> Path:
    """Where the training task saves the model (an adapter, or with method 'full' the whole
    model) of a whole run or of a first rung."""
    root = training_dir(workdir, prepared, hp, train)
    name = FULL_MODEL_DIR if hp.method == "full" else ADAPTER_DIR
    return (root / FIRST_RUNG_DIR if stop_at_epoch else root) / name


def prepared_complete(workdir: str, config: DataConfig) -> bool:
    """True if the data task's files are all on disk (a cache hit may be served)."""
    return all((prepared_dir(workdir, config) / f).is_file() for f in _PREPARED_FILES)


def adapter_complete(adapter_dir: Path | str) -> bool:
    """True if a trained model's files (an adapter's, or a fully fine-tuned model's) are all
    on disk (a cache hit may be served)."""
    return any(
        all((Path(adapter_dir) / f).is_file() for f in files)
        for files in (_ADAPTER_FILES, _FULL_MODEL_FILES)
    )


def adapter_fingerprint(adapter_dir: str) -> str:
    """Content hash of a saved model's weights (an ensemble's: its members'): evaluations are
    keyed on the model, not its path."""
    return weights_identity(adapter_dir)


def data_key(config: DataConfig) -> str:
    """Key of a prepared dataset: data config (not its path) + source file hashes + code."""
    return fingerprint(
        "data",
        config.model_dump_json(exclude={"data_dir"}),
        source_fingerprint(config),
        code_version(),
    )


def training_key(prepared: PreparedData, hp: LoraHyperparams, train: TrainConfig) -> str:
    """Key of one trained config: data + hyperparameters + model + training settings + code."""
    return fingerprint(
        "train",
        prepared.fingerprint,
        hp.model_dump_json(),
        train.model_dump_json(exclude=_RUNTIME_ONLY),
        # 'auto' precision differs by machine: key on what it resolves to here
        resolve_precision(train.precision, pick_device(train.device), training=True),
        model_fingerprint(train.model),
        code_version(),
    )


def prepare_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn for the data task."""
    return data_key(parameters["config"])


def train_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn for the training task: the config's key, and where it stops."""
    key = training_key(parameters["prepared"], parameters["hp"], parameters["train"])
    stop = parameters.get("stop_at_epoch")
    return fingerprint(key, f"stop={stop}") if stop else key


def evaluate_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn for test evaluation: the trained model's key + the test split + code."""
    result = parameters["result"]
    return fingerprint(
        "evaluate",
        adapter_fingerprint(result.adapter_dir),
        parameters["prepared"].fingerprint,
        parameters["train"].max_length,
        code_version(),
    )


def ensemble_dir(workdir: str, members: list[TrainingResult]) -> Path:
    """Where an ensemble of ``members`` is written: named by the members' weights."""
    key = fingerprint("ensemble", *(adapter_fingerprint(m.adapter_dir) for m in members))
    return Path(workdir) / "ensembles" / key


def ensemble_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn for the ensemble candidate: its members' weights, the data it is
    evaluated on, the sentence length and the code."""
    return fingerprint(
        "ensemble",
        *(adapter_fingerprint(m.adapter_dir) for m in parameters["members"]),
        parameters["prepared"].fingerprint,
        parameters["train"].max_length,
        code_version(),
    )


def validation_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn for validation predictions of a trained config."""
    return fingerprint(
        "validate",
        adapter_fingerprint(parameters["result"].adapter_dir),
        parameters["prepared"].fingerprint,
        parameters["train"].max_length,
        code_version(),
    )


def baselines_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn for the baselines: data, model identity, seed, length, code."""
    train: TrainConfig = parameters["train"]
    return fingerprint(
        "baselines",
        parameters["prepared"].fingerprint,
        model_fingerprint(train.model),
        train.seed,
        train.max_length,
        code_version(),
    )


def _stable(value: Any) -> str:
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    if isinstance(value, dict):
        return "{" + ",".join(f"{k!r}:{_stable(v)}" for k, v in sorted(value.items())) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_stable(v) for v in value) + "]"
    return repr(value)


def inputs_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn for analysis tasks: the task's name, its inputs' content and code."""
    return fingerprint(
        context.task.name,
        *(f"{name}={_stable(value)}" for name, value in sorted(parameters.items())),
        code_version(),
    )


def snapshot_dir(workdir: str, prepared: PreparedData) -> Path:
    """Where the data snapshot of a prepared dataset is written."""
    return Path(workdir) / "snapshots" / fingerprint("snapshot", prepared.fingerprint)


def snapshot_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn for the data snapshot: the prepared data, its sources and code."""
    return fingerprint(
        "snapshot",
        parameters["prepared"].fingerprint,
        parameters["data_dir"],
        code_version(),
    )


def _snapshot_identity(directory: str | None) -> str:
    path = Path(directory or "") / SNAPSHOT_FILE
    return sha256_file(path) if directory and path.is_file() else "none"


def data_diff_cache_key(context: TaskRunContext, parameters: dict[str, Any]) -> str:
    """Prefect cache_key_fn for the data diff: both snapshots' content, alpha and code."""
    return fingerprint(
        "data-diff",
        _snapshot_identity(parameters["snapshot"]),
        _snapshot_identity(parameters["champion_snapshot"]),
        parameters["alpha"],
        code_version(),
    )
