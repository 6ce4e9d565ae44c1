"""Clustering on synthetic embeddings with known groups, degenerate cases, c-TF-IDF terms, and
one check of the real embedding model."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from sentiment_lora.evidence.clustering import (
    class_tfidf_terms,
    cluster_errors,
    embed_sentences,
)

GROUP_WORDS = [
    ["boring", "dull", "tedious", "plot", "script"],
    ["acting", "actors", "performance", "cast", "wooden"],
    ["music", "soundtrack", "score", "songs", "loud"],
]


def _blobs(sizes: list[int], *, dim: int = 32, spread: float = 0.02, seed: int = 1) -> np.ndarray:
    """Tight Gaussian blobs around orthogonal unit centres, projected onto the unit sphere."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(dim, len(sizes))))[0].T
    x = np.concatenate(
        [c + spread * rng.normal(size=(n, dim)) for c, n in zip(centres, sizes, strict=True)]
    )
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _group_sentences(sizes: list[int]) -> tuple[list[str], np.ndarray]:
    rng = np.random.default_rng(2)
    sentences, truth = [], []
    for g, n in enumerate(sizes):
        for _ in range(n):
            words = rng.choice(GROUP_WORDS[g], size=3, replace=False)
            sentences.append(f"the {words[0]} is {words[1]} and the {words[2]} too")
            truth.append(g)
    return sentences, np.array(truth)


SIZES = [12, 9, 6]
# Tags: group 0 all negated; 1 of 9 in group 1 has contrast (below 30%); 2 of 6 in group 2 irony.
SYNTHETIC_TAGS = [["negation"] if i < 12 else [] for i in range(sum(SIZES))]
SYNTHETIC_TAGS[12] = ["contrast"]
SYNTHETIC_TAGS[21:23] = [["irony_markers"], ["irony_markers", "negation"]]


def _cluster_synthetic(seed: int = 0):
    sentences, truth = _group_sentences(SIZES)
    labels = np.where(truth == 0, 1, 0)  # group 0: positives predicted negative (FN)
    return truth, cluster_errors(
        sentences,
        labels=labels,
        predictions=1 - labels,
        embeddings=_blobs(SIZES),
        tags=SYNTHETIC_TAGS,
        seed=seed,
    )


@pytest.fixture(scope="module")
def synthetic():
    """(true group per sentence, clustering result) of three blobs, computed once."""
    return _cluster_synthetic()


def test_recovers_well_separated_groups(synthetic) -> None:
    truth, result = synthetic
    assert result.method == "kmeans"
    assert result.k == 3
    assert sorted(result.candidates) == list(range(2, 9))
    assert result.silhouette == max(result.candidates.values()) == result.candidates[3]
    assert result.silhouette > 0.9
    assert [c.size for c in result.clusters] == [12, 9, 6]  # largest first
    assert [c.cluster_id for c in result.clusters] == [0, 1, 2]
    # FP/FN per cluster: group 0 are FN, the others FP; pure clusters
    assert [(c.false_positives, c.false_negatives) for c in result.clusters] == [
        (0, 12),
        (9, 0),
        (6, 0),
    ]
    assert all(len(c.central_examples) == 3 for c in result.clusters)
    assert "highest cosine silhouette" in result.note


def test_assignment_matches_truth_exactly(synthetic) -> None:
    truth, result = synthetic
    predicted = np.full(len(truth), -1)
    for cluster in result.clusters:
        assert len(cluster.indices) == cluster.size
        predicted[cluster.indices] = cluster.cluster_id
    assert (predicted >= 0).all()  # every error lands in exactly one cluster
    assert adjusted_rand_score(truth, predicted) == 1.0


def test_c_tfidf_terms_pick_each_clusters_own_words(synthetic) -> None:
    _, result = synthetic
    for cluster, own in zip(result.clusters, GROUP_WORDS, strict=True):
        assert set(cluster.terms) <= set(own), cluster.terms
        assert len(cluster.terms) >= 4
    assert all("the" not in c.terms and "is" not in c.terms for c in result.clusters)


def test_class_tfidf_terms_ranks_distinctive_over_shared_words() -> None:
    docs = [
        ["the plot is boring", "boring plot , boring film"],
        ["the music is loud", "loud film music"],
    ]
    terms = class_tfidf_terms(docs, n_terms=3)
    assert terms[0][0] == "boring" and terms[1][0] in {"loud", "music"}
    assert "film" not in terms[0][:2]  # shared by both groups: ranked below own words
    assert "is" not in terms[0] and "the" not in terms[0]  # stop words removed
    assert class_tfidf_terms([["the it is", "a an"], ["of"]]) == [[], []]  # only stop words


def test_dominant_tags_are_those_on_at_least_30_percent(synthetic) -> None:
    _, result = synthetic
    assert result.clusters[0].dominant_tags == ["negation"]
    assert result.clusters[1].dominant_tags == []
    assert result.clusters[2].dominant_tags == ["irony_markers"]


def test_deterministic_under_a_seed(synthetic) -> None:
    _, again = _cluster_synthetic(seed=0)
    assert again == synthetic[1]
    noise = np.random.default_rng(0).normal(size=(20, 64))  # no structure: the seed decides
    kwargs = dict(labels=[0] * 20, predictions=[1] * 20, embeddings=noise, k_range=(2, 4))
    sentences = [f"sentence {i}" for i in range(20)]
    runs = [cluster_errors(sentences, **kwargs, seed=seed) for seed in (5, 5, 6)]
    assert runs[0] == runs[1]
    assert "weak structure" in runs[0].note and "weak" not in synthetic[1].note
    assert runs[0].candidates.keys() == runs[2].candidates.keys() == {2, 3, 4}


def test_zero_one_and_two_errors_degrade_gracefully() -> None:
    empty = cluster_errors([], labels=[], predictions=[], embeddings=np.zeros((0, 384)))
    assert (empty.method, empty.k, empty.clusters, empty.silhouette) == ("none", 0, [], None)
    assert empty.note == "no errors"

    one = cluster_errors(
        ["a dull plot"], labels=[0], predictions=[1], embeddings=np.ones((1, 4)), tags=[["x"]]
    )
    assert (one.method, one.k) == ("single-cluster", 1)
    assert [c.size for c in one.clusters] == [1] and one.clusters[0].false_positives == 1
    assert one.clusters[0].central_examples == ["a dull plot"]
    assert one.clusters[0].dominant_tags == ["x"]
    assert "one error" in one.note

    two = cluster_errors(
        ["a dull plot", "great fun"],
        labels=[0, 1],
        predictions=[1, 0],
        embeddings=np.eye(2),
    )
    assert (two.k, [c.size for c in two.clusters]) == (1, [2])
    assert (two.clusters[0].false_positives, two.clusters[0].false_negatives) == (1, 1)
    assert "too few" in two.note and two.silhouette is None


def test_identical_embeddings_give_one_cluster() -> None:
    result = cluster_errors(
        [f"sentence {i}" for i in range(10)],
        labels=[1] * 10,
        predictions=[0] * 10,
        embeddings=np.tile([0.6, 0.8, 0.0], (10, 1)),
    )
    assert (result.method, result.k, result.silhouette) == ("single-cluster", 1, None)
    assert [c.size for c in result.clusters] == [10]
    assert "identical" in result.note


def test_k_is_capped_by_the_number_of_errors() -> None:
    x = _blobs([2, 2])
    result = cluster_errors(
        ["a b", "a c", "d e", "d f"], labels=[0] * 4, predictions=[1] * 4, embeddings=x
    )
    assert sorted(result.candidates) == [2, 3]
    assert result.k == 2 and "capped" in result.note


def test_mismatched_lengths_fail_loudly() -> None:
    with pytest.raises(ValueError, match="equal length"):
        cluster_errors(["a", "b"], labels=[0, 1], predictions=[1, 0], embeddings=np.eye(3))
    with pytest.raises(ValueError, match="tags"):
        cluster_errors(
            ["a", "b"], labels=[0, 1], predictions=[1, 0], embeddings=np.eye(2), tags=[[]]
        )
    with pytest.raises(ValueError, match="k_range"):
        cluster_errors(
            ["a", "b"], labels=[0, 1], predictions=[1, 0], embeddings=np.eye(2), k_range=(1, 3)
        )


@pytest.fixture(scope="module")
def real_embeddings() -> np.ndarray:
    """The embedded MiniLM, loaded once for this module."""
    return embed_sentences(
        [
            "the movie was wonderful and i loved every minute of it .",
            "i loved this film , it was wonderful from start to finish .",
            "the stock market fell sharply on tuesday morning .",
        ],
        batch_size=2,  # two batches: padding must not change the pooled vectors' norms
    )


def test_embed_sentences_with_the_real_model(real_embeddings: np.ndarray) -> None:
    x = real_embeddings
    assert x.shape == (3, 384) and x.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    sim = x @ x.T
    assert sim[0, 1] > sim[0, 2] + 0.3 and sim[0, 1] > sim[1, 2] + 0.3
    assert embed_sentences([]).shape == (0, 384)
