"""A validation split that shares no text with training, for data made of treebank phrases.

GLUE SST-2's ``train.tsv`` holds each treebank sentence and most of its sub-phrases as rows of
their own. A random split puts pieces of one sentence on both sides, so validation scores
measure recall of training text. Here validation is drawn from **root** rows only (rows that
occur, as whole words after lower-casing and whitespace normalisation, inside no other row),
and every training row that occurs inside a validation sentence is removed from training.
Plain-sentence data goes through the same code: every row is a root, nothing extra is removed.

Written by hand because no well-kept library finds contained word spans among short texts:
enumerating each row's word spans into a set lookup is linear in the spans (about 5.4 million
for SST-2's 67,349 rows, a few seconds); suffix automata or Aho-Corasick packages would do the
same with a compiled dependency for no gain at this size.
"""

import math
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

_WS = re.compile(r"\s+")


def phrase_keys(sentences: Iterable[str]) -> list[str]:
    """How sentences are compared: lower-cased, whitespace runs folded to one space, stripped."""
    return [_WS.sub(" ", s).strip().lower() for s in sentences]


def _found_inside(containers: Iterable[str], wanted: set[str], *, strict: bool) -> set[str]:
    """The keys of ``wanted`` that occur as a run of whole words inside some container.

    With ``strict`` a container does not count as occurring inside itself (a root test);
    otherwise a key equal to a container is found too.
    """
    if not wanted:
        return set()
    longest = max(key.count(" ") + 1 for key in wanted)
    found: set[str] = set()
    for text in containers:
        words = text.split(" ")
        n = len(words)
        for i in range(n):
            for j in range(i + 1, min(n, i + longest) + 1):
                if strict and i == 0 and j == n:
                    continue
                span = " ".join(words[i:j])
                if span in wanted:
                    found.add(span)
    return found


def root_mask(keys: Sequence[str]) -> np.ndarray:
    """True for each key that occurs inside no other distinct key (a treebank sentence).

    A duplicate of a root is a root too: it occurs inside nothing but itself.
    """
    unique = set(keys)
    inside = _found_inside(unique, unique, strict=True)
    return np.array([key not in inside for key in keys], dtype=bool)


def inside_mask(keys: Sequence[str], containers: Iterable[str]) -> np.ndarray:
    """True for each key that occurs inside (or equals) one of ``containers``."""
    found = _found_inside(set(containers), set(keys), strict=False)
    return np.array([key in found for key in keys], dtype=bool)


def count_inside(keys: Sequence[str], containers: Iterable[str]) -> int:
    """How many of ``keys`` occur inside (or equal) one of ``containers``."""
    return int(inside_mask(keys, containers).sum())


class Roots(NamedTuple):
    """The root sentences of a frame, found by :func:`find_roots`."""

    keys: list[str]  # every row's key (:func:`phrase_keys`), in the frame's order
    frame: pd.DataFrame  # the distinct root rows, their key in column ``key``


class SentenceSplit(NamedTuple):
    """What :func:`hold_out` made: the two sides and what it removed on the way."""

    train: pd.DataFrame
    validation: pd.DataFrame
    removed_inside_validation: int  # training rows that occur inside a validation sentence


def find_roots(frame: pd.DataFrame) -> Roots:
    """The distinct root rows of ``frame`` (``sentence``/``label``): the first row of each root
    key, in the frame's order."""
    keys = phrase_keys(frame["sentence"])
    is_root = root_mask(keys)
    roots = frame[is_root].assign(key=np.asarray(keys, dtype=object)[is_root])
    return Roots(keys=keys, frame=roots.drop_duplicates("key").reset_index(drop=True))


def validation_size(roots: int, *, fraction: float, limit: int | None) -> int:
    """How many root sentences to hold out: ``fraction`` of them, at most ``limit``."""
    size = math.ceil(fraction * roots)
    return size if limit is None else min(size, limit)


def hold_out(frame: pd.DataFrame, roots: Roots, *, size: int, seed: int) -> SentenceSplit:
    """Hold out ``size`` of ``roots`` (found in ``frame``) for validation, stratified by label
    and seeded; every row of ``frame`` that occurs inside one of them (a sub-phrase, or a
    duplicate of it) leaves training. The rest, the other roots included, is the training side.

    The caller checks the sizes first: each label needs 2 roots, and both sides 2 rows.
    """
    _, held = train_test_split(
        roots.frame, test_size=size, random_state=seed, stratify=roots.frame["label"]
    )
    leaked = inside_mask(roots.keys, held["key"].tolist())
    return SentenceSplit(
        train=frame[~leaked].reset_index(drop=True),
        validation=held.drop(columns="key").reset_index(drop=True),
        removed_inside_validation=int(leaked.sum()) - len(held),
    )
