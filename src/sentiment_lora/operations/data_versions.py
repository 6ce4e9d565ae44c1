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
    data_dir/holdout.tsv                    a share of every addition, never trained on
    data_dir/versions/holdout.v0002.tsv     holdout.tsv as each version left it
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
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from sentiment_lora.errors import UserError
from sentiment_lora.io import atomic_write_bytes, atomic_write_text
from sentiment_lora.operations.data_manifest import (
    MANIFEST_FILE,
    VERSIONS_DIR,
    DataManifest,
    DataVersion,
    DataVersionError,
    manifest_path,
    read_manifest,
)
from sentiment_lora.operations.holdout_routing import HOLDOUT_FRACTION, route_rows
from sentiment_lora.operations.ledger import now_utc
from sentiment_lora.operations.locks import registry_lock
from sentiment_lora.training.data import SPLIT_FILES, normalize_whitespace
from sentiment_lora.training.glue_tsv import (
    DataFormatError,
    line_content,
    read_glue_tsv,
    split_lines,
)
from sentiment_lora.training.holdout import HOLDOUT_FILE

TRAIN_FILE = SPLIT_FILES["train"]  # "train.tsv"
LOCK_TIMEOUT = 120.0  # seconds to wait for another addition to the same directory


def normalize_sentence(sentence: str) -> str:
    """Whitespace collapsed, ends stripped, lowercased: the data snapshot's form.

    Kept here, not imported from ``evidence.data_snapshot``, which loads torch (seconds); a
    test checks that both agree.
    """
    return normalize_whitespace(sentence).lower()


class DataUpdate(BaseModel):
    """What :func:`add_rows` changed (or, in a dry run, would change)."""

    model_config = ConfigDict(frozen=True)
    data_dir: str  # absolute
    source: str  # the file of new rows, as given
    rows_read: int
    duplicates_in_train: int  # rows train.tsv (or holdout.tsv) already held
    duplicates_in_file: int  # rows repeated within the file
    rows_added: int  # to train.tsv
    rows_held_out: int = 0  # new rows moved to holdout.tsv instead
    holdout_rows_after: int = 0
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
    holdout_bytes: bytes | None  # holdout.tsv after (None: there is none)
    old_holdout_bytes: bytes | None


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
    hint = (
        f"copy it first (`sentiment-lora data init --from {data_dir}` makes the live data "
        "directory) and add to the copy"
    )
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


def _holdout_rows(
    data_dir: Path, new_rows: list[_Row], new_file: Path
) -> tuple[bytes | None, list[_Row], list[_Row]]:
    """``holdout.tsv``'s bytes (None without one), its rows, and the rows of the file it does
    not hold yet; a sentence it holds with the other label is refused (never relabelled)."""
    path = data_dir / HOLDOUT_FILE
    if not path.exists():
        return None, [], new_rows
    read_glue_tsv(path)  # the same rules as train.tsv
    raw = path.read_bytes()
    held = {normalize_sentence(r.sentence): r for r in _rows(_lines(raw))}
    rest = []
    for row in new_rows:
        known = held.get(normalize_sentence(row.sentence))
        if known is None:
            rest.append(row)
        elif known.label != row.label:
            raise DataFormatError(
                new_file,
                f"sentence already in {path}:{known.line} with label {known.label}; the "
                "holdout is never relabelled (edit it by hand if the label is wrong)",
                row.line,
            )
    return raw, list(held.values()), rest


def _append_lines(raw: bytes | None, rows: list[_Row]) -> bytes | None:
    """``raw`` (a GLUE file, or None: a new one with the header) with ``rows`` appended."""
    if not rows:
        return raw
    if raw is None:
        raw = b"sentence\tlabel\n"
    lines = _lines(raw)
    eol = lines[0][len(line_content(lines[0])) :] or "\n"
    if line_content(lines[-1]) == lines[-1]:
        raw += eol.encode("utf-8")
    return raw + "".join(f"{r.sentence}\t{r.label}{eol}" for r in rows).encode("utf-8")


def _plan(
    data_dir: Path,
    new_file: Path,
    new_rows: list[_Row],
    new_raw: bytes,
    allow_relabel: bool,
    holdout_fraction: float,
) -> _Plan:
    """Read ``train.tsv``, ``holdout.tsv`` and the manifest; work out the new bytes and
    versions."""
    train = data_dir / TRAIN_FILE
    read_glue_tsv(train)  # the same rules as the pipeline
    raw = train.read_bytes()
    existing = _rows(_lines(raw))
    old_holdout, held_rows, unheld = _holdout_rows(data_dir, new_rows, new_file)
    match = _match_rows(
        existing, unheld, train=train, new_file=new_file, allow_relabel=allow_relabel
    )
    added, to_holdout = route_rows(
        match.added,
        fraction=holdout_fraction,
        key=lambda r: normalize_sentence(r.sentence),
        label=lambda r: r.label,
    )
    match = match._replace(added=added, in_train=match.in_train + len(new_rows) - len(unheld))
    body, relabelled = _new_bytes(raw, existing, match)
    holdout = _append_lines(old_holdout, to_holdout)
    holdout_sha = _sha256(holdout) if holdout is not None else None

    manifest = read_manifest(data_dir)
    latest = manifest.latest
    previous = latest
    old_holdout_sha = _sha256(old_holdout) if old_holdout is not None else None
    if latest is None or (latest.sha256, latest.holdout_sha256) != (_sha256(raw), old_holdout_sha):
        previous = DataVersion(  # first addition, or edited by hand
            version=f"v{len(manifest.versions) + 1:04d}",
            time=now_utc(),
            sha256=_sha256(raw),
            rows=len(existing),
            origin="original" if latest is None else "outside-edit",
            holdout_sha256=old_holdout_sha,
            holdout_rows=len(held_rows),
        )
    recorded: list[DataVersion] = []
    archives: dict[str, bytes] = {}  # version file -> bytes to write
    version = None
    if body != raw or holdout != old_holdout:
        if previous is not latest:
            recorded.append(previous)
        if previous is not latest or not (data_dir / previous.file).is_file():
            archives[previous.file] = raw
        if previous.holdout_file and old_holdout is not None:
            archives.setdefault(previous.holdout_file, old_holdout)
        version = DataVersion(
            version=f"v{len(manifest.versions) + len(recorded) + 1:04d}",
            time=now_utc(),
            sha256=_sha256(body),
            rows=len(existing) + len(added),
            origin="data-add",
            rows_added=len(added),
            rows_relabelled=relabelled,
            source=new_file.name,
            source_sha256=_sha256(new_raw),
            holdout_sha256=holdout_sha,
            holdout_rows=len(held_rows) + len(to_holdout),
            rows_held_out=len(to_holdout),
        )
        recorded.append(version)
        archives[version.file] = body
        if version.holdout_file and holdout is not None:
            archives[version.holdout_file] = holdout
    update = DataUpdate(
        data_dir=str(data_dir.resolve()),
        source=str(new_file),
        rows_read=len(new_rows),
        duplicates_in_train=match.in_train,
        duplicates_in_file=match.in_file,
        rows_added=len(added),
        rows_held_out=len(to_holdout),
        holdout_rows_after=len(held_rows) + len(to_holdout),
        rows_relabelled=relabelled,
        rows_before=len(existing),
        rows_after=len(existing) + len(added),
        previous=previous,
        version=version,
        recorded=tuple(recorded),
        dry_run=False,
    )
    new_manifest = DataManifest(versions=(*manifest.versions, *recorded))
    return _Plan(update, new_manifest, archives, body, raw, holdout, old_holdout)


def add_rows(
    data_dir: Path | str,
    new_file: Path | str,
    *,
    allow_relabel: bool = False,
    dry_run: bool = False,
    holdout_fraction: float = HOLDOUT_FRACTION,
) -> DataUpdate:
    """Append the new rows of ``new_file`` to ``data_dir/train.tsv`` and record the version;
    a stratified ``holdout_fraction`` of them goes to ``data_dir/holdout.tsv`` instead
    (:mod:`.holdout_routing`), never trained on.

    Raises :class:`~sentiment_lora.training.data.DataFormatError` (``file:line: reason``) for a
    malformed file or a label conflict, and :class:`DataVersionError` for a directory that must
    not be written (see :func:`check_data_dir`) or a write that fails; ``train.tsv``,
    ``holdout.tsv`` and the manifest are unchanged then. With ``dry_run`` nothing is written
    (not even the lock file) and the result says what would change.
    """
    if not 0 <= holdout_fraction < 1:
        raise UserError(
            f"--holdout-fraction: must be at least 0 and below 1, got {holdout_fraction:g}"
        )
    data_dir, new_file = check_data_dir(data_dir), Path(new_file)
    read_glue_tsv(new_file)
    new_raw = new_file.read_bytes()
    new_rows = _rows(_lines(new_raw))
    plan_args = (new_file, new_rows, new_raw, allow_relabel, holdout_fraction)
    if dry_run:
        plan = _plan(data_dir, *plan_args)
        return plan.update.model_copy(update={"dry_run": True})
    try:
        with registry_lock(data_dir, timeout=LOCK_TIMEOUT):
            plan = _plan(data_dir, *plan_args)
            if plan.update.version is not None:
                _write(data_dir, plan)
    except TimeoutError:
        raise
    except OSError as exc:
        raise DataVersionError(
            f"{exc.filename or data_dir}: cannot write ({exc.strerror}); train.tsv, "
            "holdout.tsv and the manifest are unchanged"
        ) from None
    return plan.update


def _write(data_dir: Path, plan: _Plan) -> None:
    """Versions first, then holdout.tsv and train.tsv, then the manifest; both are put back if
    the manifest cannot be written (an archived version the manifest does not list is
    harmless: the next addition writes it again)."""
    for name, data in plan.archives.items():
        atomic_write_bytes(data_dir / name, data)
    holdout = data_dir / HOLDOUT_FILE
    try:
        if plan.holdout_bytes is not None:
            atomic_write_bytes(holdout, plan.holdout_bytes)
        atomic_write_bytes(data_dir / TRAIN_FILE, plan.train_bytes)
        atomic_write_text(manifest_path(data_dir), plan.manifest.model_dump_json(indent=2) + "\n")
    except OSError:
        atomic_write_bytes(data_dir / TRAIN_FILE, plan.old_train_bytes)
        if plan.old_holdout_bytes is not None:
            atomic_write_bytes(holdout, plan.old_holdout_bytes)
        elif plan.holdout_bytes is not None:
            holdout.unlink(missing_ok=True)
        raise
