"""Wall time of a data diff on the full SST-2 train.tsv (67,349 rows on both sides).

The champion's snapshot is taken from the real ``train.tsv``/``dev.tsv`` (the training split
is the whole ``train.tsv``) and written to a temporary directory, outside the timing. The
current run's data is an edited copy: 1% of the rows dropped, 100 relabelled and 100 new
sentences appended (from ``dev.tsv``), so every test runs, the embedding of both samples
included. Timed, per repeat: ``take_snapshot`` of the current frames, ``write_snapshot`` of
them, and ``diff_data`` against the champion's directory (which reads it back).

    .venv/bin/python bench/data_diff_timing.py [--repeats 3]
"""

import argparse
import json
import tempfile
import time

import numpy as np
import pandas as pd
from common import DATA_DIR, cpu_model, load_average, median, set_threads

from sentiment_lora.evidence.data_diff import diff_data
from sentiment_lora.evidence.data_snapshot import (
    SOURCE_TEST,
    SOURCE_TRAIN,
    TRAINING,
    take_snapshot,
    write_snapshot,
)
from sentiment_lora.training.data import read_glue_tsv


def edited(train: pd.DataFrame, dev: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """``train`` with 1% of rows dropped, 100 relabelled and 100 rows of ``dev`` appended."""
    rng = np.random.default_rng(seed)
    kept = train.drop(index=rng.choice(len(train), size=len(train) // 100, replace=False))
    kept = kept.reset_index(drop=True)
    flip = rng.choice(len(kept), size=100, replace=False)
    kept.loc[flip, "label"] = 1 - kept.loc[flip, "label"]
    return pd.concat([kept, dev.iloc[:100]], ignore_index=True)


def time_diff(repeats: int) -> dict:
    """Seconds per repeat of snapshot + write + diff, and the diff's headline."""
    train = read_glue_tsv(DATA_DIR / SOURCE_TRAIN)
    dev = read_glue_tsv(DATA_DIR / SOURCE_TEST)
    current_train = edited(train, dev)
    champion = {SOURCE_TRAIN: train, SOURCE_TEST: dev, TRAINING: train}
    current = {SOURCE_TRAIN: current_train, SOURCE_TEST: dev, TRAINING: current_train}
    seconds, diff = [], None
    with tempfile.TemporaryDirectory() as tmp:
        write_snapshot(f"{tmp}/champion", *take_snapshot(champion))
        for repeat in range(repeats):
            started = time.perf_counter()
            snapshot = take_snapshot(current)
            write_snapshot(f"{tmp}/current-{repeat}", *snapshot)
            diff = diff_data(current, f"{tmp}/champion", current=snapshot)
            seconds.append(time.perf_counter() - started)
    assert diff is not None
    return {
        "rows_champion": len(train),
        "rows_current": len(current_train),
        "seconds": seconds,
        "median_seconds": median(seconds),
        "drifted": diff.drifted,
        "summary": diff.summary,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median shown)")
    args = parser.parse_args()
    set_threads()
    result = {"cpu_model": cpu_model(), "load_average_start": list(load_average())}
    result.update(time_diff(args.repeats))
    result["load_average_end"] = list(load_average())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
