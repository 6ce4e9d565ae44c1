"""SST-2 loading, validation, preprocessing and splitting.

The local format is GLUE's: UTF-8 TSV, header ``sentence<TAB>label``, no quoting. Every row is
validated before anything else runs; a bad file raises :class:`DataFormatError` naming the file,
the line and the reason.
"""

import functools
import hashlib
import logging
import re
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.model_selection import train_test_split

from sentiment_lora.config import DataConfig
from sentiment_lora.errors import UserError
from sentiment_lora.io import atomic_write_text

log = logging.getLogger(__name__)

LABEL_NAMES: tuple[str, str] = ("negative", "positive")
# A sentence is predicted positive when P(positive) reaches this (every model, every analysis).
DECISION_THRESHOLD = 0.5
MAX_SENTENCE_CHARS = 5_000  # SST-2's longest sentence has ~270 characters
SPLIT_FILES: dict[str, str] = {"train": "train.tsv", "test": "dev.tsv"}
_WS = re.compile(r"\s+")


def _short(text: str, limit: int = 60) -> str:
    """``repr`` of ``text``, cut to ``limit`` characters (error messages stay one line)."""
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(text):,} chars)"


class DataFormatError(UserError):
    """A data file is missing or malformed; names the file and, where known, the line."""

    def __init__(self, path: Path | str, reason: str, line: int | None = None) -> None:
        self.path, self.line, self.reason = str(path), line, reason
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")


class PreparedData(BaseModel):
    """What :func:`prepare_sst2` wrote and what it found on the way."""

    model_config = ConfigDict(frozen=True)

    train_path: str
    validation_path: str
    test_path: str
    fingerprint: str
    source: str
    source_hashes: dict[str, str]
    counts: dict[str, int]
    class_balance: dict[str, dict[str, int]]
    test_train_overlap: int


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes, computed once per process while the file is unchanged
    (same path, size and modification time)."""
    path = Path(path).resolve()
    stat = path.stat()
    return _sha256(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _sha256(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_glue_tsv(path: Path | str) -> pd.DataFrame:
    """Read and validate one GLUE-format SST-2 file into ``sentence``/``label`` columns.

    Accepts a UTF-8 BOM and CRLF line endings. Raises :class:`DataFormatError` on a missing or
    empty file, a wrong header, a row without exactly two tab-separated fields, a label other than
    0 or 1, an empty sentence, or bytes that are not UTF-8.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFormatError(path, "file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataFormatError(path, f"invalid UTF-8 at byte {exc.start}", line) from None
    lines = text.splitlines()
    header = lines[0].strip().split("\t")
    if header != ["sentence", "label"]:
        raise DataFormatError(
            path, f"header must be 'sentence<TAB>label', got {_short(lines[0])}", 1
        )
    sentences: list[str] = []
    labels: list[int] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue  # a trailing blank line is not a row
        fields = line.split("\t")
        if len(fields) != 2:
            raise DataFormatError(
                path, f"expected 2 tab-separated fields, got {len(fields)}", number
            )
        sentence, label = fields
        if label.strip() not in ("0", "1"):
            raise DataFormatError(path, f"label must be 0 or 1, got {_short(label)}", number)
        if not sentence.strip():
            raise DataFormatError(path, "empty sentence", number)
        if len(sentence) > MAX_SENTENCE_CHARS:
            raise DataFormatError(
                path,
                f"sentence of {len(sentence):,} characters (limit {MAX_SENTENCE_CHARS:,}): "
                "is the file really GLUE TSV?",
                number,
            )
        sentences.append(sentence)
        labels.append(int(label))
    if not sentences:
        raise DataFormatError(path, "no data rows after the header")
    return pd.DataFrame({"sentence": sentences, "label": labels})


def load_sst2_local(data_dir: Path | str) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Read ``train.tsv`` and ``dev.tsv`` from ``data_dir``; returns frames and file hashes."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise DataFormatError(data_dir, "data directory not found")
    frames = {split: read_glue_tsv(data_dir / name) for split, name in SPLIT_FILES.items()}
    hashes = {name: sha256_file(data_dir / name) for name in SPLIT_FILES.values()}
    return frames, hashes


def load_sst2_hub() -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Load ``glue/sst2`` through `datasets` (needs the Hugging Face hub)."""
    from datasets import load_dataset

    ds = load_dataset("glue", "sst2")
    frames = {
        "train": ds["train"].to_pandas()[["sentence", "label"]],
        "test": ds["validation"].to_pandas()[["sentence", "label"]],
    }
    hashes = {
        split: hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()
        for split, frame in frames.items()
    }
    return frames, hashes


def source_fingerprint(config: DataConfig) -> dict[str, str]:
    """Content hashes of the source files (cheap; used in cache keys before any parsing)."""
    if config.source == "hub":
        return {"hub": "glue/sst2"}
    data_dir = Path(config.data_dir)
    hashes = {}
    for name in SPLIT_FILES.values():
        path = data_dir / name
        if not path.is_file():
            raise DataFormatError(path, "file not found")
        hashes[name] = sha256_file(path)
    return hashes


def normalize_whitespace(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return _WS.sub(" ", text).strip()


def filter_min_words(frame: pd.DataFrame, min_words: int) -> pd.DataFrame:
    """Rows whose sentence has at least ``min_words`` whitespace-separated words."""
    keep = frame["sentence"].str.split().str.len() >= min_words
    return frame[keep].reset_index(drop=True)


def split_train_validation(
    frame: pd.DataFrame, *, fraction: float, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified, seeded split of ``frame`` into (train, validation)."""
    train, validation = train_test_split(
        frame, test_size=fraction, random_state=seed, stratify=frame["label"]
    )
    return train.reset_index(drop=True), validation.reset_index(drop=True)


def cap_rows(frame: pd.DataFrame, limit: int | None, *, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows, stratified by label and seeded; all rows if ``limit`` is None."""
    if limit is None or limit >= len(frame):
        return frame
    kept, _ = train_test_split(frame, train_size=limit, random_state=seed, stratify=frame["label"])
    return kept.reset_index(drop=True)


def class_balance(frame: pd.DataFrame) -> dict[str, int]:
    """Row count per label name."""
    counts = frame["label"].value_counts()
    return {name: int(counts.get(i, 0)) for i, name in enumerate(LABEL_NAMES)}


def _fingerprint(config: DataConfig, hashes: dict[str, str]) -> str:
    payload = config.model_dump_json(exclude={"data_dir"}) + repr(sorted(hashes.items()))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def prepare_sst2(config: DataConfig, out_dir: Path | str) -> PreparedData:
    """Load, validate, clean and split SST-2; write parquet splits into ``out_dir``.

    Train: whitespace normalised, rows under ``min_words`` dropped, then a stratified validation
    split and optional caps. Test: GLUE dev, whitespace normalised but never filtered.
    """
    frames, hashes = load_sst2_hub() if config.source == "hub" else load_sst2_local(config.data_dir)
    counts: dict[str, int] = {"train_raw": len(frames["train"]), "test_raw": len(frames["test"])}

    train = frames["train"].assign(sentence=frames["train"]["sentence"].map(normalize_whitespace))
    test = frames["test"].assign(sentence=frames["test"]["sentence"].map(normalize_whitespace))
    filtered = filter_min_words(train, config.min_words)
    counts["removed_min_words"] = len(train) - len(filtered)

    train, validation = split_train_validation(
        filtered, fraction=config.validation_fraction, seed=config.seed
    )
    counts["train_after_split"], counts["validation_after_split"] = len(train), len(validation)
    train = cap_rows(train, config.max_train_samples, seed=config.seed)
    validation = cap_rows(validation, config.max_validation_samples, seed=config.seed)
    test = cap_rows(test, config.max_test_samples, seed=config.seed)
    counts["removed_by_train_cap"] = counts["train_after_split"] - len(train)
    counts["removed_by_validation_cap"] = counts["validation_after_split"] - len(validation)
    counts.update(train=len(train), validation=len(validation), test=len(test))

    overlap = int(
        test["sentence"].isin(set(frames["train"]["sentence"].map(normalize_whitespace))).sum()
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, frame in (("train", train), ("validation", validation), ("test", test)):
        paths[split] = out_dir / f"{split}.parquet"
        tmp = paths[split].with_suffix(".parquet.tmp")
        frame.to_parquet(tmp, index=False)
        tmp.replace(paths[split])
    prepared = PreparedData(
        train_path=str(paths["train"]),
        validation_path=str(paths["validation"]),
        test_path=str(paths["test"]),
        fingerprint=_fingerprint(config, hashes),
        source=config.source if config.source == "hub" else str(Path(config.data_dir).resolve()),
        source_hashes=hashes,
        counts=counts,
        class_balance={
            "train": class_balance(train),
            "validation": class_balance(validation),
            "test": class_balance(test),
        },
        test_train_overlap=overlap,
    )
    atomic_write_text(out_dir / "prepared.json", prepared.model_dump_json(indent=2))
    log.info(
        "prepared SST-2: %d train, %d validation, %d test rows (%d removed by min_words=%d)",
        len(train),
        len(validation),
        len(test),
        counts["removed_min_words"],
        config.min_words,
    )
    return prepared


def read_split(path: Path | str) -> pd.DataFrame:
    """Read a split written by :func:`prepare_sst2`."""
    return pd.read_parquet(path)


def write_glue_tsv(frame: pd.DataFrame, path: Path | str) -> Path:
    """Write a ``sentence``/``label`` frame in GLUE's TSV format (atomically)."""
    bad = frame["sentence"].str.contains("[\t\n\r]", regex=True)
    if bad.any():
        raise ValueError(f"sentence at row {int(bad.idxmax())} contains a tab or newline")
    lines = ["sentence\tlabel"] + [
        f"{s}\t{int(y)}" for s, y in zip(frame["sentence"], frame["label"], strict=True)
    ]
    return atomic_write_text(path, "\n".join(lines) + "\n")


def download_sst2(out_dir: Path | str) -> Path:
    """Fetch glue/sst2 from the hub and store it as ``train.tsv``/``dev.tsv`` in ``out_dir``."""
    frames, _ = load_sst2_hub()
    out_dir = Path(out_dir)
    for split, name in SPLIT_FILES.items():
        write_glue_tsv(frames[split], out_dir / name)
    return out_dir
