"""Selecting the best config, and a fresh base model for every config trained."""

import itertools
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import sentiment_lora.training.lora as lora
from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig
from sentiment_lora.training.data import prepare_sst2
from sentiment_lora.training.evaluation import ACCURACY, F1_MACRO
from sentiment_lora.training.lora import TrainingResult, train_lora
from sentiment_lora.training.selection import select_best


def _result(name: str, *, f1: float, accuracy: float, trainable: int) -> TrainingResult:
    return TrainingResult(
        config_name=name,
        hyperparams=LoraHyperparams(name=name, learning_rate=1e-3, epochs=1),
        adapter_dir=f"/runs/{name}/adapter",
        validation_metrics={ACCURACY: accuracy, F1_MACRO: f1, "loss": 0.5},
        history=[],
        best_epoch=1.0,
        train_seconds=1.0,
        train_examples=10,
        examples_per_second=10.0,
        trainable_parameters=trainable,
        total_parameters=1_000_000,
        target_modules=["q_lin", "v_lin"],
        device="cpu",
        resumed_from_checkpoint=False,
    )


def _best_in_every_order(results: list[TrainingResult]) -> str:
    names = {select_best(list(order)).config_name for order in itertools.permutations(results)}
    assert len(names) == 1, f"the choice depends on the order: {names}"
    return names.pop()


def test_highest_macro_f1_wins_over_accuracy_and_size() -> None:
    results = [
        _result("f1", f1=0.90, accuracy=0.80, trainable=9_000),
        _result("accuracy", f1=0.89, accuracy=0.95, trainable=9_000),
        _result("small", f1=0.89, accuracy=0.80, trainable=100),
    ]
    assert _best_in_every_order(results) == "f1"


def test_equal_macro_f1_is_broken_by_accuracy_before_size() -> None:
    results = [
        _result("accuracy", f1=0.90, accuracy=0.92, trainable=9_000),
        _result("small", f1=0.90, accuracy=0.91, trainable=100),
        _result("worse", f1=0.85, accuracy=0.99, trainable=10),
    ]
    assert _best_in_every_order(results) == "accuracy"


def test_equal_macro_f1_and_accuracy_prefer_fewer_trainable_parameters() -> None:
    results = [
        _result("large", f1=0.90, accuracy=0.92, trainable=9_000),
        _result("small", f1=0.90, accuracy=0.92, trainable=100),
        _result("medium", f1=0.90, accuracy=0.92, trainable=1_000),
    ]
    assert _best_in_every_order(results) == "small"


def test_select_best_rejects_an_empty_list() -> None:
    with pytest.raises(ValueError, match="no trained configs"):
        select_best([])


# --- a fresh base model per config --------------------------------------------------------


def _adapter_weights(result: TrainingResult) -> dict[str, torch.Tensor]:
    return load_file(Path(result.adapter_dir) / "adapter_model.safetensors")


def test_every_config_trains_a_fresh_base_model(
    tiny_sst2: Path, tiny_distilbert_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    """Training B after A gives B's weights from training B alone: nothing of A carries over."""
    prepared = prepare_sst2(DataConfig(data_dir=str(tiny_sst2)), tmp_path / "prep")
    train = TrainConfig(model=str(tiny_distilbert_dir), max_length=16)
    first = LoraHyperparams(name="first", learning_rate=5e-3, epochs=1, batch_size=8, lora_r=4)
    second = LoraHyperparams(name="second", learning_rate=1e-3, epochs=1, batch_size=8)
    alone = _adapter_weights(train_lora(prepared, second, train, tmp_path / "alone"))

    loaded = []  # kept alive so that distinct objects cannot share an id
    real_load = lora.load_classifier

    def recording_load(source: str):
        loaded.append(real_load(source))
        return loaded[-1]

    monkeypatch.setattr(lora, "load_classifier", recording_load)
    train_lora(prepared, first, train, tmp_path / "first")
    after = _adapter_weights(train_lora(prepared, second, train, tmp_path / "second"))

    assert len(loaded) == 2 and loaded[0] is not loaded[1]
    assert after.keys() == alone.keys()
    for name, tensor in alone.items():
        assert torch.equal(after[name], tensor), f"{name} differs after training another config"
