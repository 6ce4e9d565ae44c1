"""SST-2 loading, preprocessing and splitting.

The local format is GLUE's TSV (see :mod:`sentiment_lora.training.glue_tsv`): every row is
validated before anything else runs. Data that cannot train a classifier (one label, too few
rows for the stratified validation split, nothing left after filtering, a test file with one
label) is refused by :func:`split_sst2` with the counts, before any model is loaded.
"""

import functools
import hashlib
import logging
import re
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from pydantic import BaseModel, ConfigDict
from sklearn.model_selection import train_test_split

from sentiment_lora.config import DataConfig
from sentiment_lora.io import atomic_write_text
from sentiment_lora.training.glue_tsv import DataFormatError, check_data_file, read_glue_tsv
from sentiment_lora.training.sentence_split import (
    count_inside,
    find_roots,
    hold_out,
    phrase_keys,
    validation_size,
)

log = logging.getLogger(__name__)

LABEL_NAMES: tuple[str, str] = ("negative", "positive")
# A sentence is predicted positive when P(positive) reaches this (every model, every analysis).
DECISION_THRESHOLD = 0.5
SPLIT_FILES: dict[str, str] = {"train": "train.tsv", "test": "dev.tsv"}
HUB_SOURCES: dict[str, str] = {"train": "glue/sst2 train", "test": "glue/sst2 validation"}
_WS = re.compile(r"\s+")


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
    test_train_overlap: int  # test sentences equal to a row of the training file
    # Rows that occur, as whole words, inside (or equal to) a row of the training split: the
    # sentence-level split keeps validation at 0 (None: prepared before it was counted).
    validation_inside_train: int | None = None
    test_inside_train: int | None = None


def train_data_hash(prepared: PreparedData) -> str | None:
    """The identity of the training data a run used: the training file's SHA-256 (the hub's
    split hash for ``source="hub"``)."""
    return prepared.source_hashes.get(SPLIT_FILES["train"], prepared.source_hashes.get("train"))


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


def load_sst2_local(data_dir: Path | str) -> tuple[dict[str, pd.DataFrame], dict[str, str]]:
    """Read ``train.tsv`` and ``dev.tsv`` from ``data_dir``; returns frames and file hashes."""
    data_dir = Path(data_dir)
    if not data_dir.exists():
        raise DataFormatError(data_dir, "data directory not found")
    if not data_dir.is_dir():
        raise DataFormatError(data_dir, "is not a directory (give the one holding train.tsv)")
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
    hashes = {}
    for name in SPLIT_FILES.values():
        path = check_data_file(Path(config.data_dir) / name)
        try:
            hashes[name] = sha256_file(path)
        except OSError as exc:
            raise DataFormatError(path, f"cannot be read ({exc.strerror})") from None
    return hashes


def source_names(config: DataConfig) -> dict[str, str]:
    """How error messages name each split's source: the file as configured, or the hub split."""
    if config.source == "hub":
        return dict(HUB_SOURCES)
    return {split: str(Path(config.data_dir) / name) for split, name in SPLIT_FILES.items()}


def normalize_whitespace(text: str) -> str:
    """Collapse runs of whitespace to one space and strip the ends."""
    return _WS.sub(" ", text).strip()


def _normalize(sentences: pd.Series) -> pd.Series:
    """:func:`normalize_whitespace` over a column (vectorised)."""
    return sentences.str.replace(_WS, " ", regex=True).str.strip()


def filter_min_words(frame: pd.DataFrame, min_words: int) -> pd.DataFrame:
    """Rows whose sentence has at least ``min_words`` whitespace-separated words."""
    keep = frame["sentence"].str.split().str.len() >= min_words
    return frame[keep].reset_index(drop=True)


def cap_rows(frame: pd.DataFrame, limit: int | None, *, seed: int) -> pd.DataFrame:
    """At most ``limit`` rows, stratified by label and seeded; all rows if ``limit`` is None.

    Where scikit-learn cannot stratify (a label with one row, or fewer rows dropped than there
    are labels) the rows are a seeded random sample; callers check that both labels remain.
    """
    if limit is None or limit >= len(frame):
        return frame
    counts = frame["label"].value_counts()
    if counts.min() < 2 or min(limit, len(frame) - limit) < len(counts):
        return frame.sample(n=limit, random_state=seed).reset_index(drop=True)
    kept, _ = train_test_split(frame, train_size=limit, random_state=seed, stratify=frame["label"])
    return kept.reset_index(drop=True)


def class_balance(frame: pd.DataFrame) -> dict[str, int]:
    """Row count per label name."""
    counts = frame["label"].value_counts()
    return {name: int(counts.get(i, 0)) for i, name in enumerate(LABEL_NAMES)}


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def _label_counts(frame: pd.DataFrame) -> str:
    """``'12,000 rows of label 1, 0 of label 0'``: the larger count first."""
    counts = frame["label"].value_counts()
    (big, n_big), (small, n_small) = sorted(
        ((label, int(counts.get(label, 0))) for label in (0, 1)), key=lambda item: -item[1]
    )
    return f"{_rows(n_big)} of label {big}, {n_small:,} of label {small}"


def _missing_label(frame: pd.DataFrame) -> int | None:
    """A label (0 or 1) that ``frame`` has no row of, or None."""
    present = set(frame["label"].unique().tolist())
    return next((label for label in (0, 1) if label not in present), None)


class Splits(NamedTuple):
    """The frames :func:`prepare_sst2` writes, and the row counts of each step."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    counts: dict[str, int]


def _check_trainable(train: pd.DataFrame, config: DataConfig, source: str) -> None:
    """Refuse a training file that keeps no rows, or one label, after ``min_words``."""
    words = f"min_words={config.min_words}"
    filtered = filter_min_words(train, config.min_words)
    if filtered.empty:
        raise DataFormatError(
            source,
            f"no rows left after filtering: all {_rows(len(train))} have fewer than {words} "
            "words; lower min_words or add longer sentences",
        )
    if _missing_label(filtered) is not None:
        raise DataFormatError(
            source,
            f"only one class after filtering ({_label_counts(filtered)}; {words}); "
            "the model needs both labels",
        )


def _validation_size(roots: pd.DataFrame, config: DataConfig, source: str) -> int:
    """How many root sentences validation holds; refuses roots too few to split stratified."""
    what = f"root sentences (rows inside no other row): {_label_counts(roots)}"
    if int(roots["label"].value_counts().reindex([0, 1], fill_value=0).min()) < 2:
        raise DataFormatError(
            source,
            f"too few rows for the validation split ({what}): each label needs at least 2 "
            "root sentences, one to train on, one to validate on",
        )
    size = validation_size(
        len(roots), fraction=config.validation_fraction, limit=config.max_validation_samples
    )
    if min(size, len(roots) - size) < 2:
        side = "validation" if size < 2 else "training"
        raise DataFormatError(
            source,
            f"validation_fraction={config.validation_fraction:g} of {_rows(len(roots))} "
            f"({what}) leaves {_rows(min(size, len(roots) - size))} for {side}; each side of "
            "the split needs a row of each label: change validation_fraction or add rows",
        )
    return size


def _require_both_labels(
    frame: pd.DataFrame, before: pd.DataFrame, *, source: str, what: str, fix: str
) -> None:
    missing = _missing_label(frame)
    if missing is not None:
        raise DataFormatError(
            source,
            f"{what} keeps {_rows(len(frame))}, none of label {missing} "
            f"(out of {_label_counts(before)}): {fix}",
        )


def split_sst2(
    frames: dict[str, pd.DataFrame], config: DataConfig, *, sources: dict[str, str]
) -> Splits:
    """Clean, split, filter and cap the raw ``frames`` in memory (what :func:`prepare_sst2`
    writes); cheap enough for the preflight (a few seconds for SST-2).

    Train: whitespace normalised; validation is drawn from its root sentences, stratified and
    seeded (:mod:`sentiment_lora.training.sentence_split`: ``validation_fraction`` of the
    roots, at most ``max_validation_samples``); every training row inside a validation sentence
    is removed; then rows under ``min_words`` are dropped and ``max_train_samples`` applies.
    Test: whitespace normalised but never filtered. Raises :class:`DataFormatError` naming the
    source (``sources[split]``) and the label counts when the data cannot train and evaluate a
    classifier: nothing left after filtering, one label, too few root sentences for the split,
    or a train, validation or test split (after the caps) without both labels (the test
    metrics, macro-F1, ROC AUC and McNemar's test, need both).
    """
    raw_train, raw_test = frames["train"], frames["test"]
    counts: dict[str, int] = {"train_raw": len(raw_train), "test_raw": len(raw_test)}
    train = raw_train.assign(sentence=_normalize(raw_train["sentence"]))
    test = raw_test.assign(sentence=_normalize(raw_test["sentence"]))
    _check_trainable(train, config, sources["train"])
    if _missing_label(test) is not None:
        raise DataFormatError(
            sources["test"],
            f"only one class ({_label_counts(test)}); the test metrics (macro-F1, ROC AUC, "
            "McNemar's test) need both labels",
        )

    roots = find_roots(train)
    size = _validation_size(roots.frame, config, sources["train"])
    split = hold_out(train, roots, size=size, seed=config.seed)
    filtered = filter_min_words(split.train, config.min_words)
    counts.update(
        root_sentences=len(roots.frame),
        removed_inside_validation=split.removed_inside_validation,
        removed_min_words=len(split.train) - len(filtered),
    )
    validation = split.validation
    what = f"validation_fraction={config.validation_fraction:g}, min_words={config.min_words}"
    for frame, side in ((filtered, "the training side"), (validation, "the validation split")):
        _require_both_labels(
            frame,
            train,
            source=sources["train"],
            what=f"{side} ({what})",
            fix="change validation_fraction or add rows of the rarer label",
        )
    counts["train_after_split"], counts["validation_after_split"] = len(filtered), len(validation)
    capped = []
    for frame, limit, option, split_name in (
        (filtered, config.max_train_samples, "max_train_samples", "train"),
        (test, config.max_test_samples, "max_test_samples", "test"),
    ):
        kept = cap_rows(frame, limit, seed=config.seed)
        _require_both_labels(
            kept, frame, source=sources[split_name], what=f"{option}={limit}", fix=f"raise {option}"
        )
        capped.append(kept)
    train, test = capped
    counts["removed_by_train_cap"] = counts["train_after_split"] - len(train)
    counts.update(train=len(train), validation=len(validation), test=len(test))
    return Splits(train, validation, test, counts)


def check_sst2(config: DataConfig) -> None:
    """Read the local files and refuse data that cannot train (the preflight's data check).

    Parses and splits in memory without writing or loading a model (about a second for
    SST-2); a ``hub`` source is checked when the data task loads it.
    """
    if config.source == "local":
        frames, _ = load_sst2_local(config.data_dir)
        split_sst2(frames, config, sources=source_names(config))


def _fingerprint(config: DataConfig, hashes: dict[str, str]) -> str:
    payload = config.model_dump_json(exclude={"data_dir"}) + repr(sorted(hashes.items()))
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def prepare_sst2(config: DataConfig, out_dir: Path | str) -> PreparedData:
    """Load, validate, clean and split SST-2 (:func:`split_sst2`); write parquet splits into
    ``out_dir``. Nothing is written when the data is refused."""
    frames, hashes = load_sst2_hub() if config.source == "hub" else load_sst2_local(config.data_dir)
    train, validation, test, counts = split_sst2(frames, config, sources=source_names(config))
    overlap = int(test["sentence"].isin(set(_normalize(frames["train"]["sentence"]))).sum())
    train_keys = phrase_keys(train["sentence"])
    inside = {
        split: count_inside(phrase_keys(frame["sentence"]), train_keys)
        for split, frame in (("validation", validation), ("test", test))
    }
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
        validation_inside_train=inside["validation"],
        test_inside_train=inside["test"],
    )
    atomic_write_text(out_dir / "prepared.json", prepared.model_dump_json(indent=2))
    log.info(
        "prepared SST-2: %d train, %d validation, %d test rows (%d removed inside a validation "
        "sentence, %d by min_words=%d); inside a training row: %d validation, %d test",
        len(train),
        len(validation),
        len(test),
        counts["removed_inside_validation"],
        counts["removed_min_words"],
        config.min_words,
        inside["validation"],
        inside["test"],
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
