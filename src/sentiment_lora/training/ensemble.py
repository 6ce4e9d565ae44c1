"""The ensemble candidate: the mean P(positive) of the top-k trained configs, as one model.

An ensemble directory holds a copy of each member's model directory under ``members/`` and
:data:`ENSEMBLE_FILE` naming them, so everything that takes a model directory (evaluation,
``predict``, the champion gate, the registry) takes an ensemble too; see
``inference.EnsembleAnalyzer``. Written by hand: scikit-learn's ``VotingClassifier`` wraps
estimators fitted through its own ``fit``, not saved transformer models, and PEFT merges
adapters into one set of weights (``add_weighted_adapter``), which is a different model.
"""

import hashlib
import os
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, ValidationError
from sklearn.metrics import log_loss

from sentiment_lora.errors import validation_message
from sentiment_lora.io import atomic_write_json
from sentiment_lora.paths import (
    ADAPTER_WEIGHTS,
    ENSEMBLE_FILE,
    ENSEMBLE_MEMBERS_DIR,
    FULL_WEIGHTS,
    safe_name,
)
from sentiment_lora.training.data import sha256_file
from sentiment_lora.training.evaluation import Evaluation, ValidationMetrics
from sentiment_lora.training.lora import TrainingResult
from sentiment_lora.training.modeling import DAMAGED_HINT, ModelLoadError, read_json_object
from sentiment_lora.training.selection import selection_key

MEMBERS_DIR = ENSEMBLE_MEMBERS_DIR
# Weight files that identify a model directory, in the order they are looked for.
_WEIGHT_FILES = (ADAPTER_WEIGHTS, FULL_WEIGHTS)


class EnsembleMember(BaseModel):
    """One member: its config name, its directory (relative) and its weights' hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    name: str = Field(..., min_length=1)
    path: str = Field(..., min_length=1)
    weights_sha256: str = Field(..., min_length=64, max_length=64)


class EnsembleSpec(BaseModel):
    """What :data:`ENSEMBLE_FILE` holds."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    method: Literal["mean-probability"] = "mean-probability"
    members: list[EnsembleMember] = Field(..., min_length=2)


def ensemble_name(k: int) -> str:
    """The candidate's name in the grid's results, e.g. ``ensemble-top2``."""
    return f"ensemble-top{k}"


def is_ensemble_dir(model_dir: Path | str) -> bool:
    """True if ``model_dir`` is an ensemble directory (it holds :data:`ENSEMBLE_FILE`)."""
    return (Path(model_dir) / ENSEMBLE_FILE).is_file()


def top_k(results: Sequence[TrainingResult], k: int) -> list[TrainingResult]:
    """The ``k`` best configs by the selection rule, among those trained to their end
    (a config stopped at successive halving's first rung is not a finished model)."""
    finished = [r for r in results if r.stopped_at_epoch is None and not r.members]
    return sorted(finished, key=selection_key, reverse=True)[:k]


def weights_identity(model_dir: Path | str) -> str:
    """SHA-256 that identifies a saved model: its weights, or for an ensemble, its members'.

    A directory without weights gets ``missing:<path>`` (never equal to a real model's).
    """
    path = Path(model_dir)
    if is_ensemble_dir(path):
        spec = read_ensemble(path)
        joined = ",".join(m.weights_sha256 for m in spec.members)
        return hashlib.sha256(f"{spec.method}:{joined}".encode()).hexdigest()
    for name in _WEIGHT_FILES:
        if (path / name).is_file():
            return sha256_file(path / name)
    return f"missing:{path}"


def read_ensemble(model_dir: Path | str) -> EnsembleSpec:
    """The spec of an ensemble directory; ModelLoadError naming the file if it is unusable
    (not a spec, a member outside ``members/``, a member directory that is gone)."""
    path = Path(model_dir) / ENSEMBLE_FILE
    try:
        spec = EnsembleSpec.model_validate(read_json_object(path))
    except ValidationError as exc:
        raise ModelLoadError(f"{path}: {validation_message(exc)}; {DAMAGED_HINT}") from None
    for member in spec.members:
        if not _is_member_path(member.path):
            raise ModelLoadError(
                f"{path}: member {member.name!r}: path {member.path!r} is not "
                f"{MEMBERS_DIR}/<name>; {DAMAGED_HINT}"
            )
        if not (Path(model_dir) / member.path).is_dir():
            raise ModelLoadError(
                f"{path}: member {member.name!r}: {Path(model_dir) / member.path} is missing; "
                f"{DAMAGED_HINT}"
            )
    return spec


def _is_member_path(path: str) -> bool:
    """True for ``members/<name>`` with a plain name (no ``..``, no further directories)."""
    name = path.removeprefix(f"{MEMBERS_DIR}/")
    try:
        return name != path and safe_name(name) == name
    except ValueError:
        return False


def member_dirs(model_dir: Path | str) -> list[Path]:
    """The member model directories of an ensemble directory, in the spec's order."""
    return [Path(model_dir) / m.path for m in read_ensemble(model_dir).members]


def write_ensemble(members: Sequence[TrainingResult], out_dir: Path | str) -> Path:
    """Copy the members' model directories into ``out_dir/members/`` and write the spec.

    Written in a temporary sibling of its own and renamed, so ``out_dir`` is complete or
    absent; a run that finds the same ensemble already written (by a run beside it) keeps it.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
    out = Path(out_dir)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        entries = [_copy_member(member, tmp) for member in members]
        spec = EnsembleSpec(members=entries).model_dump(mode="json")
        atomic_write_json(tmp / ENSEMBLE_FILE, spec)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half-written is left behind
        raise
    if _holds(out, entries):  # written meanwhile by a run beside this one
        shutil.rmtree(tmp)
        return out
    shutil.rmtree(out, ignore_errors=True)  # another or a damaged one
    os.replace(tmp, out)
    return out


def _copy_member(member: TrainingResult, ensemble_dir: Path) -> EnsembleMember:
    name = safe_name(member.config_name, what="config name")
    shutil.copytree(member.adapter_dir, ensemble_dir / MEMBERS_DIR / name)
    return EnsembleMember(
        name=member.config_name,
        path=f"{MEMBERS_DIR}/{name}",
        weights_sha256=weights_identity(ensemble_dir / MEMBERS_DIR / name),
    )


def recorded_hyperparameters(result: TrainingResult) -> dict[str, JsonValue]:
    """What the ledger and the registry record as a candidate's hyperparameters: a config's
    own, or for an ensemble its method and members."""
    if result.members:
        return {"ensemble": "mean-probability", "members": list(result.members)}
    return result.hyperparams.model_dump(mode="json")


def _holds(model_dir: Path, members: list[EnsembleMember]) -> bool:
    """True if ``model_dir`` is an intact ensemble of exactly ``members``."""
    try:
        return is_ensemble_dir(model_dir) and read_ensemble(model_dir).members == members
    except ModelLoadError:
        return False


def ensemble_result(
    members: Sequence[TrainingResult], model_dir: Path | str, validation: Evaluation
) -> TrainingResult:
    """The ensemble as a candidate beside the trained configs: its validation metrics come
    from ``validation`` (the saved ensemble evaluated like any model); its cost is the sum of
    its members' (training time, parameters, and one forward pass per member)."""
    first = members[0]
    seconds = sum(m.train_seconds for m in members)
    examples = sum(m.train_examples for m in members)
    targets = sorted({t for m in members for t in m.target_modules})
    return TrainingResult(
        config_name=ensemble_name(len(members)),
        hyperparams=first.hyperparams,
        adapter_dir=str(model_dir),
        validation_metrics=ValidationMetrics(
            accuracy=validation.metrics.accuracy,
            f1_macro=validation.metrics.f1_macro,
            loss=float(log_loss(validation.labels, validation.prob_positive, labels=[0, 1])),
        ),
        history=[],
        best_epoch=first.best_epoch,
        train_seconds=seconds,
        train_examples=examples,
        examples_per_second=examples / seconds if seconds > 0 else 0.0,
        trainable_parameters=sum(m.trainable_parameters for m in members),
        total_parameters=sum(m.total_parameters for m in members),
        target_modules=targets,
        device=first.device,
        precision=first.precision,
        resumed_from_checkpoint=False,
        members=[m.config_name for m in members],
    )
