"""Which rows of a ``data add`` go to the holdout: a stratified, deterministic share.

Per label, ``round(fraction * n)`` of the addition's new rows move to ``holdout.tsv``: the
ones whose normalised sentence has the smallest SHA-256, so the same file routes the same rows
on every machine and a sentence never changes sides between a dry run and the real one.
An addition of fewer than ``1 / (2 * fraction)`` rows of a label (5 at the default 0.1) moves
none of them. Written by hand: scikit-learn's ``train_test_split`` needs 2 rows per label
and a random state, and rounds differently for tiny additions.
"""

import hashlib
from collections.abc import Callable, Sequence
from typing import TypeVar

R = TypeVar("R")

HOLDOUT_FRACTION = 0.1  # the default share of every addition kept out of training


def route_rows(
    rows: Sequence[R],
    *,
    fraction: float,
    key: Callable[[R], str],
    label: Callable[[R], int],
) -> tuple[list[R], list[R]]:
    """Split ``rows`` into (train, holdout), both in the input's order."""
    if not 0 <= fraction < 1:
        raise ValueError(f"holdout_fraction: must be at least 0 and below 1, got {fraction:g}")
    held: set[int] = set()
    for value in sorted({label(row) for row in rows}):
        of_label = [i for i, row in enumerate(rows) if label(row) == value]
        n = int(fraction * len(of_label) + 0.5)  # half rounds up
        ranked = sorted(of_label, key=lambda i: hashlib.sha256(key(rows[i]).encode()).digest())
        held.update(ranked[:n])
    train = [row for i, row in enumerate(rows) if i not in held]
    holdout = [row for i, row in enumerate(rows) if i in held]
    return train, holdout
