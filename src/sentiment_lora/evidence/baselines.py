"""Baselines evaluated on the same test set, by the same function, as the fine-tuned models."""

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline

from sentiment_lora.training.data import DECISION_THRESHOLD, PreparedData, read_split
from sentiment_lora.training.evaluation import Evaluation, evaluate_probabilities
from sentiment_lora.training.inference import SentimentAnalyzer

PRETRAINED_HEAD, MAJORITY, TFIDF_LOGREG = "pretrained-head", "majority", "tfidf-logreg"
BASELINES: tuple[str, ...] = (PRETRAINED_HEAD, MAJORITY, TFIDF_LOGREG)
DESCRIPTIONS: dict[str, str] = {
    PRETRAINED_HEAD: "the base model with its untrained, seeded classification head",
    MAJORITY: "always the majority class of the training split",
    TFIDF_LOGREG: "TF-IDF word 1-2 grams + logistic regression fit on the training split",
}


def majority_probabilities(train_labels: np.ndarray, n: int) -> np.ndarray:
    """P(positive) of the majority-class baseline: the majority class with certainty."""
    majority = int(np.mean(train_labels) >= DECISION_THRESHOLD)
    return np.full(n, float(majority))


def fit_tfidf_logreg(sentences: list[str], labels: np.ndarray, *, seed: int = 42) -> Pipeline:
    """TF-IDF over word 1-2 grams + logistic regression."""
    model = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        LogisticRegression(C=4.0, max_iter=2000, random_state=seed),
    )
    return model.fit(sentences, labels)


def evaluate_baselines(
    prepared: PreparedData,
    *,
    model: str,
    seed: int = 42,
    max_length: int = 128,
    batch_size: int = 64,
    device: str = "auto",
    precision: str = "auto",
) -> dict[str, Evaluation]:
    """Evaluate every baseline on the test split; all are fit on the same training split."""
    train, test = read_split(prepared.train_path), read_split(prepared.test_path)
    texts, labels = test["sentence"].tolist(), test["label"].to_numpy()
    train_labels = train["label"].to_numpy()

    head = SentimentAnalyzer.from_base_model(
        model,
        seed=seed,
        max_length=max_length,
        batch_size=batch_size,
        device=device,
        precision=precision,
    )
    tfidf = fit_tfidf_logreg(train["sentence"].tolist(), train_labels, seed=seed)
    probabilities = {
        PRETRAINED_HEAD: head.predict_proba(texts)[:, 1],
        MAJORITY: majority_probabilities(train_labels, len(texts)),
        TFIDF_LOGREG: tfidf.predict_proba(texts)[:, 1],
    }
    return {name: evaluate_probabilities(name, labels, p) for name, p in probabilities.items()}
