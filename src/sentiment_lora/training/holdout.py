"""The data directory's fresh holdout: rows of every ``data add`` that are never trained on.

``data add --holdout-fraction F`` moves a stratified share of each addition into
``holdout.tsv`` beside ``train.tsv`` (:mod:`sentiment_lora.operations.data_versions`). The
pipeline never reads it for training; once it holds :data:`HOLDOUT_MIN_ROWS` rows, the
champion gate scores champion and challenger on it too, so a weekly decision does not rest on
the one test set every earlier decision has already used.
"""

from pathlib import Path
from typing import NamedTuple

from sentiment_lora.training.data import normalize_whitespace, sha256_file
from sentiment_lora.training.glue_tsv import read_glue_tsv

HOLDOUT_FILE = "holdout.tsv"
HOLDOUT_MIN_ROWS = 200  # fewer rows decide nothing: a 1-point margin needs hundreds


class Holdout(NamedTuple):
    """A holdout file's rows, whitespace normalised, and its identity."""

    path: str
    sha256: str
    sentences: list[str]
    labels: list[int]


def read_holdout(data_dir: Path | str) -> Holdout | None:
    """``data_dir/holdout.tsv`` (validated like every GLUE file), or None when there is none."""
    path = Path(data_dir) / HOLDOUT_FILE
    if not path.exists():
        return None
    frame = read_glue_tsv(path)
    return Holdout(
        path=str(path),
        sha256=sha256_file(path),
        sentences=[normalize_whitespace(s) for s in frame["sentence"]],
        labels=[int(y) for y in frame["label"]],
    )


def gate_holdout(data_dir: Path | str | None) -> Holdout | None:
    """The holdout the gate uses: :func:`read_holdout` when it holds at least
    :data:`HOLDOUT_MIN_ROWS` rows, else None (no data directory: None)."""
    if data_dir is None:
        return None
    holdout = read_holdout(data_dir)
    if holdout is None or len(holdout.labels) < HOLDOUT_MIN_ROWS:
        return None
    return holdout
