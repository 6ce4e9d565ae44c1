"""Score a saved model directory on a prepared split: load it, predict, and compute the metrics
with :mod:`.evaluation` (which takes arrays and loads no model, as ``sklearn.metrics`` does)."""

import time

from sentiment_lora.training.data import read_split
from sentiment_lora.training.evaluation import Evaluation, evaluate_probabilities
from sentiment_lora.training.inference import load_analyzer


def evaluate_saved_model(
    model_dir: str,
    split_path: str,
    *,
    name: str,
    batch_size: int = 64,
    device: str = "auto",
    precision: str = "auto",
) -> Evaluation:
    """Load a model directory (a config's or an ensemble's) and evaluate it on a prepared
    split (parquet); ``predict_seconds`` is the time of the predictions, loading excluded."""
    frame = read_split(split_path)
    analyzer = load_analyzer(model_dir, batch_size=batch_size, device=device, precision=precision)
    started = time.perf_counter()
    probs = analyzer.predict_proba(frame["sentence"].tolist())[:, 1]
    seconds = time.perf_counter() - started
    return evaluate_probabilities(name, frame["label"].tolist(), probs, predict_seconds=seconds)
