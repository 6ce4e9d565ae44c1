"""Serve an ONNX export (see :mod:`onnx_export`) with ONNX Runtime on the CPU."""

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sentiment_lora.deployment.batching import batched_probabilities
from sentiment_lora.training.data import LABEL_NAMES
from sentiment_lora.training.inference import Prediction, SentimentAnalyzer
from sentiment_lora.training.modeling import ModelLoadError, load_tokenizer, read_model_metadata


def is_onnx_export(model_dir: Path | str) -> bool:
    """Whether ``model_dir`` is an ONNX export written by this project."""
    try:
        return (read_model_metadata(Path(model_dir)).model_extra or {}).get("format") == "onnx"
    except ModelLoadError:
        return False


class OnnxSentimentAnalyzer:
    """The ONNX Runtime twin of :class:`~sentiment_lora.training.inference.SentimentAnalyzer`.

    Same tokenizer, truncation, length-sorted batching and softmax, so both backends give the
    same output format; only the forward pass differs.
    """

    def __init__(self, model_dir: Path | str, *, batch_size: int = 64, threads: int | None = None):
        import onnxruntime as ort

        model_dir = Path(model_dir)
        meta = read_model_metadata(model_dir)
        extra = meta.model_extra or {}
        if extra.get("format") != "onnx":
            raise ModelLoadError(
                f"model-dir: {model_dir} is not an ONNX export; run "
                f"`sentiment-lora export {model_dir} --format onnx` first"
            )
        path = model_dir / extra.get("onnx_file", "model.onnx")
        if not path.is_file():
            raise ModelLoadError(f"model-dir: {path} is missing; export the model again")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or len(os.sched_getaffinity(0))
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors for bad files
            raise ModelLoadError(f"model-dir: {path} is not a loadable ONNX model: {exc}") from exc
        self.inputs = [i.name for i in self.session.get_inputs()]
        self.tokenizer = load_tokenizer(str(model_dir))
        self.max_length = meta.max_length
        self.batch_size = batch_size
        self.metadata = meta

    def _forward(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        feed = {name: batch[name].astype(np.int64) for name in self.inputs}
        return self.session.run(None, feed)[0]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape (len(texts), 2)."""
        return batched_probabilities(
            texts,
            self.tokenizer,
            self._forward,
            max_length=self.max_length,
            batch_size=self.batch_size,
            classes=len(LABEL_NAMES),
        )

    def predict(self, texts: Sequence[str]) -> "list[Prediction]":
        """Label, confidence and both probabilities for each text (as the PyTorch backend)."""
        return SentimentAnalyzer.predict(self, texts)  # type: ignore[arg-type]
