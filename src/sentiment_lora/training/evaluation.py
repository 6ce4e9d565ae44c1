"""Classification metrics and the one evaluation function used for every model."""

from collections.abc import Sequence

import numpy as np
from pydantic import BaseModel, ConfigDict
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
    roc_auc_score,
)

from sentiment_lora.training.data import DECISION_THRESHOLD, LABEL_NAMES

# The metric keys used everywhere (Trainer logs, selection, JSON summary).
ACCURACY, F1_MACRO = "accuracy", "f1_macro"


class HeadlineMetrics(BaseModel):
    """Accuracy and macro-F1: what selection ranks by and what the report's tables show."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    accuracy: float
    f1_macro: float


class ValidationMetrics(HeadlineMetrics):
    """A trained config's validation scores at its kept epoch (and its validation loss)."""

    loss: float | None = None


class ClassMetrics(BaseModel):
    """Precision, recall, F1 and support of one class."""

    model_config = ConfigDict(frozen=True)
    precision: float
    recall: float
    f1: float
    support: int


class EvaluationMetrics(BaseModel):
    """Metrics of one model on one labelled set."""

    model_config = ConfigDict(frozen=True)
    n: int
    accuracy: float
    precision_macro: float
    recall_macro: float
    f1_macro: float
    precision_weighted: float
    recall_weighted: float
    f1_weighted: float
    auc_roc: float | None  # None when only one class is present
    confusion_matrix: list[list[int]]  # rows: true label, columns: predicted label
    per_class: dict[str, ClassMetrics]


class Evaluation(BaseModel):
    """Metrics plus per-example predictions, kept for the analyses that follow."""

    model_config = ConfigDict(frozen=True)
    model_name: str
    metrics: EvaluationMetrics
    labels: list[int]
    predictions: list[int]
    prob_positive: list[float]
    predict_seconds: float | None = None  # wall time of the predictions (saved models only)


def classification_metrics(
    labels: Sequence[int], prob_positive: Sequence[float]
) -> EvaluationMetrics:
    """Compute all metrics from true labels and P(positive); the prediction is P >= 0.5.

    >>> m = classification_metrics([0, 1, 1, 0], [0.2, 0.9, 0.4, 0.1])
    >>> m.accuracy, m.confusion_matrix
    (0.75, [[2, 0], [1, 1]])
    """
    y = np.asarray(labels, dtype=int)
    p = np.asarray(prob_positive, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(
            f"labels and prob_positive must be 1-D of equal length, got {y.shape} and {p.shape}"
        )
    if len(y) == 0:
        raise ValueError("labels: cannot evaluate on an empty set")
    pred = (p >= DECISION_THRESHOLD).astype(int)
    classes = list(range(len(LABEL_NAMES)))
    prec, rec, f1, sup = precision_recall_fscore_support(y, pred, labels=classes, zero_division=0)
    averaged = {
        avg: precision_recall_fscore_support(y, pred, labels=classes, average=avg, zero_division=0)
        for avg in ("macro", "weighted")
    }
    auc = float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None
    return EvaluationMetrics(
        n=len(y),
        accuracy=float(accuracy_score(y, pred)),
        precision_macro=float(averaged["macro"][0]),
        recall_macro=float(averaged["macro"][1]),
        f1_macro=float(averaged["macro"][2]),
        precision_weighted=float(averaged["weighted"][0]),
        recall_weighted=float(averaged["weighted"][1]),
        f1_weighted=float(averaged["weighted"][2]),
        auc_roc=auc,
        confusion_matrix=confusion_matrix(y, pred, labels=classes).tolist(),
        per_class={
            name: ClassMetrics(
                precision=float(prec[i]), recall=float(rec[i]), f1=float(f1[i]), support=int(sup[i])
            )
            for i, name in enumerate(LABEL_NAMES)
        },
    )


def evaluate_probabilities(
    model_name: str,
    labels: Sequence[int],
    prob_positive: Sequence[float],
    *,
    predict_seconds: float | None = None,
) -> Evaluation:
    """The one evaluation function: any model's P(positive) on a labelled set -> Evaluation."""
    metrics = classification_metrics(labels, prob_positive)
    probs = [float(x) for x in prob_positive]
    return Evaluation(
        model_name=model_name,
        metrics=metrics,
        labels=[int(x) for x in labels],
        predictions=[int(x >= DECISION_THRESHOLD) for x in probs],
        prob_positive=probs,
        predict_seconds=predict_seconds,
    )
