"""Baselines: majority class, TF-IDF + logistic regression, untrained head."""

from pathlib import Path

import numpy as np
import pytest

from sentiment_lora.config import DataConfig
from sentiment_lora.evidence.baselines import (
    BASELINES,
    evaluate_baselines,
    fit_tfidf_logreg,
    majority_probabilities,
)
from sentiment_lora.training.data import prepare_sst2


def test_majority_predicts_the_training_majority() -> None:
    assert majority_probabilities(np.array([1, 1, 0]), 4).tolist() == [1.0] * 4
    assert majority_probabilities(np.array([0, 0, 1]), 2).tolist() == [0.0] * 2


def test_tfidf_logreg_learns_separable_words() -> None:
    texts = [f"great fun {i}" for i in range(20)] + [f"awful bore {i}" for i in range(20)]
    model = fit_tfidf_logreg(texts, np.array([1] * 20 + [0] * 20))
    assert model.predict(["such great fun", "an awful bore"]).tolist() == [1, 0]


def test_all_baselines_evaluated_on_the_same_test_rows(
    tiny_sst2: Path, tiny_distilbert_dir: Path, tmp_path: Path
) -> None:
    prepared = prepare_sst2(DataConfig(data_dir=str(tiny_sst2)), tmp_path / "prep")
    results = evaluate_baselines(prepared, model=str(tiny_distilbert_dir), max_length=32)
    assert tuple(results) == BASELINES
    assert {ev.metrics.n for ev in results.values()} == {10}
    assert len({tuple(ev.labels) for ev in results.values()}) == 1
    assert results["majority"].metrics.accuracy == pytest.approx(0.5)
    assert results["tfidf-logreg"].metrics.accuracy >= 0.9  # dev rows share train's words


def test_tfidf_on_real_sst2_reaches_about_082(sst2_dir: Path, tmp_path: Path) -> None:
    prepared = prepare_sst2(DataConfig(data_dir=str(sst2_dir)), tmp_path / "prep")
    import pandas as pd

    train, test = pd.read_parquet(prepared.train_path), pd.read_parquet(prepared.test_path)
    model = fit_tfidf_logreg(train["sentence"].tolist(), train["label"].to_numpy())
    accuracy = float((model.predict(test["sentence"].tolist()) == test["label"].to_numpy()).mean())
    assert 0.79 <= accuracy <= 0.86
