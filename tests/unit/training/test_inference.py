"""SentimentAnalyzer output shape and batching."""

from pathlib import Path

import numpy as np
import pytest
import torch

from sentiment_lora.training.inference import SentimentAnalyzer

TEXTS = [f"{'word ' * n}end" for n in (9, 1, 5, 12, 3, 7, 2)]


@pytest.fixture(scope="module")
def analyzer(tiny_distilbert_dir: Path) -> SentimentAnalyzer:
    return SentimentAnalyzer.from_base_model(
        str(tiny_distilbert_dir), batch_size=3, max_length=32, precision="fp32"
    )


def test_prediction_shape(analyzer: SentimentAnalyzer) -> None:
    preds = analyzer.predict(["good", "a much longer sentence about a film", "bad"])
    assert len(preds) == 3
    for p in preds:
        assert p.label in ("negative", "positive")
        assert set(p.probabilities) == {"negative", "positive"}
        assert p.probabilities[p.label] == p.confidence >= 0.5
        assert sum(p.probabilities.values()) == pytest.approx(1.0)


def test_batched_equals_one_at_a_time_and_keeps_order(analyzer: SentimentAnalyzer) -> None:
    batched = analyzer.predict_proba(TEXTS)
    single = np.vstack([analyzer.predict_proba([t]) for t in TEXTS])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_empty_and_overlong_input(analyzer: SentimentAnalyzer) -> None:
    assert analyzer.predict([]) == []
    long = analyzer.predict(["great " * 20_000])
    assert len(long) == 1


def test_bad_batch_size(tiny_distilbert_dir: Path) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        SentimentAnalyzer.from_base_model(str(tiny_distilbert_dir), batch_size=0)


def test_bf16_weights_give_float64_probabilities_close_to_fp32(
    analyzer: SentimentAnalyzer, tiny_distilbert_dir: Path
) -> None:
    bf16 = SentimentAnalyzer.from_base_model(
        str(tiny_distilbert_dir), batch_size=3, max_length=32, precision="bf16"
    )
    assert bf16.precision == "bf16"
    assert {p.dtype for p in bf16.model.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in analyzer.model.parameters()} == {torch.float32}
    probs, reference = bf16.predict_proba(TEXTS), analyzer.predict_proba(TEXTS)
    assert probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # bf16 keeps 8 bits of mantissa: close to fp32, not equal (same seeded head in both)
    np.testing.assert_allclose(probs, reference, atol=0.02)


def test_auto_precision_follows_the_device(
    tiny_distilbert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "sentiment_lora.training.modeling.fast_bf16_available", lambda device: False
    )
    slow = SentimentAnalyzer.from_base_model(str(tiny_distilbert_dir), device="cpu")
    assert slow.precision == "fp32"
    monkeypatch.setattr("sentiment_lora.training.modeling.fast_bf16_available", lambda device: True)
    fast = SentimentAnalyzer.from_base_model(str(tiny_distilbert_dir), device="cpu")
    assert fast.precision == "bf16"
    assert next(fast.model.parameters()).dtype == torch.bfloat16


def test_bad_precision_is_named(tiny_distilbert_dir: Path) -> None:
    with pytest.raises(ValueError, match="precision"):
        SentimentAnalyzer.from_base_model(str(tiny_distilbert_dir), precision="fp16")
