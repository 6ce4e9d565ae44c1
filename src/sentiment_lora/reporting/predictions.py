"""A run's ``test_predictions.csv``, read and checked before the report draws anything.

The pipeline writes one row per test sentence (sentences come from TSV files, so a row is one
line): ``sentence``, ``label`` (0 or 1) and a ``prob_positive:<model>`` column per model.
:func:`read_predictions` names the file, line and column of the first thing wrong with it
instead of letting pandas, NumPy or scikit-learn fail inside a figure.
"""

import csv
import io
import re
from pathlib import Path

import pandas as pd

from sentiment_lora.paths import PREDICTIONS_FILE, PROB_PREFIX
from sentiment_lora.reporting.results import RunFileError, RunSummary, decode_utf8, read_run_file

MAX_PREDICTIONS_BYTES = 256 * 2**20  # 872 test sentences take ~0.2 MB
LABEL = "label"
_PANDAS_LINE = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")


def _header(text: str, path: Path) -> list[str]:
    try:
        header = next(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise RunFileError(f"{path}:1: not a CSV header ({exc})") from None
    duplicates = sorted({name for name in header if header.count(name) > 1})
    if duplicates:
        raise RunFileError(f"{path}:1: column {duplicates[0]!r} appears twice")
    return header


def _parse(text: str, path: Path) -> pd.DataFrame:
    try:
        return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        found = _PANDAS_LINE.search(str(exc))
        if found is None:
            raise RunFileError(f"{path}: not a valid CSV file ({exc})") from None
        expected, line, saw = found.groups()
        raise RunFileError(f"{path}:{line}: {saw} fields, the header has {expected}") from None


def _first_bad(frame: pd.DataFrame, bad: pd.Series, column: str, path: Path, why: str) -> None:
    if bad.any():
        row = int(bad.to_numpy().argmax())
        value = frame[column].iloc[row]
        raise RunFileError(f"{path}:{row + 2}: {column}: {value!r} {why}")


def read_predictions(run_dir: Path | str, *, summary: RunSummary) -> pd.DataFrame | None:
    """The run's predictions (``label`` as int, probabilities as float), None if absent.

    Raises :class:`RunFileError` naming the file and, where there is one, the line (the header
    is line 1) and column: a file that is empty, not UTF-8 or not CSV, a row with too many
    fields, a missing ``label`` or best-model column, a label other than 0/1, a probability
    that is empty, not a number or outside [0, 1], or fewer or more rows than the results'
    test set.
    """
    path = Path(run_dir) / PREDICTIONS_FILE
    if not path.exists() and not path.is_symlink():
        return None
    data = read_run_file(path, what="predictions file", limit=MAX_PREDICTIONS_BYTES)
    text = decode_utf8(data, path)
    header = _header(text, path)
    best = PROB_PREFIX + summary.best_config.name
    for needed in (LABEL, best):
        if needed not in header:
            raise RunFileError(f"{path}:1: no column {needed!r} (columns: {', '.join(header)})")
    frame = _parse(text, path)
    labels = frame[LABEL].str.strip()
    _first_bad(frame, ~labels.isin(["0", "1"]), LABEL, path, "is not a label (0 or 1)")
    frame[LABEL] = labels.astype(int)
    for column in (name for name in header if name.startswith(PROB_PREFIX)):
        values = pd.to_numeric(frame[column].str.strip(), errors="coerce")
        _first_bad(frame, values.isna(), column, path, "is not a probability")
        _first_bad(frame, ~values.between(0.0, 1.0), column, path, "is outside [0, 1]")
        frame[column] = values.astype(float)
    if len(frame) != summary.test_metrics.n:
        raise RunFileError(
            f"{path}: {len(frame)} rows, but {summary.test_metrics.n} test sentences in the "
            "results (truncated, or from another run?)"
        )
    return frame
