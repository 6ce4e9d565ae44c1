"""The manifest of a versioned data directory: every recorded version of ``train.tsv`` (and of
``holdout.tsv``), oldest first, in ``data_dir/versions/manifest.json``.

:mod:`.data_versions` writes it; this module reads it and names a version's files.
"""

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sentiment_lora.errors import UserError

VERSIONS_DIR = "versions"
MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1

Origin = Literal["original", "data-add", "outside-edit"]


class DataVersionError(UserError):
    """The data directory cannot take new rows: a link, read-only, unwritable, or a broken
    manifest."""


class DataVersion(BaseModel):
    """One recorded version of ``train.tsv``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    version: str = Field(pattern=r"^v\d{4,}$", description="v0001, v0002, ... in order")
    time: str = Field(description="when it was recorded (ISO 8601, UTC)")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the file's bytes")
    rows: int = Field(ge=1, description="data rows")
    origin: Origin = Field(description="original file, `data add`, or changed by other means")
    rows_added: int = Field(0, ge=0, description="rows appended by this version")
    rows_relabelled: int = Field(0, ge=0, description="rows whose label this version changed")
    source: str | None = Field(None, description="name of the file the rows came from")
    source_sha256: str | None = Field(None, description="SHA-256 of that file")
    holdout_sha256: str | None = Field(
        None, pattern=r"^[0-9a-f]{64}$", description="SHA-256 of holdout.tsv (None: no holdout)"
    )
    holdout_rows: int = Field(0, ge=0, description="rows of holdout.tsv")
    rows_held_out: int = Field(0, ge=0, description="rows this version moved to holdout.tsv")

    @property
    def file(self) -> str:
        """Where the version's bytes are kept, relative to the data directory."""
        return f"{VERSIONS_DIR}/train.{self.version}.tsv"

    @property
    def holdout_file(self) -> str | None:
        """Where the version's holdout.tsv bytes are kept (None without a holdout)."""
        return f"{VERSIONS_DIR}/holdout.{self.version}.tsv" if self.holdout_sha256 else None


class DataManifest(BaseModel):
    """Every recorded version of a data directory's ``train.tsv``, oldest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: int = SCHEMA_VERSION
    versions: tuple[DataVersion, ...] = ()

    @property
    def latest(self) -> DataVersion | None:
        """The newest version, or None when nothing is recorded."""
        return self.versions[-1] if self.versions else None


def manifest_path(data_dir: Path | str) -> Path:
    """``<data_dir>/versions/manifest.json``."""
    return Path(data_dir) / VERSIONS_DIR / MANIFEST_FILE


def read_manifest(data_dir: Path | str) -> DataManifest:
    """The manifest of ``data_dir`` (empty when none is recorded yet)."""
    path = manifest_path(data_dir)
    if not path.exists() and not path.is_symlink():
        return DataManifest()
    fix = "restore it from a backup or version control (it lists the versions in versions/)"
    if not path.is_file():
        raise DataVersionError(f"{path}: is not a file: {fix}")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataVersionError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        return DataManifest.model_validate_json(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        detail = f"{where}: {error['msg']}" if where else error["msg"]
        raise DataVersionError(f"{path}: not a data manifest ({detail}): {fix}") from None


def find_version(data_dir: Path | str, sha256: str) -> DataVersion | None:
    """The recorded version whose SHA-256 is ``sha256`` or starts with it (8+ hex digits).

    This names the data of any past run from the hash in its results
    (``environment.data_hashes["train.tsv"]``). Raises ValueError on an ambiguous prefix.
    """
    if len(sha256) < 8:
        raise ValueError(f"sha256: give at least 8 hex digits (got {sha256!r})")
    matches = {v.sha256: v for v in read_manifest(data_dir).versions if v.sha256.startswith(sha256)}
    if len(matches) > 1:
        raise ValueError(f"sha256: {sha256!r} matches {len(matches)} versions")
    return next(iter(matches.values()), None)


def version_path(data_dir: Path | str, version: DataVersion) -> Path:
    """The file holding ``version``'s bytes."""
    return Path(data_dir) / version.file
