"""Sentence embeddings and clustering of misclassified sentences into themes.

Embeddings are all-MiniLM-L6-v2 mean-pooled sentence vectors; clusters are k-means on them with k
chosen by silhouette, described by class-based TF-IDF terms and their most central sentences.
"""

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict
from sklearn.cluster import KMeans
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import silhouette_score
from transformers import AutoConfig, AutoModel, AutoTokenizer

N_CENTRAL_EXAMPLES = 3  # sentences closest to each centroid
DOMINANT_TAG_SHARE = 0.3  # a tag is dominant in a cluster when this share of it carries the tag
TERM_PATTERN = r"(?u)\b[a-zA-Z]{2,}\b"  # terms: words of at least two letters
# Below this silhouette there is no substantial cluster structure (Kaufman & Rousseeuw).
WEAK_SILHOUETTE = 0.25


def embed_sentences(
    sentences: Sequence[str],
    *,
    model_dir: str | Path | None = None,
    batch_size: int = 64,
    max_length: int = 128,
) -> np.ndarray:
    """L2-normalised mean-pooled sentence embeddings, shape (n, hidden size), float32.

    ``model_dir`` defaults to the packaged all-MiniLM-L6-v2 (384 dimensions). Loads local
    safetensors only, never remote code; padding is excluded from the mean by the attention mask.
    """
    from sentiment_lora.training.modeling import embedded_model_path

    source = str(model_dir if model_dir is not None else embedded_model_path())
    sentences = list(sentences)
    if batch_size < 1:
        raise ValueError(f"batch_size: must be >= 1, got {batch_size}")
    if not sentences:
        config = AutoConfig.from_pretrained(source, local_files_only=True, trust_remote_code=False)
        return np.zeros((0, config.hidden_size), dtype=np.float32)
    tokenizer = AutoTokenizer.from_pretrained(
        source, local_files_only=True, trust_remote_code=False
    )
    model = AutoModel.from_pretrained(
        source, local_files_only=True, trust_remote_code=False, use_safetensors=True
    ).eval()
    chunks = []
    with torch.inference_mode():
        for start in range(0, len(sentences), batch_size):
            batch = tokenizer(
                sentences[start : start + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            chunks.append(torch.nn.functional.normalize(pooled, p=2, dim=1).float().numpy())
    return np.concatenate(chunks).astype(np.float32)


class ErrorCluster(BaseModel):
    """One theme among the errors."""

    model_config = ConfigDict(frozen=True)
    cluster_id: int  # 0 is the largest cluster
    size: int
    indices: list[int]  # positions of its sentences in the input, ascending
    false_positives: int
    false_negatives: int
    terms: list[str]  # distinctive terms by class-based TF-IDF, most distinctive first
    central_examples: list[str]  # closest to the centroid in cosine, closest first
    dominant_tags: list[str]  # pattern tags on >= DOMINANT_TAG_SHARE of the cluster


class ClusteringResult(BaseModel):
    """The clusters, how k was chosen, and what was done in degenerate cases."""

    model_config = ConfigDict(frozen=True)
    method: str  # 'kmeans', 'single-cluster' or 'none'
    k: int
    silhouette: float | None  # cosine silhouette of the chosen k; None when k was not chosen
    candidates: dict[int, float]  # k -> cosine silhouette, for every k tried
    clusters: list[ErrorCluster]
    note: str


def class_tfidf_terms(documents: Sequence[Sequence[str]], *, n_terms: int = 8) -> list[list[str]]:
    """Top terms of each group of sentences by class-based TF-IDF (c-TF-IDF, as in BERTopic).

    Each group is joined into one document; a term's weight in group c is
    ``tf(t, c) / words(c) * log(1 + A / tf(t))``, where ``tf(t)`` is its count over all groups
    and ``A`` the average number of words per group. English stop words are removed; terms are
    words of at least two letters. Ties break alphabetically.
    """
    joined = [" ".join(group) for group in documents]
    vectorizer = CountVectorizer(stop_words="english", token_pattern=TERM_PATTERN)
    analyzer = vectorizer.build_analyzer()
    if not any(analyzer(doc) for doc in joined):
        return [[] for _ in joined]
    counts = vectorizer.fit_transform(joined).toarray().astype(float)
    vocab = vectorizer.get_feature_names_out()
    words = counts.sum(axis=1, keepdims=True)
    tf = np.divide(counts, words, out=np.zeros_like(counts), where=words > 0)
    idf = np.log1p(counts.sum(axis=1).mean() / counts.sum(axis=0))
    scores = tf * idf
    out = []
    for row in scores:
        order = sorted(np.flatnonzero(row > 0), key=lambda j: (-row[j], vocab[j]))
        out.append([str(vocab[j]) for j in order[:n_terms]])
    return out


def _normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def _describe(
    assignment: np.ndarray,
    sentences: list[str],
    labels: np.ndarray,
    predictions: np.ndarray,
    x: np.ndarray,
    tags: list[list[str]] | None,
    n_terms: int,
) -> list[ErrorCluster]:
    """Clusters from a label per sentence, renumbered by size (largest first, then first index)."""
    ids = sorted(
        np.unique(assignment), key=lambda c: (-np.sum(assignment == c), np.argmax(assignment == c))
    )
    members = [np.flatnonzero(assignment == c) for c in ids]
    terms = class_tfidf_terms([[sentences[i] for i in m] for m in members], n_terms=n_terms)
    clusters = []
    for new_id, (idx, cluster_terms) in enumerate(zip(members, terms, strict=True)):
        centroid = _normalise(x[idx].mean(axis=0, keepdims=True))[0]
        similarity = x[idx] @ centroid
        central = sorted(range(len(idx)), key=lambda j: (-similarity[j], idx[j]))
        dominant: list[str] = []
        if tags is not None:
            counter = Counter(t for i in idx for t in set(tags[i]))
            dominant = [
                t
                for t, c in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
                if c / len(idx) >= DOMINANT_TAG_SHARE
            ]
        clusters.append(
            ErrorCluster(
                cluster_id=new_id,
                size=len(idx),
                indices=[int(i) for i in idx],
                false_positives=int(np.sum((labels[idx] == 0) & (predictions[idx] == 1))),
                false_negatives=int(np.sum((labels[idx] == 1) & (predictions[idx] == 0))),
                terms=cluster_terms,
                central_examples=[sentences[idx[j]] for j in central[:N_CENTRAL_EXAMPLES]],
                dominant_tags=dominant,
            )
        )
    return clusters


def cluster_errors(
    sentences: Sequence[str],
    *,
    labels: Sequence[int],
    predictions: Sequence[int],
    embeddings: np.ndarray,
    tags: list[list[str]] | None = None,
    k_range: tuple[int, int] = (2, 8),
    seed: int = 0,
    n_terms: int = 8,
) -> ClusteringResult:
    """Group misclassified sentences into themes with k-means on their (L2-normalised) embeddings.

    k is the one with the highest cosine silhouette over ``k_range`` (both ends included), capped
    at n - 1 and at the number of distinct embeddings; ties go to the smaller k. A best
    silhouette under :data:`WEAK_SILHOUETTE` is flagged in ``note``. ``n_init=10`` and
    ``random_state=seed`` make the result deterministic.

    Why k-means + silhouette rather than a density method such as HDBSCAN: there are few errors
    (tens to a few hundred), too few for stable density estimates; HDBSCAN would label much of
    such data as noise, whereas every error should land in a theme; and silhouette is a
    standard, model-free criterion for k. On unit vectors Euclidean k-means agrees with cosine.

    Degenerate inputs never raise: no errors -> k=0 and no clusters; one error, fewer errors than
    ``k_range[0] + 1`` or identical embeddings -> one cluster holding everything. ``note`` says
    which case applied.
    """
    sentences = list(sentences)
    y = np.asarray(labels, dtype=int)
    pred = np.asarray(predictions, dtype=int)
    x = np.asarray(embeddings, dtype=np.float64)
    n = len(sentences)
    if x.ndim != 2:
        raise ValueError(f"embeddings: must be 2-D (n, dim), got shape {x.shape}")
    if not (len(y) == len(pred) == x.shape[0] == n) or (tags is not None and len(tags) != n):
        raise ValueError(
            "sentences, labels, predictions, embeddings (rows) and tags must have equal length, "
            f"got {n}, {len(y)}, {len(pred)}, {x.shape[0]} and "
            f"{'None' if tags is None else len(tags)}"
        )
    k_min, k_max = k_range
    if not 2 <= k_min <= k_max:
        raise ValueError(f"k_range: need 2 <= low <= high, got {k_range}")
    if n and not np.isfinite(x).all():
        raise ValueError("embeddings: must be finite")

    if n == 0:
        return ClusteringResult(
            method="none", k=0, silhouette=None, candidates={}, clusters=[], note="no errors"
        )
    x = _normalise(x)

    def single(note: str) -> ClusteringResult:
        assignment = np.zeros(n, dtype=int)
        clusters = _describe(assignment, sentences, y, pred, x, tags, n_terms)
        return ClusteringResult(
            method="single-cluster",
            k=1,
            silhouette=None,
            candidates={},
            clusters=clusters,
            note=note,
        )

    if n == 1:
        return single("one error: a single cluster")
    if np.allclose(x, x[0], atol=1e-9):
        return single(f"all {n} embeddings are identical: a single cluster")
    if n < k_min + 1:
        return single(
            f"{n} errors are too few to choose k by silhouette (needs at least {k_min + 1}): "
            "a single cluster"
        )
    n_distinct = len(np.unique(x.round(9), axis=0))
    hi = min(k_max, n - 1, n_distinct)
    if hi < k_min:
        return single(f"only {n_distinct} distinct embeddings among {n} errors: a single cluster")

    candidates: dict[int, float] = {}
    fits: dict[int, np.ndarray] = {}
    for k in range(k_min, hi + 1):
        assignment = KMeans(n_clusters=k, n_init=10, random_state=seed).fit_predict(x)
        found = len(np.unique(assignment))
        if not 2 <= found <= n - 1:  # duplicate points can leave clusters empty
            continue
        candidates[k] = float(silhouette_score(x, assignment, metric="cosine"))
        fits[k] = assignment
    if not candidates:
        return single("k-means found no two distinct groups: a single cluster")
    best = max(candidates, key=lambda k: (candidates[k], -k))
    capped = f" (capped at {hi} by the number of errors)" if hi < k_max else ""
    weak = (
        f"; silhouette below {WEAK_SILHOUETTE}: weak structure, read the clusters as loose themes"
        if candidates[best] < WEAK_SILHOUETTE
        else ""
    )
    return ClusteringResult(
        method="kmeans",
        k=best,
        silhouette=candidates[best],
        candidates=candidates,
        clusters=_describe(fits[best], sentences, y, pred, x, tags, n_terms),
        note=(
            f"k={best} has the highest cosine silhouette ({candidates[best]:.3f}) among "
            f"k={k_min}..{hi}{capped}{weak}"
        ),
    )
