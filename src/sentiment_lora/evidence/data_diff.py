"""What changed in the data since the champion: row edits, and tests of drift in the training split.

Rows are compared as multisets of (normalised sentence, label), through the hashes of
:mod:`~sentiment_lora.evidence.data_snapshot`: a sentence present twice before and once after
is one removed row; the same sentence with the other label is one relabelled row, not one
removed and one added. Examples of added and relabelled rows come from the current frames;
the champion's sentences are not stored in full, so examples of removed rows are those that
fell in its stored seeded sample (none when no removed row is in the sample), while the
counts are always exact.

Four tests compare the champion's training split with the current one; their p-values are
Holm-adjusted together, and a test is significant when its adjusted p is below alpha:

- class balance: chi-square test of the 2x2 table of label counts (Yates-corrected);
- sentence length: two-sample Kolmogorov-Smirnov test on the length in words of every row;
- vocabulary novelty: the share of tokens of added rows that the champion never saw, against
  the Good-Turing estimate of the champion's unseen mass (one-sided binomial test);
- semantic drift: maximum mean discrepancy between all-MiniLM-L6-v2 embeddings of the two
  stored seeded samples, with a permutation p-value (see :func:`mmd_permutation_test`).
"""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict

from sentiment_lora.evidence.data_snapshot import (
    SNAPSHOT_FILE,
    SOURCE_TEST,
    SPLITS,
    TRAINING,
    Snapshot,
    SplitTables,
    read_snapshot,
    take_snapshot,
)
from sentiment_lora.evidence.drift_tests import (
    N_PERMUTATIONS,
    TestName,
    VocabularyNovelty,
    class_balance_test,
    class_counts,
    format_p,
    semantic_test,
    sentence_length_test,
    vocabulary_novelty,
)
from sentiment_lora.evidence.stats import holm_adjust
from sentiment_lora.training.data import LABEL_NAMES, normalize_whitespace

N_EXAMPLES = 5


class RowExample(BaseModel):
    """One changed row: its sentence and label (for a relabelled row, also the old label)."""

    model_config = ConfigDict(frozen=True)
    sentence: str
    label: str
    previous_label: str | None = None


class SplitDiff(BaseModel):
    """Row-level changes of one split; rows_before = unchanged + removed + relabelled and
    rows_after = unchanged + added + relabelled."""

    model_config = ConfigDict(frozen=True)
    split: str
    rows_before: int
    rows_after: int
    unchanged: int
    added: int
    removed: int
    relabelled: int  # same normalised sentence, other label
    identical: bool  # same multiset of (normalised sentence, label)
    class_balance_before: dict[str, int]
    class_balance_after: dict[str, int]
    added_examples: list[RowExample]
    removed_examples: list[RowExample]  # only removed rows in the champion's stored sample
    relabelled_examples: list[RowExample]


class DriftTest(BaseModel):
    """One test of a shift between the champion's training split and the current one."""

    model_config = ConfigDict(frozen=True)
    name: TestName
    split: str
    statistic: float
    pvalue: float
    pvalue_holm: float  # adjusted over all the tests of the diff
    method: str
    n_before: int  # observations of the champion's side (rows, tokens or sampled sentences)
    n_after: int
    significant: bool  # pvalue_holm < alpha
    verdict: str


class DataDiff(BaseModel):
    """The current run's data against the champion's snapshot."""

    model_config = ConfigDict(frozen=True)
    first_run: bool  # no champion snapshot: nothing compared, every other field empty
    test_set_changed: bool  # test metrics are then not comparable with the champion's
    drifted: bool  # any test significant
    alpha: float
    source: dict[str, SplitDiff]  # per source file present on both sides
    training: SplitDiff | None
    tests: list[DriftTest]
    novelty: VocabularyNovelty | None
    summary: list[str]  # plain-language lines, most important first


def _label_counts(rows: pd.DataFrame) -> pd.DataFrame:
    """Rows per (hash, label): index hash, columns 0 and 1."""
    counts = rows.groupby(["hash", "label"]).size().unstack("label", fill_value=0)
    return counts.reindex(columns=[0, 1], fill_value=0)


def _hash_changes(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Per hash: unchanged, added/removed per label, relabelled 0->1 and 1->0 (multiset match)."""
    b, a = _label_counts(before), _label_counts(after)
    t = pd.concat(
        [b.set_axis(["b0", "b1"], axis=1), a.set_axis(["a0", "a1"], axis=1)], axis=1
    ).fillna(0)
    t = t.astype(np.int64)
    kept0, kept1 = np.minimum(t["b0"], t["a0"]), np.minimum(t["b1"], t["a1"])
    rb0, rb1, ra0, ra1 = t["b0"] - kept0, t["b1"] - kept1, t["a0"] - kept0, t["a1"] - kept1
    to1, to0 = np.minimum(rb0, ra1), np.minimum(rb1, ra0)  # was 0 now 1; was 1 now 0
    return pd.DataFrame(
        {
            "unchanged": kept0 + kept1,
            "added0": ra0 - to0,
            "added1": ra1 - to1,
            "removed0": rb0 - to1,
            "removed1": rb1 - to0,
            "to0": to0,
            "to1": to1,
        },
        index=t.index,
    )


def _examples(
    frame: pd.DataFrame,
    hashes: np.ndarray,
    changes: pd.DataFrame,
    columns: tuple[str, str],
    *,
    n: int,
    relabelled: bool = False,
) -> list[RowExample]:
    """Up to ``n`` rows of ``frame`` (distinct sentences, in order) whose label l has
    ``changes[columns[l]] > 0``."""
    if n == 0 or frame.empty:
        return []
    labels = frame["label"].to_numpy()
    wanted = {label: changes.index[changes[col] > 0] for label, col in enumerate(columns)}
    hit = np.zeros(len(frame), dtype=bool)
    for label, index in wanted.items():
        hit |= (labels == label) & np.isin(hashes, index.to_numpy(np.uint64))
    out: list[RowExample] = []
    seen: set[int] = set()
    for i in np.flatnonzero(hit):
        if int(hashes[i]) in seen:
            continue
        seen.add(int(hashes[i]))
        label = int(labels[i])
        out.append(
            RowExample(
                sentence=normalize_whitespace(str(frame["sentence"].iloc[i])),
                label=LABEL_NAMES[label],
                previous_label=LABEL_NAMES[1 - label] if relabelled else None,
            )
        )
        if len(out) == n:
            break
    return out


def diff_split(
    split: str,
    before: SplitTables,
    after: SplitTables,
    frame: pd.DataFrame,
    *,
    n_examples: int = N_EXAMPLES,
) -> SplitDiff:
    """Row changes from the champion's tables ``before`` to ``after``, the tables of ``frame``.

    Examples of added and relabelled rows come from ``frame``; of removed rows, from
    ``before.sample``.
    """
    changes = _hash_changes(before.rows, after.rows)
    totals = changes.sum()
    hashes = after.rows["hash"].to_numpy(np.uint64)
    return SplitDiff(
        split=split,
        rows_before=len(before.rows),
        rows_after=len(after.rows),
        unchanged=int(totals["unchanged"]),
        added=int(totals["added0"] + totals["added1"]),
        removed=int(totals["removed0"] + totals["removed1"]),
        relabelled=int(totals["to0"] + totals["to1"]),
        identical=bool(
            totals[["added0", "added1", "removed0", "removed1", "to0", "to1"]].sum() == 0
        ),
        class_balance_before=class_counts(before.rows),
        class_balance_after=class_counts(after.rows),
        added_examples=_examples(frame, hashes, changes, ("added0", "added1"), n=n_examples),
        removed_examples=_examples(
            before.sample,
            before.sample["hash"].to_numpy(np.uint64),
            changes,
            ("removed0", "removed1"),
            n=n_examples,
        ),
        relabelled_examples=_examples(
            frame, hashes, changes, ("to0", "to1"), n=n_examples, relabelled=True
        ),
    )


def _added_sentences(frame: pd.DataFrame, rows: pd.DataFrame, changes: pd.DataFrame) -> list[str]:
    """Each added row's sentence, repeated as often as it was added."""
    added = changes["added0"] + changes["added1"]
    added = added[added > 0]
    if added.empty:
        return []
    first = pd.Series(np.arange(len(rows)), index=rows["hash"].to_numpy(np.uint64))
    first = first[~first.index.duplicated()]
    positions = first.loc[added.index.to_numpy(np.uint64)].to_numpy()
    sentences = frame["sentence"].iloc[positions].tolist()
    return [s for s, c in zip(sentences, added.to_numpy(), strict=True) for _ in range(int(c))]


def _rows(n: int) -> str:
    return f"{n:,} row" if n == 1 else f"{n:,} rows"


def _describe(diff: SplitDiff) -> str:
    if diff.identical:
        return f"{diff.split}: unchanged ({_rows(diff.rows_after)})"
    return (
        f"{diff.split}: {_rows(diff.added)} added, {diff.removed:,} removed, "
        f"{diff.relabelled:,} relabelled ({diff.rows_before:,} -> {_rows(diff.rows_after)})"
    )


def diff_snapshots(
    frames: Mapping[str, pd.DataFrame],
    current: Snapshot,
    champion: Snapshot | None,
    *,
    alpha: float = 0.05,
    n_examples: int = N_EXAMPLES,
    n_permutations: int = N_PERMUTATIONS,
    seed: int = 0,
    model_dir: str | Path | None = None,
) -> DataDiff:
    """Compare ``current`` (``take_snapshot(frames)``) with the champion's snapshot.

    ``champion`` None is a first run: a valid diff that compares nothing.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha: must be in (0, 1), got {alpha}")
    if champion is None:
        return DataDiff(
            first_run=True,
            test_set_changed=False,
            drifted=False,
            alpha=alpha,
            source={},
            training=None,
            tests=[],
            novelty=None,
            summary=["First run: there is no champion data snapshot to compare with."],
        )
    _, now = current
    _, before = champion
    if set(now) != set(frames):
        raise ValueError(f"current holds splits {sorted(now)}, frames {sorted(frames)}")
    missing = [s for s in SPLITS if (s in now) != (s in before)]
    source = {
        split: diff_split(split, before[split], now[split], frames[split], n_examples=n_examples)
        for split in SPLITS
        if split != TRAINING and split in now and split in before
    }
    training = diff_split(
        TRAINING, before[TRAINING], now[TRAINING], frames[TRAINING], n_examples=n_examples
    )
    changes = _hash_changes(before[TRAINING].rows, now[TRAINING].rows)
    novelty, novelty_result = vocabulary_novelty(
        before[TRAINING].vocabulary,
        _added_sentences(frames[TRAINING], now[TRAINING].rows, changes),
    )
    results = [
        class_balance_test(before[TRAINING].rows, now[TRAINING].rows),
        sentence_length_test(before[TRAINING].rows, now[TRAINING].rows),
        novelty_result,
        semantic_test(
            before[TRAINING].sample,
            now[TRAINING].sample,
            n_permutations=n_permutations,
            seed=seed,
            model_dir=model_dir,
        ),
    ]
    adjusted = holm_adjust([r.pvalue for r in results])
    tests = []
    for r, p_holm in zip(results, adjusted, strict=True):
        significant = p_holm < alpha
        holm = f", Holm-adjusted {format_p(p_holm)}" if abs(p_holm - r.pvalue) > 1e-12 else ""
        verdict = f"{r.shifted if significant else r.steady} ({r.detail}{holm})"
        tests.append(
            DriftTest(
                name=r.name,
                split=TRAINING,
                statistic=r.statistic,
                pvalue=r.pvalue,
                pvalue_holm=p_holm,
                method=r.method,
                n_before=r.n_before,
                n_after=r.n_after,
                significant=significant,
                verdict=verdict,
            )
        )
    test_diff = source.get(SOURCE_TEST)
    test_set_changed = test_diff is not None and not test_diff.identical
    drifted = any(t.significant for t in tests)

    summary: list[str] = []
    if test_set_changed:
        summary.append(
            f"THE TEST SET CHANGED ({_describe(test_diff)}): test metrics are not comparable "
            "with the champion's."
        )
    if missing:
        summary.append(f"Not compared, present on one side only: {', '.join(missing)}.")
    summary += [_describe(d) for d in (*source.values(), training)]
    summary += [f"{t.verdict[0].upper()}{t.verdict[1:]}." for t in tests]
    fired = ", ".join(t.name.replace("_", " ") for t in tests if t.significant)
    summary.append(
        f"The training data drifted: {fired} (alpha {alpha:g}, Holm-adjusted over "
        f"{len(tests)} tests)."
        if drifted
        else f"No drift detected in the training data (alpha {alpha:g}, Holm-adjusted over "
        f"{len(tests)} tests)."
    )
    return DataDiff(
        first_run=False,
        test_set_changed=test_set_changed,
        drifted=drifted,
        alpha=alpha,
        source=source,
        training=training,
        tests=tests,
        novelty=novelty,
        summary=summary,
    )


def diff_data(
    frames: Mapping[str, pd.DataFrame],
    champion_dir: Path | str | None,
    *,
    current: Snapshot | None = None,
    alpha: float = 0.05,
    n_examples: int = N_EXAMPLES,
    n_permutations: int = N_PERMUTATIONS,
    seed: int = 0,
    model_dir: str | Path | None = None,
) -> DataDiff:
    """Compare the current run's ``frames`` with the snapshot stored in ``champion_dir``.

    ``current`` is ``take_snapshot(frames)`` when the caller already has it (it is taken here
    otherwise). No ``champion_dir``, or one without a snapshot, is a first run.
    """
    if current is None:
        current = take_snapshot(frames)
    champion = None
    if champion_dir is not None and (Path(champion_dir) / SNAPSHOT_FILE).is_file():
        champion = read_snapshot(champion_dir)
    result = diff_snapshots(
        frames,
        current,
        champion,
        alpha=alpha,
        n_examples=n_examples,
        n_permutations=n_permutations,
        seed=seed,
        model_dir=model_dir,
    )
    if champion is None and champion_dir is not None:
        note = f"The champion's directory {champion_dir} holds no data snapshot ({SNAPSHOT_FILE})."
        return result.model_copy(update={"summary": [*result.summary, note]})
    return result
