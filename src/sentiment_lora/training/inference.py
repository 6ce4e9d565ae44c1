"""Batched inference with a trained (or untrained) sentiment classifier."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from peft import PeftModel
from pydantic import BaseModel, ConfigDict
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from sentiment_lora.training.data import LABEL_NAMES
from sentiment_lora.training.ensemble import is_ensemble_dir, member_dirs
from sentiment_lora.training.model_files import check_model_dir
from sentiment_lora.training.modeling import (
    METADATA_FILE,
    ModelLoadError,
    ModelMetadata,
    first_line,
    load_classifier,
    load_tokenizer,
    pick_device,
    read_model_metadata,
    resolve_model_source,
    resolve_precision,
)
from sentiment_lora.training.portable_base import register_base


class Prediction(BaseModel):
    """One sentence's prediction."""

    model_config = ConfigDict(frozen=True)
    label: str
    confidence: float
    probabilities: dict[str, float]


class SentimentAnalyzer:
    """A sentiment classifier ready for batched prediction.

    Use :meth:`load` for a model directory written by the pipeline (a LoRA adapter, merged into
    the base weights for speed) or :meth:`from_base_model` for an untrained classification head.
    ``precision`` 'auto' runs bfloat16 weights where the device computes bf16 natively (about
    2x the fp32 speed on AVX-512 BF16 CPUs; see bench/RESULTS.md for the accuracy check).
    """

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        *,
        max_length: int = 128,
        batch_size: int = 64,
        device: str = "auto",
        precision: str = "auto",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = pick_device(device)
        self.precision = resolve_precision(precision, self.device)
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        self.model = model.to(device=self.device, dtype=dtype).eval()
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.batch_size = batch_size

    @classmethod
    def load(
        cls,
        model_dir: Path | str,
        *,
        batch_size: int = 64,
        device: str = "auto",
        precision: str = "auto",
    ) -> "SentimentAnalyzer":
        """Load a model directory saved by the pipeline (adapter + tokenizer + metadata).

        The directory's files are checked first (:func:`check_model_dir`): a damaged one raises
        :class:`ModelLoadError` naming the file; weights load from safetensors only.
        """
        if (Path(model_dir) / METADATA_FILE).is_file():  # a fully fine-tuned model: no adapter
            meta = read_model_metadata(Path(model_dir))
            if (meta.model_extra or {}).get("method") == "full":
                return cls._load_full_model(Path(model_dir), meta, batch_size, device, precision)
        files = check_model_dir(model_dir)
        pick_device(device)  # before the weights are read: 'cuda' without a GPU fails fast
        register_base(files.base)  # also checks the embedded base's revision
        base = load_classifier(resolve_model_source(files.metadata.base_model))
        try:
            model = PeftModel.from_pretrained(base, files.path).merge_and_unload()
        except (KeyError, RuntimeError, TypeError, ValueError) as exc:
            raise ModelLoadError(
                f"model-dir: {files.path}: the adapter does not fit its base model "
                f"{files.metadata.base_model} ({first_line(exc)})"
            ) from exc
        tokenizer = load_tokenizer(str(files.path.resolve()))
        return cls(
            model,
            tokenizer,
            max_length=files.metadata.max_length,
            batch_size=batch_size,
            device=device,
            precision=precision,
        )

    @classmethod
    def _load_full_model(
        cls, model_dir: Path, meta: ModelMetadata, batch_size: int, device: str, precision: str
    ) -> "SentimentAnalyzer":
        """A fully fine-tuned model directory (method 'full'): the weights are the model."""
        return cls(
            load_classifier(str(model_dir)),
            load_tokenizer(str(model_dir)),
            max_length=meta.max_length,
            batch_size=batch_size,
            device=device,
            precision=precision,
        )

    @classmethod
    def from_base_model(
        cls,
        model: str,
        *,
        seed: int = 42,
        max_length: int = 128,
        batch_size: int = 64,
        device: str = "auto",
        precision: str = "auto",
    ) -> "SentimentAnalyzer":
        """The base model with a freshly initialised (seeded) classification head."""
        from transformers import set_seed

        set_seed(seed)
        source = resolve_model_source(model)
        return cls(
            load_classifier(source),
            load_tokenizer(source),
            max_length=max_length,
            batch_size=batch_size,
            device=device,
            precision=precision,
        )

    @torch.inference_mode()
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, shape (len(texts), 2). Batches are sorted by length."""
        texts = list(texts)
        out = np.zeros((len(texts), len(LABEL_NAMES)), dtype=np.float64)
        if not texts:
            return out
        lengths = [
            len(ids)
            for ids in self.tokenizer(texts, truncation=True, max_length=self.max_length)[
                "input_ids"
            ]
        ]
        order = np.argsort(lengths, kind="stable")
        for start in range(0, len(texts), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = self.tokenizer(
                [texts[i] for i in idx],
                truncation=True,
                max_length=self.max_length,
                padding=True,
                return_tensors="pt",
            ).to(self.device)
            logits = self.model(**batch).logits.float()
            out[idx] = torch.softmax(logits, dim=-1).cpu().numpy()
        return out

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Label, confidence and both probabilities for each text."""
        return predictions(self.predict_proba(texts))


def predictions(probs: np.ndarray) -> list[Prediction]:
    """One :class:`Prediction` per row of class probabilities."""
    results = []
    for row in probs:
        best = int(row.argmax())
        results.append(
            Prediction(
                label=LABEL_NAMES[best],
                confidence=float(row[best]),
                probabilities={name: float(row[i]) for i, name in enumerate(LABEL_NAMES)},
            )
        )
    return results


class EnsembleAnalyzer:
    """An ensemble directory (``training.ensemble``) ready for prediction: every member
    predicts, the probabilities are averaged. Costs one forward pass per member."""

    def __init__(self, members: Sequence[SentimentAnalyzer]) -> None:
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 members, got {len(members)}")
        self.members = list(members)
        self.device = members[0].device
        self.precision = members[0].precision
        self.batch_size = members[0].batch_size

    @classmethod
    def load(
        cls,
        model_dir: Path | str,
        *,
        batch_size: int = 64,
        device: str = "auto",
        precision: str = "auto",
    ) -> "EnsembleAnalyzer":
        """Load every member of an ensemble directory (each checked as any model directory)."""
        return cls(
            [
                SentimentAnalyzer.load(
                    member, batch_size=batch_size, device=device, precision=precision
                )
                for member in member_dirs(model_dir)
            ]
        )

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """The mean of the members' class probabilities, shape (len(texts), 2)."""
        texts = list(texts)
        return np.mean([member.predict_proba(texts) for member in self.members], axis=0)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Label, confidence and both probabilities for each text."""
        return predictions(self.predict_proba(texts))


def load_analyzer(
    model_dir: Path | str,
    *,
    batch_size: int = 64,
    device: str = "auto",
    precision: str = "auto",
) -> SentimentAnalyzer | EnsembleAnalyzer:
    """Load any model directory the pipeline writes: one config's model or an ensemble."""
    kind = EnsembleAnalyzer if is_ensemble_dir(model_dir) else SentimentAnalyzer
    return kind.load(model_dir, batch_size=batch_size, device=device, precision=precision)
