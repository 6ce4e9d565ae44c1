"""Model registry: the champion, every promoted version, and rollback.

Layout of a registry directory::

    champion.json        the current champion: its version's record plus how it became champion
    versions/v0001/      one directory per promotion, numbered in order, never changed afterwards
        model/           the model files
        data_snapshot/   the data the version was trained on (for the next run's data diff)
        record.json      run id, config, test metrics and predictions, why it was promoted
    ledger.jsonl         one line per published run or rollback (:mod:`.ledger`)
    .lock                the writers' lock (:mod:`.locks`)

Promotion stages a version under a hidden name, renames it into place, then rewrites
``champion.json`` (one rename); a rollback only rewrites ``champion.json``. Writers hold the
registry lock; readers need none. Which model becomes champion is decided by
:mod:`sentiment_lora.operations.gate`. A damaged file (truncated JSON, a field of the wrong
type) or a champion whose model is gone raises :class:`RegistryError` naming the file.

The old layout (``champion.json`` without a version, model files in ``champion/``) is read in
place as one version (v0001 in a registry without versions); the next promotion or rollback
migrates it into ``versions/`` and removes ``champion/``.
"""

import os
import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter, ValidationError

from sentiment_lora.errors import UserError, validation_message
from sentiment_lora.io import atomic_write_text
from sentiment_lora.operations.ledger import (
    RollbackLedgerRecord,
    append_record,
    now_utc,
)
from sentiment_lora.operations.locks import registry_lock
from sentiment_lora.paths import DATA_SNAPSHOT_DIR

CHAMPION_FILE = "champion.json"
CHAMPION_MODEL_DIR = "champion"  # the old layout's model directory
VERSIONS_DIR = "versions"
VERSION_MODEL_DIR = "model"
VERSION_RECORD_FILE = "record.json"
VERSION_SNAPSHOT_DIR = DATA_SNAPSHOT_DIR  # the champion's data, for the next run's data diff
LEGACY_REASON = "promoted before the registry kept versions"
_VERSION_NAME = re.compile(r"^v(\d{4,})$")
_JSON_OBJECT = TypeAdapter(dict[str, JsonValue])
_M = TypeVar("_M", bound=BaseModel)
ROLLBACK_COMMAND = "sentiment-lora champion rollback VERSION --reason ..."
_DAMAGED_CHAMPION = f"restore it from a backup, or remove it and run `{ROLLBACK_COMMAND}`"
_DAMAGED_RECORD = "restore it from a backup, or move the version's directory out of the registry"


class RegistryError(UserError):
    """A registry file that cannot be read, or a champion whose model is gone; names the file."""


class ModelSummary(BaseModel):
    """A model as the gate reports it: where it came from and how it did on the test set."""

    model_config = ConfigDict(frozen=True)
    run_id: str
    config_name: str
    model_key: str  # identity of the trained model (hash of its weights); equal = same model
    test_accuracy: float
    test_f1_macro: float
    test_set_hash: str
    promoted_at: str | None = None
    train_data_hash: str | None = None  # sha256 of the training file (None: not recorded)


class ModelRecord(ModelSummary):
    """:class:`ModelSummary` plus the test predictions (and probabilities) the gate compares."""

    predictions: list[int]
    probabilities: list[float] | None = None  # P(positive); None in records of older runs

    def summary(self) -> ModelSummary:
        """The record without its predictions."""
        return ModelSummary.model_validate(
            self.model_dump(exclude={"predictions", "probabilities"})
        )


class ChampionChange(BaseModel):
    """How a version became the champion: promoted by the gate or rolled back to."""

    model_config = ConfigDict(frozen=True)
    cause: Literal["promotion", "rollback"]
    reason: str
    at: str | None  # ISO time (None for an old-layout champion without promoted_at)
    previous_version: str | None = None


class VersionRecord(ModelRecord):
    """A registry version: the model's record, its number, its config and how it became champion.

    ``versions/<version>/record.json`` holds the promotion; ``champion.json`` holds the current
    champion's record with the latest change (a rollback, or the promotion).
    """

    version: str = Field(..., pattern=r"^v\d{4,}$")
    hyperparameters: dict[str, JsonValue] = {}
    became_champion: ChampionChange


def _read_text(path: Path, hint: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RegistryError(f"{path}: not UTF-8 (byte {exc.start}); {hint}") from None
    except OSError as exc:
        raise RegistryError(f"{path}: cannot be read ({exc.strerror or exc}); {hint}") from None


def _read_json(path: Path, hint: str) -> dict:
    """The JSON object in ``path``; RegistryError naming the file otherwise."""
    try:
        return _JSON_OBJECT.validate_json(_read_text(path, hint))
    except ValidationError as exc:
        raise RegistryError(f"{path}: {validation_message(exc)}; {hint}") from None


def _validated(model: type[_M], raw: dict, path: Path, hint: str) -> _M:
    """``raw`` (read from ``path``) as ``model``; RegistryError naming the file and field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise RegistryError(f"{path}: {validation_message(exc)}; {hint}") from None


def _read_champion_json(registry_dir: Path) -> dict | None:
    path = registry_dir / CHAMPION_FILE
    return _read_json(path, _DAMAGED_CHAMPION) if path.exists() else None


def read_champion(registry_dir: Path | str) -> ModelRecord | None:
    """The current champion as the gate compares it, or None if the registry is empty."""
    raw = _read_champion_json(Path(registry_dir))
    if raw is None:
        return None
    return _validated(ModelRecord, raw, Path(registry_dir) / CHAMPION_FILE, _DAMAGED_CHAMPION)


def _version_number(name: str) -> int:
    match = _VERSION_NAME.match(name)
    return int(match.group(1)) if match else 0


def _stored_versions(registry_dir: Path) -> list[VersionRecord]:
    root = registry_dir / VERSIONS_DIR
    if not root.is_dir():
        return []
    records = []
    for path in root.iterdir():
        if not _VERSION_NAME.match(path.name):  # a hidden stage is not a version yet
            continue
        record_file = path / VERSION_RECORD_FILE
        raw = _read_json(record_file, _DAMAGED_RECORD)
        record = _validated(VersionRecord, raw, record_file, _DAMAGED_RECORD)
        if record.version != path.name:
            raise RegistryError(
                f"{record_file}: records version {record.version}, not {path.name}; "
                f"{_DAMAGED_RECORD}"
            )
        records.append(record)
    return sorted(records, key=lambda r: _version_number(r.version))


def _legacy_version(raw: dict, stored: list[VersionRecord], registry_dir: Path) -> VersionRecord:
    """An old-layout champion as a version: the stored one of the same run and model (a
    migration got that far), else the next number."""
    record = _validated(ModelRecord, raw, registry_dir / CHAMPION_FILE, _DAMAGED_CHAMPION)
    for version in stored:
        if (version.run_id, version.model_key) == (record.run_id, record.model_key):
            return version
    number = max((_version_number(v.version) for v in stored), default=0) + 1
    return VersionRecord(
        **record.model_dump(),
        version=f"v{number:04d}",
        became_champion=ChampionChange(
            cause="promotion", reason=LEGACY_REASON, at=record.promoted_at
        ),
    )


def read_champion_version(registry_dir: Path | str) -> VersionRecord | None:
    """The current champion with its version and how it became champion; None if empty."""
    registry_dir = Path(registry_dir)
    raw = _read_champion_json(registry_dir)
    if raw is None:
        return None
    if "version" in raw:
        return _validated(VersionRecord, raw, registry_dir / CHAMPION_FILE, _DAMAGED_CHAMPION)
    return _legacy_version(raw, _stored_versions(registry_dir), registry_dir)


def list_versions(registry_dir: Path | str) -> list[VersionRecord]:
    """Every version of the registry in promotion order, as promoted (an old-layout champion
    included)."""
    registry_dir = Path(registry_dir)
    stored = _stored_versions(registry_dir)
    raw = _read_champion_json(registry_dir)
    if raw is None or "version" in raw:
        return stored
    legacy = _legacy_version(raw, stored, registry_dir)
    return stored if legacy in stored else [*stored, legacy]


def _model_dir(registry_dir: Path, version: str) -> Path:
    stored = registry_dir / VERSIONS_DIR / version
    return stored / VERSION_MODEL_DIR if stored.is_dir() else registry_dir / CHAMPION_MODEL_DIR


def version_model_dir(registry_dir: Path | str, version: str) -> Path:
    """Directory of a version's model files (ValueError naming ``version`` if unknown)."""
    known = [v.version for v in list_versions(registry_dir)]
    if version not in known:
        raise ValueError(
            f"version: unknown version {version!r} in {registry_dir} "
            f"(versions: {', '.join(known) or 'none'})"
        )
    return _model_dir(Path(registry_dir), version)


def champion_model_dir(registry_dir: Path | str) -> Path:
    """Directory of the current champion's model files (may not exist yet).

    Without a ``champion.json`` this is the old layout's ``champion/``.
    """
    registry_dir = Path(registry_dir)
    champion = read_champion_version(registry_dir)
    if champion is None:
        return registry_dir / CHAMPION_MODEL_DIR
    return _model_dir(registry_dir, champion.version)


def _champion_error(
    registry_dir: Path, champion: VersionRecord, problem: str, *, also: str = ""
) -> RegistryError:
    others = [v.version for v in _stored_versions(registry_dir) if v.version != champion.version]
    return RegistryError(
        f"{registry_dir / CHAMPION_FILE}: the champion {champion.version} {problem}; make "
        f"another version champion with `{ROLLBACK_COMMAND}` (versions: "
        f"{', '.join(others) or 'none'}){also}"
    )


def check_champion(registry_dir: Path | str) -> VersionRecord | None:
    """The current champion (None if there is none), checked to be one of the registry's
    versions; RegistryError naming ``champion.json`` otherwise."""
    registry_dir = Path(registry_dir)
    champion = read_champion_version(registry_dir)
    if champion is not None and champion.version not in {
        v.version for v in list_versions(registry_dir)
    }:
        raise _champion_error(registry_dir, champion, f"is not in {registry_dir / VERSIONS_DIR}")
    return champion


def served_model_dir(registry_dir: Path | str) -> Path | None:
    """The champion's model directory, to serve; None when the registry has no champion.

    A champion whose version or model directory is gone (deleted, or a file in its place)
    raises RegistryError naming ``champion.json``: serving another model instead would hide
    that the champion is lost.
    """
    registry_dir = Path(registry_dir)
    champion = check_champion(registry_dir)
    model_dir = champion_model_dir(registry_dir)
    if model_dir.is_dir():
        return model_dir
    if champion is None and not model_dir.exists():
        return None
    problem = "is a file, not a model directory" if model_dir.exists() else "is missing"
    if champion is None:
        raise RegistryError(f"{model_dir}: the old layout's champion model {problem}")
    raise _champion_error(
        registry_dir, champion, f"has no model: {model_dir} {problem}", also=", or --model-dir"
    )


def _install_version(
    registry_dir: Path, record: VersionRecord, model_dir: Path, data_snapshot: Path | None = None
) -> Path:
    """Copy a model (and its run's data snapshot) into ``versions/<version>/`` (staged under a
    hidden name, then renamed)."""
    root = registry_dir / VERSIONS_DIR
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".*.tmp"):  # left by a writer that crashed (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    target = root / record.version
    if target.exists():
        raise FileExistsError(f"{target}: the version exists already")
    stage = root / f".{record.version}.{os.getpid()}.tmp"
    shutil.copytree(model_dir, stage / VERSION_MODEL_DIR)
    if data_snapshot is not None:
        shutil.copytree(data_snapshot, stage / VERSION_SNAPSHOT_DIR)
    atomic_write_text(stage / VERSION_RECORD_FILE, record.model_dump_json(indent=2))
    os.rename(stage, target)
    return target


def _migrate_legacy(registry_dir: Path) -> None:
    """Move an old-layout champion into ``versions/`` (under the lock; a no-op otherwise)."""
    raw = _read_champion_json(registry_dir)
    if raw is None or "version" in raw:
        return
    stored = _stored_versions(registry_dir)
    legacy = _legacy_version(raw, stored, registry_dir)
    if legacy not in stored:
        _install_version(registry_dir, legacy, registry_dir / CHAMPION_MODEL_DIR)
    atomic_write_text(registry_dir / CHAMPION_FILE, legacy.model_dump_json(indent=2))
    shutil.rmtree(registry_dir / CHAMPION_MODEL_DIR, ignore_errors=True)


def promote(
    registry_dir: Path | str,
    record: ModelRecord,
    model_dir: Path | str,
    *,
    hyperparameters: Mapping[str, JsonValue] | None = None,
    reason: str = "promoted by the champion gate",
    data_snapshot: Path | str | None = None,
) -> VersionRecord:
    """Make ``record`` the champion as a new version (under the registry lock).

    The model files (and ``data_snapshot``, the run's data snapshot directory) are copied into
    ``versions/<next version>/`` with the version's record, then ``champion.json`` is
    rewritten. ``hyperparameters`` (the config) and ``reason`` (the gate's) are recorded.
    """
    registry_dir = Path(registry_dir)
    with registry_lock(registry_dir):
        _migrate_legacy(registry_dir)
        previous = read_champion_version(registry_dir)
        number = max((_version_number(v.version) for v in list_versions(registry_dir)), default=0)
        now = now_utc()
        version = VersionRecord(
            **{**record.model_dump(include=set(ModelRecord.model_fields)), "promoted_at": now},
            version=f"v{number + 1:04d}",
            hyperparameters=dict(hyperparameters or {}),
            became_champion=ChampionChange(
                cause="promotion",
                reason=reason,
                at=now,
                previous_version=previous.version if previous else None,
            ),
        )
        snapshot = Path(data_snapshot) if data_snapshot is not None else None
        _install_version(registry_dir, version, Path(model_dir), snapshot)
        atomic_write_text(registry_dir / CHAMPION_FILE, version.model_dump_json(indent=2))
    return version


def rollback(registry_dir: Path | str, version: str, *, reason: str) -> VersionRecord:
    """Make an earlier ``version`` the champion again, and record it in the ledger.

    Only ``champion.json`` is rewritten (one rename); the versions stay as they are. Raises
    ValueError naming ``version`` (unknown, or the champion already) or ``reason`` (empty).
    """
    registry_dir = Path(registry_dir)
    if not reason.strip():
        raise ValueError("reason: must not be empty (say why the champion is rolled back)")
    if not registry_dir.is_dir():
        raise ValueError(f"registry_dir: {registry_dir} is not a directory")
    with registry_lock(registry_dir):
        _migrate_legacy(registry_dir)
        versions = {v.version: v for v in list_versions(registry_dir)}
        if version not in versions:
            raise ValueError(
                f"version: unknown version {version!r} in {registry_dir} "
                f"(versions: {', '.join(versions) or 'none'})"
            )
        if not _model_dir(registry_dir, version).is_dir():
            raise ValueError(
                f"version: {version} has no model directory "
                f"({_model_dir(registry_dir, version)} is missing); pick another version"
            )
        current = read_champion_version(registry_dir)
        if current is not None and current.version == version:
            raise ValueError(f"version: {version} is the champion already")
        change = ChampionChange(
            cause="rollback",
            reason=reason.strip(),
            at=now_utc(),
            previous_version=current.version if current else None,
        )
        champion = versions[version].model_copy(update={"became_champion": change})
        atomic_write_text(registry_dir / CHAMPION_FILE, champion.model_dump_json(indent=2))
        append_record(
            registry_dir,
            RollbackLedgerRecord(
                time=change.at,
                version=version,
                previous_version=change.previous_version,
                reason=change.reason,
            ),
        )
    return champion


def champion_data_snapshot(registry_dir: Path | str) -> Path | None:
    """The data snapshot stored with the current champion's version, if it has one."""
    champion = read_champion_version(registry_dir)
    if champion is None:
        return None
    path = Path(registry_dir) / VERSIONS_DIR / champion.version / VERSION_SNAPSHOT_DIR
    return path if path.is_dir() else None
