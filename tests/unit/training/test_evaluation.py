"""Metrics against hand-computed cases."""

import pytest

from sentiment_lora.training.evaluation import classification_metrics, evaluate_probabilities


def test_hand_computed_case() -> None:
    # labels    1 1 1 0 0 0 0 1 ; predicted 1 1 0 0 0 1 0 1  -> TP=3 FN=1 TN=3 FP=1
    labels = [1, 1, 1, 0, 0, 0, 0, 1]
    probs = [0.9, 0.8, 0.3, 0.1, 0.2, 0.7, 0.4, 0.6]
    m = classification_metrics(labels, probs)
    assert m.accuracy == pytest.approx(6 / 8)
    assert m.confusion_matrix == [[3, 1], [1, 3]]
    assert m.per_class["positive"].precision == pytest.approx(3 / 4)
    assert m.per_class["positive"].recall == pytest.approx(3 / 4)
    assert m.per_class["negative"].support == 4
    assert m.f1_macro == pytest.approx(0.75)
    # AUC: positives {0.9,0.8,0.3,0.6} vs negatives {0.1,0.2,0.7,0.4}: 13 of 16 pairs in order
    assert m.auc_roc == pytest.approx(13 / 16)


def test_unbalanced_macro_vs_weighted() -> None:
    labels = [1, 1, 1, 1, 0]
    probs = [0.9, 0.9, 0.9, 0.9, 0.9]  # everything predicted positive
    m = classification_metrics(labels, probs)
    assert m.accuracy == pytest.approx(0.8)
    f1_pos = 2 * 0.8 * 1.0 / 1.8
    assert m.f1_macro == pytest.approx(f1_pos / 2)
    assert m.f1_weighted == pytest.approx(f1_pos * 4 / 5)
    assert m.per_class["negative"].precision == 0.0


def test_single_class_has_no_auc_and_threshold_is_half() -> None:
    m = classification_metrics([1, 1], [0.5, 0.49])
    assert m.auc_roc is None
    assert m.confusion_matrix == [[0, 0], [1, 1]]


def test_bad_shapes_fail_loudly() -> None:
    with pytest.raises(ValueError, match="equal length"):
        classification_metrics([1, 0, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match="empty"):
        classification_metrics([], [])


def test_evaluation_keeps_per_example_predictions() -> None:
    ev = evaluate_probabilities("m", [0, 1, 1], [0.2, 0.7, 0.4])
    assert ev.predictions == [0, 1, 0]
    assert ev.prob_positive == [0.2, 0.7, 0.4]
    assert ev.metrics.n == 3
