"""Checks of a saved model directory's files, before PEFT or transformers reads any of them.

A damaged directory (truncated weights or JSON, a base model that is gone or given as a
relative path, pickle-only weights, nothing at all) is named in one :class:`ModelLoadError`
with the file, instead of a safetensors, JSON or hub traceback deep inside a library.
"""

from pathlib import Path

from peft import PeftConfig
from pydantic import BaseModel, ConfigDict

from sentiment_lora.paths import ADAPTER_CONFIG, ADAPTER_WEIGHTS, METADATA_FILE
from sentiment_lora.training.ensemble import (
    ENSEMBLE_FILE,
    MEMBERS_DIR,
    is_ensemble_dir,
    read_ensemble,
)
from sentiment_lora.training.modeling import (
    DAMAGED_HINT,
    ModelLoadError,
    ModelMetadata,
    check_weights,
    read_json_object,
    read_model_metadata,
)
from sentiment_lora.training.portable_base import (
    BaseReference,
    check_base_name,
    read_adapter_base,
)


class ModelDirectory(BaseModel):
    """A model directory whose files passed :func:`check_model_dir`."""

    model_config = ConfigDict(frozen=True)
    path: Path
    metadata: ModelMetadata
    base: BaseReference


def _check_is_model_dir(path: Path) -> None:
    if not path.exists():
        raise ModelLoadError(f"model-dir: {path} does not exist")
    if not path.is_dir():
        raise ModelLoadError(f"model-dir: {path} is a file, not a model directory")
    if is_ensemble_dir(path):
        names = ", ".join(m.name for m in read_ensemble(path).members)
        raise ModelLoadError(
            f"model-dir: {path} is an ensemble ({ENSEMBLE_FILE}: the mean of {names}); this "
            f"takes one model: use one of its members in {path / MEMBERS_DIR}"
        )
    try:
        empty = not any(path.iterdir())
    except OSError as exc:
        raise ModelLoadError(f"model-dir: {path} cannot be read ({exc.strerror})") from None
    if empty:
        raise ModelLoadError(
            f"model-dir: {path} is empty; a model directory holds {METADATA_FILE}, "
            f"{ADAPTER_CONFIG} and {ADAPTER_WEIGHTS}"
        )


def _check_peft_config(path: Path) -> None:
    try:
        PeftConfig.from_pretrained(str(path))
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(
            f"{path / ADAPTER_CONFIG}: not a PEFT adapter config ({exc}); {DAMAGED_HINT}"
        ) from None


def check_model_dir(model_dir: Path | str) -> ModelDirectory:
    """Check everything a saved model directory needs before it is loaded.

    In order: it is a non-empty directory; every ``*.json`` in it is a JSON object;
    :data:`METADATA_FILE` and ``adapter_config.json`` hold what loading needs; both name a
    base model that can be loaded as written (see :func:`check_base_name`); the adapter's
    weights are ``adapter_model.safetensors`` with a valid header (a ``.bin`` is never used).
    Raises :class:`ModelLoadError` naming the directory or the file.
    """
    path = Path(model_dir)
    _check_is_model_dir(path)
    for json_file in sorted(path.glob("*.json")):
        read_json_object(json_file)
    metadata = read_model_metadata(path)
    check_base_name(metadata.base_model, where=f"{path / METADATA_FILE}: base_model")
    base = read_adapter_base(path)
    check_base_name(base.name_or_path, where=f"{path / ADAPTER_CONFIG}: base_model_name_or_path")
    _check_peft_config(path)
    check_weights(path, required=ADAPTER_WEIGHTS)
    return ModelDirectory(path=path, metadata=metadata, base=base)
