"""Length-sorted batched scoring shared by the PyTorch and ONNX Runtime backends."""

from collections.abc import Callable, Sequence

import numpy as np
from transformers import PreTrainedTokenizerBase

# A backend's forward pass: the tokenizer's numpy batch -> logits of shape (batch, classes).
Forward = Callable[[dict[str, np.ndarray]], np.ndarray]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64."""
    z = logits.astype(np.float64)
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def batched_probabilities(
    texts: Sequence[str],
    tokenizer: PreTrainedTokenizerBase,
    forward: Forward,
    *,
    max_length: int,
    batch_size: int,
    classes: int = 2,
) -> np.ndarray:
    """Class probabilities, shape (len(texts), classes), scored in batches sorted by length.

    Sorting by token count keeps padding (wasted compute) small; the output keeps input order.
    """
    texts = list(texts)
    out = np.zeros((len(texts), classes), dtype=np.float64)
    if not texts:
        return out
    ids = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    order = np.argsort([len(x) for x in ids], kind="stable")
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        batch = tokenizer(
            [texts[i] for i in idx],
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="np",
        )
        out[idx] = softmax(forward(dict(batch)))
    return out
