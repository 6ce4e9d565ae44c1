"""A compact snapshot of a run's data, stored beside the run so the next run can say what changed.

Per split (the source ``train.tsv`` and ``dev.tsv``, and the training split actually used) the
snapshot keeps counts, class balance, sentence-length quantiles and top terms in a small JSON
model, and three parquet files: one row per data row (a content hash of the normalised
sentence, its label and its length in words), a bounded seeded sample of sentences, and the
vocabulary with counts. Sentences are normalised by collapsing whitespace and lowercasing
before hashing, so an edit that only changes spacing or case is not a change.

Layout of a stored snapshot (``write_snapshot(directory, ...)``)::

    directory/snapshot.json                 DataSnapshot
    directory/<split>.rows.parquet          hash (uint64), label (int8), words (int16)
    directory/<split>.sample.parquet        sentence, label, hash (at most sample_size rows)
    directory/<split>.vocabulary.parquet    token, count
"""

import hashlib
import io
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from sentiment_lora.evidence.clustering import TERM_PATTERN
from sentiment_lora.io import atomic_write_bytes, atomic_write_text
from sentiment_lora.training.data import (
    LABEL_NAMES,
    SPLIT_FILES,
    normalize_whitespace,
    read_glue_tsv,
    read_split,
)

SNAPSHOT_FILE = "snapshot.json"
SOURCE_TRAIN = SPLIT_FILES["train"]  # "train.tsv": the source file a person edits
SOURCE_TEST = SPLIT_FILES["test"]  # "dev.tsv": the test set
TRAINING = "training"  # the training split actually used (after filtering, split and caps)
SPLITS = (SOURCE_TRAIN, SOURCE_TEST, TRAINING)
SAMPLE_SIZE = 500  # sentences kept per split (semantic drift, examples of removed rows)
N_TOP_TERMS = 20
QUANTILES = (5, 25, 50, 75, 95)  # sentence-length percentiles, in words
SCHEMA_VERSION = 1
_TOKEN = re.compile(TERM_PATTERN)  # the terms of the error clustering: words of >= 2 letters
_ROW_DTYPES = {"hash": "uint64", "label": "int8", "words": "int16"}


class LengthQuantiles(BaseModel):
    """Sentence length in words: percentiles (linear interpolation) and the maximum."""

    model_config = ConfigDict(frozen=True)
    p5: float
    p25: float
    p50: float
    p75: float
    p95: float
    max: int


class TermCount(BaseModel):
    """A term and how often it occurs in the split."""

    model_config = ConfigDict(frozen=True)
    term: str
    count: int


class SplitSnapshot(BaseModel):
    """One split: counts and summaries, and the names of its files in the snapshot directory."""

    model_config = ConfigDict(frozen=True)
    rows: int
    class_balance: dict[str, int]  # label name -> rows
    length: LengthQuantiles
    top_terms: list[TermCount]  # most frequent non-stop-word terms, most frequent first
    content_hash: str  # SHA-256 of the sorted (hash, label) rows: equal iff same multiset
    sample_size: int  # rows in the sample file
    rows_file: str
    sample_file: str
    vocabulary_file: str


class DataSnapshot(BaseModel):
    """The snapshot of a run's data; the per-row tables live in files named here."""

    model_config = ConfigDict(frozen=True)
    schema_version: int = SCHEMA_VERSION
    seed: int  # of the sentence samples
    splits: dict[str, SplitSnapshot]


@dataclass(frozen=True)
class SplitTables:
    """The per-row tables of one split (a dataclass, not pydantic: it holds DataFrames).

    ``rows``: ``hash`` (uint64: the first 16 hex digits of the SHA-256 of the normalised
    sentence), ``label`` (int8) and ``words`` (int16), one row per data row in input order.
    ``sample``: ``sentence`` (whitespace-normalised, case kept), ``label``, ``hash``.
    ``vocabulary``: ``token``, ``count`` over every row, most frequent first.
    """

    rows: pd.DataFrame
    sample: pd.DataFrame
    vocabulary: pd.DataFrame


# What take_snapshot returns and read_snapshot reads back: the small model and its tables.
Snapshot = tuple[DataSnapshot, Mapping[str, SplitTables]]


def normalize_sentence(sentence: str) -> str:
    """The form that is hashed: whitespace collapsed, ends stripped, lowercased."""
    return normalize_whitespace(sentence).lower()


def sentence_hash(sentence: str) -> int:
    """First 64 bits of the SHA-256 of the normalised sentence, as an unsigned integer.

    ``f"{sentence_hash(s):016x}"`` is the first 16 hex digits of the digest.

    >>> sentence_hash("A  Film ") == sentence_hash("a film")
    True
    >>> f"{sentence_hash('a film'):016x}" == hashlib.sha256(b"a film").hexdigest()[:16]
    True
    """
    digest = hashlib.sha256(normalize_sentence(sentence).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def tokenize(sentence: str) -> list[str]:
    """Lowercased words of at least two letters (the clustering's terms)."""
    return _TOKEN.findall(sentence.lower())


def count_tokens(sentences: Iterable[str]) -> Counter[str]:
    """Token counts over ``sentences`` (see :func:`tokenize`)."""
    counts: Counter[str] = Counter()
    for sentence in sentences:
        counts.update(tokenize(sentence))
    return counts


def row_table(frame: pd.DataFrame) -> pd.DataFrame:
    """``hash``, ``label``, ``words`` for each row of a ``sentence``/``label`` frame."""
    _check_frame(frame)
    normalised = [normalize_whitespace(s) for s in frame["sentence"]]
    return pd.DataFrame(
        {
            "hash": np.fromiter((sentence_hash(s) for s in normalised), np.uint64, len(frame)),
            "label": frame["label"].to_numpy(dtype=np.int8),
            "words": np.fromiter((len(s.split()) for s in normalised), np.int16, len(frame)),
        }
    )


def sample_rows(frame: pd.DataFrame, *, size: int, seed: int) -> pd.DataFrame:
    """A seeded sample of at most ``size`` rows (input order kept), sentences normalised."""
    _check_frame(frame)
    n = min(size, len(frame))
    index = np.sort(np.random.default_rng(seed).choice(len(frame), size=n, replace=False))
    sentences = [normalize_whitespace(s) for s in frame["sentence"].iloc[index]]
    return pd.DataFrame(
        {
            "sentence": sentences,
            "label": frame["label"].iloc[index].to_numpy(dtype=np.int8),
            "hash": np.fromiter((sentence_hash(s) for s in sentences), np.uint64, n),
        }
    )


def content_hash(rows: pd.DataFrame) -> str:
    """SHA-256 of the sorted (hash, label) pairs: order-free identity of a split's content."""
    ordered = rows.sort_values(["hash", "label"], kind="stable")
    pairs = np.column_stack(
        [ordered["hash"].to_numpy(np.uint64), ordered["label"].to_numpy(np.uint64)]
    )
    return hashlib.sha256(np.ascontiguousarray(pairs).tobytes()).hexdigest()


def _check_frame(frame: pd.DataFrame) -> None:
    missing = {"sentence", "label"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks column(s) {sorted(missing)}")
    if not frame["label"].isin((0, 1)).all():
        raise ValueError("label must hold only 0/1")


def _length_quantiles(words: np.ndarray) -> LengthQuantiles:
    if words.size == 0:
        return LengthQuantiles(p5=0, p25=0, p50=0, p75=0, p95=0, max=0)
    values = np.percentile(words, QUANTILES)
    return LengthQuantiles(
        **{f"p{q}": float(v) for q, v in zip(QUANTILES, values, strict=True)},
        max=int(words.max()),
    )


def _top_terms(vocabulary: Counter[str], n_terms: int) -> list[TermCount]:
    terms = sorted(
        ((t, c) for t, c in vocabulary.items() if t not in ENGLISH_STOP_WORDS),
        key=lambda tc: (-tc[1], tc[0]),
    )
    return [TermCount(term=t, count=c) for t, c in terms[:n_terms]]


def _file_stem(split: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", split) or ".." in split:
        raise ValueError(f"split name {split!r} is not a safe file name")
    return split


def take_snapshot(
    frames: Mapping[str, pd.DataFrame],
    *,
    sample_size: int = SAMPLE_SIZE,
    seed: int = 0,
    n_terms: int = N_TOP_TERMS,
) -> tuple[DataSnapshot, dict[str, SplitTables]]:
    """Snapshot ``sentence``/``label`` frames keyed by split name (see :data:`SPLITS`).

    The training split (:data:`TRAINING`) is required; the source files are optional.
    Returns the small model and the per-split tables that :func:`write_snapshot` stores.
    """
    if TRAINING not in frames:
        raise ValueError(f"frames: the training split {TRAINING!r} is required")
    if sample_size < 1:
        raise ValueError(f"sample_size: must be >= 1, got {sample_size}")
    splits: dict[str, SplitSnapshot] = {}
    tables: dict[str, SplitTables] = {}
    for split, frame in frames.items():
        stem = _file_stem(split)
        rows = row_table(frame)
        sample = sample_rows(frame, size=sample_size, seed=seed)
        vocabulary = count_tokens(frame["sentence"])
        counts = np.bincount(rows["label"].to_numpy(), minlength=2)
        splits[split] = SplitSnapshot(
            rows=len(rows),
            class_balance={name: int(counts[i]) for i, name in enumerate(LABEL_NAMES)},
            length=_length_quantiles(rows["words"].to_numpy()),
            top_terms=_top_terms(vocabulary, n_terms),
            content_hash=content_hash(rows),
            sample_size=len(sample),
            rows_file=f"{stem}.rows.parquet",
            sample_file=f"{stem}.sample.parquet",
            vocabulary_file=f"{stem}.vocabulary.parquet",
        )
        ordered = sorted(vocabulary.items(), key=lambda tc: (-tc[1], tc[0]))
        tables[split] = SplitTables(
            rows=rows,
            sample=sample,
            vocabulary=pd.DataFrame(
                {
                    "token": [t for t, _ in ordered],
                    "count": np.array([c for _, c in ordered], dtype=np.int64),
                }
            ),
        )
    return DataSnapshot(seed=seed, splits=splits), tables


def _parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, compression="zstd")
    return buffer.getvalue()


def write_snapshot(
    directory: Path | str, snapshot: DataSnapshot, tables: Mapping[str, SplitTables]
) -> Path:
    """Write the tables, then ``snapshot.json`` (last, so its presence means complete)."""
    if set(tables) != set(snapshot.splits):
        raise ValueError(
            f"tables hold splits {sorted(tables)}, the snapshot {sorted(snapshot.splits)}"
        )
    directory = Path(directory)
    for split, meta in snapshot.splits.items():
        table = tables[split]
        atomic_write_bytes(directory / meta.rows_file, _parquet_bytes(table.rows))
        atomic_write_bytes(directory / meta.sample_file, _parquet_bytes(table.sample))
        atomic_write_bytes(directory / meta.vocabulary_file, _parquet_bytes(table.vocabulary))
    return atomic_write_text(directory / SNAPSHOT_FILE, snapshot.model_dump_json(indent=2) + "\n")


def read_snapshot(directory: Path | str) -> tuple[DataSnapshot, dict[str, SplitTables]]:
    """Read what :func:`write_snapshot` wrote; FileNotFoundError when there is no snapshot."""
    directory = Path(directory)
    path = directory / SNAPSHOT_FILE
    if not path.is_file():
        raise FileNotFoundError(f"no data snapshot: {path}")
    snapshot = DataSnapshot.model_validate_json(path.read_text(encoding="utf-8"))
    if snapshot.schema_version != SCHEMA_VERSION:
        raise ValueError(
            f"{path}: schema_version {snapshot.schema_version}, expected {SCHEMA_VERSION}"
        )
    tables = {}
    for split, meta in snapshot.splits.items():
        rows = pd.read_parquet(directory / _file_stem(meta.rows_file)).astype(_ROW_DTYPES)
        if len(rows) != meta.rows:
            raise ValueError(
                f"{directory / meta.rows_file}: {len(rows)} rows, expected {meta.rows}"
            )
        tables[split] = SplitTables(
            rows=rows,
            sample=pd.read_parquet(directory / _file_stem(meta.sample_file)),
            vocabulary=pd.read_parquet(directory / _file_stem(meta.vocabulary_file)),
        )
    return snapshot, tables


def run_frames(data_dir: Path | str, training_path: Path | str) -> dict[str, pd.DataFrame]:
    """The frames a run snapshots: the source ``train.tsv`` and ``dev.tsv`` in ``data_dir`` and
    the prepared training split at ``training_path`` (``PreparedData.train_path``)."""
    data_dir = Path(data_dir)
    return {
        SOURCE_TRAIN: read_glue_tsv(data_dir / SOURCE_TRAIN),
        SOURCE_TEST: read_glue_tsv(data_dir / SOURCE_TEST),
        TRAINING: read_split(training_path),
    }
