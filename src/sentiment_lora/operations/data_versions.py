"""Versions of a data directory's ``train.tsv``: append new labelled rows, keep every version.

:func:`add_rows` validates a GLUE TSV file with the pipeline's rules, drops the rows that
``train.tsv`` already holds (and repeats within the file), appends the rest and records the
new version. Two rows are the same when their normalised sentences (whitespace collapsed,
lowercased: the data snapshot's form) and their labels are equal. A sentence already in
``train.tsv`` with the other label is a conflict: refused, naming both lines, unless
``allow_relabel``, which rewrites the label of those ``train.tsv`` lines in place. A sentence
given twice in the file with both labels is always refused.

Layout of a versioned data directory::

    data_dir/train.tsv                      the current version: the file the pipeline reads
    data_dir/versions/train.v0001.tsv       the bytes of every recorded version
    data_dir/versions/manifest.json         DataManifest: every version, oldest first
    data_dir/.lock                          held by writers (see operations.locks)

The first addition records ``train.tsv`` as found (v0001, origin ``original``) and the result
as v0002. A ``train.tsv`` changed by other means since its last version is recorded first (origin
``outside-edit``). The existing bytes of ``train.tsv`` are kept exactly (BOM, line endings, a
missing final newline gets one); new lines use the file's line ending. Every write is atomic
and happens under the directory's exclusive lock, so concurrent additions serialise. A
directory that is a symbolic link, is reached through one, or is read-only (no write bit, even
for root) is refused before anything is written: it is likely a shared copy.
"""

import codecs
import hashlib
import os
from pathlib import Path
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sentiment_lora.errors import UserError
from sentiment_lora.io import atomic_write_bytes, atomic_write_text
from sentiment_lora.operations.ledger import now_utc
from sentiment_lora.operations.locks import registry_lock
from sentiment_lora.training.data import SPLIT_FILES, normalize_whitespace
from sentiment_lora.training.glue_tsv import (
    DataFormatError,
    line_content,
    read_glue_tsv,
    split_lines,
)

TRAIN_FILE = SPLIT_FILES["train"]  # "train.tsv"
VERSIONS_DIR = "versions"
MANIFEST_FILE = "manifest.json"
SCHEMA_VERSION = 1
LOCK_TIMEOUT = 120.0  # seconds to wait for another addition to the same directory

Origin = Literal["original", "data-add", "outside-edit"]


def normalize_sentence(sentence: str) -> str:
    """Whitespace collapsed, ends stripped, lowercased: the data snapshot's form.

    Kept here, not imported from ``evidence.data_snapshot``, which loads torch (seconds); a
    test checks that both agree.
    """
    return normalize_whitespace(sentence).lower()


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

    @property
    def file(self) -> str:
        """Where the version's bytes are kept, relative to the data directory."""
        return f"{VERSIONS_DIR}/train.{self.version}.tsv"


class DataManifest(BaseModel):
    """Every recorded version of a data directory's ``train.tsv``, oldest first."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    schema_version: int = SCHEMA_VERSION
    versions: tuple[DataVersion, ...] = ()

    @property
    def latest(self) -> DataVersion | None:
        """The newest version, or None when nothing is recorded."""
        return self.versions[-1] if self.versions else None


class DataUpdate(BaseModel):
    """What :func:`add_rows` changed (or, in a dry run, would change)."""

    model_config = ConfigDict(frozen=True)
    data_dir: str  # absolute
    source: str  # the file of new rows, as given
    rows_read: int
    duplicates_in_train: int  # rows train.tsv already held
    duplicates_in_file: int  # rows repeated within the file
    rows_added: int
    rows_relabelled: int  # train.tsv rows whose label changed (allow_relabel)
    rows_before: int
    rows_after: int
    previous: DataVersion  # train.tsv before (its version, or the one it would be given)
    version: DataVersion | None  # train.tsv after; None when nothing changes
    recorded: tuple[DataVersion, ...]  # appended to the manifest (or would be, in a dry run)
    dry_run: bool

    @property
    def duplicates_dropped(self) -> int:
        """Rows of the file not added because they were already there."""
        return self.duplicates_in_train + self.duplicates_in_file


class _Row(NamedTuple):
    index: int  # position in the file's lines (the header is 0)
    sentence: str
    label: int

    @property
    def line(self) -> int:
        return self.index + 1


class _Plan(NamedTuple):
    update: DataUpdate
    manifest: DataManifest
    archives: dict[str, bytes]  # version file (relative) -> bytes to write
    train_bytes: bytes
    old_train_bytes: bytes


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


def _writable(path: Path) -> bool:
    # os.access says yes to root for any mode; a file with no write bit counts as read-only.
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def check_data_dir(data_dir: Path | str) -> Path:
    """Refuse a directory :func:`add_rows` must not write into; returns it as a Path.

    Raises :class:`DataVersionError` when ``data_dir`` is missing or not a directory, is or is
    reached through a symbolic link, or when it, its ``train.tsv`` or its versions are links,
    read-only or of the wrong kind (``versions`` a file, the manifest a directory).
    """
    data_dir = Path(data_dir)
    hint = f"copy it first (cp -rL {data_dir} DEST && chmod -R u+w DEST) and add to the copy"
    real = data_dir.resolve()  # the kernel's reading: links first, then ".."
    if data_dir.is_symlink() or real != Path(os.path.normpath(os.path.abspath(data_dir))):
        raise DataVersionError(
            f"{data_dir}: is a symbolic link or reached through one (to {real}); "
            f"it may be shared data that must not change: {hint}"
        )
    if not data_dir.exists():
        raise DataVersionError(f"{data_dir}: data directory not found")
    if not data_dir.is_dir():
        raise DataVersionError(f"{data_dir}: is not a directory (give the one holding train.tsv)")
    versions = data_dir / VERSIONS_DIR
    for path in (data_dir, data_dir / TRAIN_FILE, versions, versions / MANIFEST_FILE):
        if path.is_symlink():
            raise DataVersionError(f"{path}: is a symbolic link: {hint}")
        if path.exists() and not _writable(path):
            raise DataVersionError(f"{path}: is read-only: {hint}")
    if versions.exists() and not versions.is_dir():
        raise DataVersionError(f"{versions}: is not a directory: move it aside")
    return data_dir


def _lines(raw: bytes) -> list[str]:
    """The lines of a validated GLUE file, with their endings, numbered as read_glue_tsv does."""
    return split_lines(raw.decode("utf-8-sig"))


def _rows(lines: list[str]) -> list[_Row]:
    rows = []
    for index, line in enumerate(lines[1:], start=1):
        content = line_content(line)
        if content.strip():  # read_glue_tsv skips blank lines too
            sentence, label = content.split("\t")
            rows.append(_Row(index, sentence, int(label)))
    return rows


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class _Match(NamedTuple):
    added: list[_Row]  # rows of the file that train.tsv lacks
    relabel: dict[str, int]  # normalised sentence -> its new label
    in_train: int
    in_file: int


def _match_rows(
    existing: list[_Row], new_rows: list[_Row], *, train: Path, new_file: Path, allow_relabel: bool
) -> _Match:
    """Sort the file's rows into new ones, relabels and duplicates; refuse conflicts."""
    labels: dict[str, dict[int, _Row]] = {}  # normalised sentence -> label -> first row
    for row in existing:
        labels.setdefault(normalize_sentence(row.sentence), {}).setdefault(row.label, row)
    seen: dict[str, _Row] = {}  # normalised sentence -> first row of the file
    match = _Match([], {}, 0, 0)
    in_train = in_file = 0
    for row in new_rows:
        key = normalize_sentence(row.sentence)
        if key in seen:
            if seen[key].label != row.label:
                raise DataFormatError(
                    new_file,
                    f"same sentence as line {seen[key].line} with the other label",
                    row.line,
                )
            in_file += 1
            continue
        seen[key] = row
        known = labels.get(key, {})
        if row.label in known:
            in_train += 1
        elif not known:
            match.added.append(row)
        elif allow_relabel:
            match.relabel[key] = row.label
        else:
            other = next(iter(known.values()))
            raise DataFormatError(
                new_file,
                f"sentence already in {train}:{other.line} with label {other.label}; "
                "pass --allow-relabel to change its label there",
                row.line,
            )
    return match._replace(in_train=in_train, in_file=in_file)


def _new_bytes(raw: bytes, existing: list[_Row], match: _Match) -> tuple[bytes, int]:
    """``train.tsv``'s new bytes and the number of relabelled rows.

    The existing bytes are kept exactly, but for the label field of relabelled lines; new lines
    use the header's line ending; a last line without one gets one.
    """
    lines = _lines(raw)
    changed = [
        r for r in existing if match.relabel.get(normalize_sentence(r.sentence), r.label) != r.label
    ]
    body = raw
    if changed:
        for row in changed:
            ending = lines[row.index][len(line_content(lines[row.index])) :]
            new_label = match.relabel[normalize_sentence(row.sentence)]
            lines[row.index] = f"{row.sentence}\t{new_label}{ending}"
        bom = codecs.BOM_UTF8 if raw.startswith(codecs.BOM_UTF8) else b""
        body = bom + "".join(lines).encode("utf-8")
    eol = lines[0][len(line_content(lines[0])) :] or "\n"
    if match.added and line_content(lines[-1]) == lines[-1]:
        body += eol.encode("utf-8")
    body += "".join(f"{r.sentence}\t{r.label}{eol}" for r in match.added).encode("utf-8")
    return body, len(changed)


def _plan(
    data_dir: Path, new_file: Path, new_rows: list[_Row], new_raw: bytes, allow_relabel: bool
) -> _Plan:
    """Read ``train.tsv`` and the manifest; work out the new bytes and versions."""
    train = data_dir / TRAIN_FILE
    read_glue_tsv(train)  # the same rules as the pipeline
    raw = train.read_bytes()
    existing = _rows(_lines(raw))
    match = _match_rows(
        existing, new_rows, train=train, new_file=new_file, allow_relabel=allow_relabel
    )
    body, relabelled = _new_bytes(raw, existing, match)

    manifest = read_manifest(data_dir)
    latest = manifest.latest
    previous = latest
    if latest is None or latest.sha256 != _sha256(raw):  # first addition, or edited by hand
        previous = DataVersion(
            version=f"v{len(manifest.versions) + 1:04d}",
            time=now_utc(),
            sha256=_sha256(raw),
            rows=len(existing),
            origin="original" if latest is None else "outside-edit",
        )
    recorded: list[DataVersion] = []
    archives: dict[str, bytes] = {}  # version file -> bytes to write
    version = None
    if body != raw:
        if previous is not latest:
            recorded.append(previous)
        if previous is not latest or not (data_dir / previous.file).is_file():
            archives[previous.file] = raw
        version = DataVersion(
            version=f"v{len(manifest.versions) + len(recorded) + 1:04d}",
            time=now_utc(),
            sha256=_sha256(body),
            rows=len(existing) + len(match.added),
            origin="data-add",
            rows_added=len(match.added),
            rows_relabelled=relabelled,
            source=new_file.name,
            source_sha256=_sha256(new_raw),
        )
        recorded.append(version)
        archives[version.file] = body
    update = DataUpdate(
        data_dir=str(data_dir.resolve()),
        source=str(new_file),
        rows_read=len(new_rows),
        duplicates_in_train=match.in_train,
        duplicates_in_file=match.in_file,
        rows_added=len(match.added),
        rows_relabelled=relabelled,
        rows_before=len(existing),
        rows_after=len(existing) + len(match.added),
        previous=previous,
        version=version,
        recorded=tuple(recorded),
        dry_run=False,
    )
    new_manifest = DataManifest(versions=(*manifest.versions, *recorded))
    return _Plan(update, new_manifest, archives, body, raw)


def add_rows(
    data_dir: Path | str,
    new_file: Path | str,
    *,
    allow_relabel: bool = False,
    dry_run: bool = False,
) -> DataUpdate:
    """Append the new rows of ``new_file`` to ``data_dir/train.tsv`` and record the version.

    Raises :class:`~sentiment_lora.training.data.DataFormatError` (``file:line: reason``) for a
    malformed file or a label conflict, and :class:`DataVersionError` for a directory that must
    not be written (see :func:`check_data_dir`) or a write that fails; ``train.tsv`` and the
    manifest are unchanged then. With ``dry_run`` nothing is written (not even the lock file)
    and the result says what would change.
    """
    data_dir, new_file = check_data_dir(data_dir), Path(new_file)
    read_glue_tsv(new_file)
    new_raw = new_file.read_bytes()
    new_rows = _rows(_lines(new_raw))
    if dry_run:
        plan = _plan(data_dir, new_file, new_rows, new_raw, allow_relabel)
        return plan.update.model_copy(update={"dry_run": True})
    try:
        with registry_lock(data_dir, timeout=LOCK_TIMEOUT):
            plan = _plan(data_dir, new_file, new_rows, new_raw, allow_relabel)
            if plan.update.version is not None:
                _write(data_dir, plan)
    except TimeoutError:
        raise
    except OSError as exc:
        raise DataVersionError(
            f"{exc.filename or data_dir}: cannot write ({exc.strerror}); train.tsv and its "
            "manifest are unchanged"
        ) from None
    return plan.update


def _write(data_dir: Path, plan: _Plan) -> None:
    """Versions first, then train.tsv, then the manifest; train.tsv is put back if the
    manifest cannot be written (an archived version the manifest does not list is harmless:
    the next addition writes it again)."""
    for name, data in plan.archives.items():
        atomic_write_bytes(data_dir / name, data)
    atomic_write_bytes(data_dir / TRAIN_FILE, plan.train_bytes)
    try:
        atomic_write_text(manifest_path(data_dir), plan.manifest.model_dump_json(indent=2) + "\n")
    except OSError:
        atomic_write_bytes(data_dir / TRAIN_FILE, plan.old_train_bytes)
        raise
