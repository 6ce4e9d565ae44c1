"""SentimentAnalyzer output shape and batching."""

from pathlib import Path

import numpy as np
import pytest

from sentiment_lora.inference import SentimentAnalyzer


@pytest.fixture(scope="module")
def analyzer(tiny_distilbert_dir: Path) -> SentimentAnalyzer:
    return SentimentAnalyzer.from_base_model(str(tiny_distilbert_dir), batch_size=3, max_length=32)


def test_prediction_shape(analyzer: SentimentAnalyzer) -> None:
    preds = analyzer.predict(["good", "a much longer sentence about a film", "bad"])
    assert len(preds) == 3
    for p in preds:
        assert p.label in ("negative", "positive")
        assert set(p.probabilities) == {"negative", "positive"}
        assert p.probabilities[p.label] == p.confidence >= 0.5
        assert sum(p.probabilities.values()) == pytest.approx(1.0)


def test_batched_equals_one_at_a_time_and_keeps_order(analyzer: SentimentAnalyzer) -> None:
    texts = [f"{'word ' * n}end" for n in (9, 1, 5, 12, 3, 7, 2)]
    batched = analyzer.predict_proba(texts)
    single = np.vstack([analyzer.predict_proba([t]) for t in texts])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_empty_and_overlong_input(analyzer: SentimentAnalyzer) -> None:
    assert analyzer.predict([]) == []
    long = analyzer.predict(["great " * 20_000])
    assert len(long) == 1


def test_bad_batch_size(tiny_distilbert_dir: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        SentimentAnalyzer.from_base_model(str(tiny_distilbert_dir), batch_size=0)
