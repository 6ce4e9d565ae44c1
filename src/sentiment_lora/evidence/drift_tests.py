"""The four drift tests between the champion's data and a run's: class balance (chi-square),
sentence length (Kolmogorov-Smirnov), vocabulary novelty (binomial against the Good-Turing
unseen mass) and semantic drift (maximum mean discrepancy of sentence embeddings with a
permutation p-value). :mod:`sentiment_lora.evidence.data_diff` runs them and adjusts their
p-values together (Holm).
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from scipy.stats import binomtest, chi2_contingency, ks_2samp, permutation_test
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS
from sklearn.metrics.pairwise import euclidean_distances

from sentiment_lora.evidence.clustering import embed_sentences
from sentiment_lora.evidence.data_snapshot import (
    TermCount,
    tokenize,
)
from sentiment_lora.training.data import LABEL_NAMES

TestName = Literal["class_balance", "sentence_length", "vocabulary_novelty", "semantic"]
N_NEW_TERMS = 10
N_PERMUTATIONS = 1000


class VocabularyNovelty(BaseModel):
    """Tokens of the added training rows that the champion's training split never contained."""

    model_config = ConfigDict(frozen=True)
    added_tokens: int
    novel_tokens: int
    novel_share: float  # novel_tokens / added_tokens (0 without added tokens)
    expected_share: float  # Good-Turing unseen mass of the champion's vocabulary
    new_terms: list[TermCount]  # novel non-stop-words, most frequent in the added rows first


def class_counts(rows: pd.DataFrame) -> dict[str, int]:
    counts = np.bincount(rows["label"].to_numpy(np.int64), minlength=2)
    return {name: int(counts[i]) for i, name in enumerate(LABEL_NAMES)}


def format_p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3g}"


class _Result(BaseModel):
    """A test before Holm adjustment: statistic, p-value and the verdict's two wordings."""

    model_config = ConfigDict(frozen=True)
    name: TestName
    statistic: float
    pvalue: float
    method: str
    n_before: int
    n_after: int
    shifted: str  # the verdict when significant
    steady: str  # the verdict when not
    detail: str  # p-value and effect, shown in brackets after the verdict


def class_balance_test(before: pd.DataFrame, after: pd.DataFrame) -> _Result:
    """Chi-square test (Yates-corrected) of the 2x2 table of label counts, rows = sides.

    A table with an empty row or column has nothing to test: statistic 0, p = 1.
    """
    table = np.array([list(class_counts(before).values()), list(class_counts(after).values())])
    if (table.sum(axis=0) == 0).any() or (table.sum(axis=1) == 0).any():
        statistic, pvalue = 0.0, 1.0
    else:
        result = chi2_contingency(table, correction=True)
        statistic, pvalue = float(result.statistic), float(result.pvalue)
    shares = [f"{row[1] / max(row.sum(), 1):.1%}" for row in table]
    detail = f"chi-square {format_p(pvalue)}; positive {shares[0]} -> {shares[1]}"
    return _Result(
        name="class_balance",
        statistic=statistic,
        pvalue=pvalue,
        method="chi-square test of the 2x2 label-count table (Yates correction)",
        n_before=int(table[0].sum()),
        n_after=int(table[1].sum()),
        shifted="the class balance shifted",
        steady="the class balance did not shift",
        detail=detail,
    )


def sentence_length_test(before: pd.DataFrame, after: pd.DataFrame) -> _Result:
    """Two-sample Kolmogorov-Smirnov test on sentence lengths in words (every row).

    Lengths are integers, so the test is conservative with ties; with an empty side, p = 1.
    """
    x, y = before["words"].to_numpy(), after["words"].to_numpy()
    if x.size == 0 or y.size == 0:
        statistic, pvalue = 0.0, 1.0
    else:
        result = ks_2samp(x, y)
        statistic, pvalue = float(result.statistic), float(result.pvalue)
    medians = [f"{np.median(v):g}" if v.size else "-" for v in (x, y)]
    detail = f"Kolmogorov-Smirnov {format_p(pvalue)}; median {medians[0]} -> {medians[1]} words"
    return _Result(
        name="sentence_length",
        statistic=statistic,
        pvalue=pvalue,
        method="two-sample Kolmogorov-Smirnov test on lengths in words",
        n_before=int(x.size),
        n_after=int(y.size),
        shifted="sentence lengths shifted",
        steady="sentence lengths did not shift",
        detail=detail,
    )


def vocabulary_novelty(
    champion_vocabulary: pd.DataFrame,
    added_sentences: Sequence[str],
    *,
    n_terms: int = N_NEW_TERMS,
) -> tuple[VocabularyNovelty, _Result]:
    """Share of the added rows' tokens unseen in the champion's vocabulary, and its test.

    Under no drift a new token is unseen with the probability of the champion's unseen mass,
    estimated by Good-Turing as (tokens seen once) / (all tokens), floored at 1 / (all tokens)
    so that a small vocabulary without such tokens does not make any new word significant.
    The one-sided binomial test treats tokens as independent; no library offers this
    comparison, hence the few lines here.

    SST-2's ``train.tsv`` holds overlapping phrases of the same reviews, so few of its words
    occur once and the expected share is low (0.08% on the full file): rows from reviews it
    does not contain (e.g. 100 full sentences of ``dev.tsv``: 5.5% new tokens) are flagged,
    as rows unlike the phrases trained on, while a random half against the other half is not.
    """
    seen = set(champion_vocabulary["token"])
    counts = champion_vocabulary["count"].to_numpy(np.int64)
    total = int(counts.sum())
    expected = max(int((counts == 1).sum()), 1) / total if total else 1.0
    added_tokens = novel_tokens = 0
    new: dict[str, int] = {}
    for sentence in added_sentences:
        for token in tokenize(sentence):
            added_tokens += 1
            if token not in seen:
                novel_tokens += 1
                if token not in ENGLISH_STOP_WORDS:
                    new[token] = new.get(token, 0) + 1
    share = novel_tokens / added_tokens if added_tokens else 0.0
    pvalue = (
        float(binomtest(novel_tokens, added_tokens, expected, alternative="greater").pvalue)
        if added_tokens
        else 1.0
    )
    terms = sorted(new.items(), key=lambda tc: (-tc[1], tc[0]))[:n_terms]
    novelty = VocabularyNovelty(
        added_tokens=added_tokens,
        novel_tokens=novel_tokens,
        novel_share=share,
        expected_share=expected,
        new_terms=[TermCount(term=t, count=c) for t, c in terms],
    )
    if added_tokens:
        listed = f"; new terms: {', '.join(t for t, _ in terms[:5])}" if terms else ""
        detail = f"binomial {format_p(pvalue)}; {share:.2%} of their tokens are new, "
        detail += f"{expected:.2%} expected{listed}"
        shifted = "added rows bring more new words than expected"
        steady = "added rows bring no more new words than expected"
    else:
        shifted = steady = "no tokens were added, so there is no new vocabulary"
        detail = "p = 1"
    result = _Result(
        name="vocabulary_novelty",
        statistic=share,
        pvalue=pvalue,
        method="one-sided binomial test of the novel-token share against the Good-Turing "
        "unseen mass",
        n_before=total,
        n_after=added_tokens,
        shifted=shifted,
        steady=steady,
        detail=detail,
    )
    return novelty, result


def mmd_permutation_test(
    x: np.ndarray, y: np.ndarray, *, n_permutations: int = N_PERMUTATIONS, seed: int = 0
) -> tuple[float, float]:
    """(MMD², permutation p-value) of samples ``x`` and ``y`` (rows = observations).

    Gaussian kernel exp(-d² / 2σ²) with the median heuristic σ² = median pooled squared
    distance (computed once, so it is the same under every permutation); the statistic is the biased
    MMD² estimate w' K w with weights 1/n and -1/m. Neither scipy, scikit-learn nor
    statsmodels has an MMD, so the statistic is written here; the permutation p-value is
    scipy's ``permutation_test`` over the sample labels ((count + 1) / (permutations + 1)).

    Why MMD rather than a classifier two-sample test: with a few hundred sentences per side,
    the permutation test uses every sentence for the statistic (a classifier test holds out
    half to score its AUC), has no classifier or hyper-parameters to choose, and is exact at
    level alpha for any sample size; with a characteristic kernel it detects any difference
    of the embedding distributions, not only one a given classifier can learn.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must be 2-D with equal widths, got {x.shape} and {y.shape}")
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"need at least 2 observations per side, got {len(x)} and {len(y)}")
    z = np.vstack([x, y])
    d2 = euclidean_distances(z, squared=True)
    bandwidth = float(np.median(d2[np.triu_indices(len(z), k=1)]))
    kernel = np.exp(-d2 / (2 * bandwidth)) if bandwidth > 0 else np.ones_like(d2)
    n, m = len(x), len(y)

    def statistic(ix: np.ndarray, iy: np.ndarray, axis: int = -1) -> np.ndarray:
        ix, iy = np.atleast_2d(ix).astype(np.int64), np.atleast_2d(iy).astype(np.int64)
        rows = np.arange(len(ix))[:, None]
        w = np.zeros((len(ix), n + m))
        w[rows, ix] = 1.0 / n
        w[rows, iy] = -1.0 / m
        value = np.einsum("bi,bi->b", w @ kernel, w)
        return value if value.size > 1 else value[0]

    result = permutation_test(
        (np.arange(n), np.arange(n, n + m)),
        statistic,
        permutation_type="independent",
        vectorized=True,
        n_resamples=n_permutations,
        alternative="greater",
        batch=200,
        rng=np.random.default_rng(seed),
    )
    return max(float(result.statistic), 0.0), float(result.pvalue)


def semantic_test(
    before: pd.DataFrame,
    after: pd.DataFrame,
    *,
    n_permutations: int = N_PERMUTATIONS,
    seed: int = 0,
    model_dir: str | Path | None = None,
) -> _Result:
    """MMD permutation test on embeddings of the two stored sentence samples.

    Identical samples (same multiset of hashes) need no embedding: MMD² 0, p = 1.
    """
    same = sorted(before["hash"].tolist()) == sorted(after["hash"].tolist())
    if same or len(before) < 2 or len(after) < 2:
        statistic, pvalue = 0.0, 1.0
    else:
        sentences = before["sentence"].tolist() + after["sentence"].tolist()
        # Length-sorted batches pad far less (about 4x faster on SST-2's mix of phrases).
        order = np.argsort([len(s) for s in sentences], kind="stable")
        sorted_embeddings = embed_sentences([sentences[i] for i in order], model_dir=model_dir)
        embeddings = np.empty_like(sorted_embeddings)
        embeddings[order] = sorted_embeddings
        statistic, pvalue = mmd_permutation_test(
            embeddings[: len(before)],
            embeddings[len(before) :],
            n_permutations=n_permutations,
            seed=seed,
        )
    detail = f"MMD permutation {format_p(pvalue)}; {len(before)} and {len(after)} sentences"
    return _Result(
        name="semantic",
        statistic=statistic,
        pvalue=pvalue,
        method="maximum mean discrepancy of all-MiniLM-L6-v2 embeddings (Gaussian kernel, "
        "median heuristic), permutation p-value",
        n_before=len(before),
        n_after=len(after),
        shifted="what the sentences say shifted",
        steady="what the sentences say did not shift",
        detail=detail,
    )
