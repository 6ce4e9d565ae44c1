"""Successive halving: a config stopped at its first rung keeps its checkpoint, a promoted one
resumes from it and ends where an uninterrupted run ends; the promotion rule and bookkeeping.

A tiny random DistilBERT trains on `tiny_prepared` (31 training rows; batch 4: 8 steps an
epoch, 2 epochs).
"""

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from sentiment_lora.config import (
    LoraHyperparams,
    TrainConfig,
    build_pipeline_config,
)
from sentiment_lora.training.halving import first_rungs, merge, promoted
from sentiment_lora.training.lora import (
    CHECKPOINT_DIR,
    FIRST_RUNG_DIR,
    TrainingResult,
    stop_step,
    train_lora,
)

HP = LoraHyperparams(name="tiny", learning_rate=5e-3, epochs=2, lora_r=4, batch_size=4)


@pytest.fixture(scope="module")
def train(tiny_distilbert_dir: Path) -> TrainConfig:
    return TrainConfig(model=str(tiny_distilbert_dir), max_length=16, evals_per_epoch=2)


def _weights(adapter_dir: str) -> dict[str, torch.Tensor]:
    return load_file(Path(adapter_dir) / "adapter_model.safetensors")


def test_first_rung_stops_keeps_its_checkpoint_and_a_promoted_run_ends_like_a_whole_one(
    tiny_prepared, train, tmp_path
) -> None:
    whole = train_lora(tiny_prepared, HP, train, tmp_path / "whole")

    halved_dir = tmp_path / "halved"
    first = train_lora(tiny_prepared, HP, train, halved_dir, stop_at_epoch=0.5)
    assert first.stopped_at_epoch == pytest.approx(0.5)
    assert Path(first.adapter_dir) == halved_dir / FIRST_RUNG_DIR / "adapter"
    assert [r.epoch for r in first.history] == [pytest.approx(0.5)]
    assert list((halved_dir / CHECKPOINT_DIR).glob("checkpoint-*")), "the checkpoint must stay"
    assert not (halved_dir / "adapter").exists()

    final = train_lora(tiny_prepared, HP, train, halved_dir)
    assert final.resumed_from_checkpoint and final.stopped_at_epoch is None
    assert Path(final.adapter_dir) == halved_dir / "adapter"
    assert not (halved_dir / CHECKPOINT_DIR).exists()
    # The same evaluations, losses and final weights as the run that was never stopped.
    assert [r.epoch for r in final.history] == [r.epoch for r in whole.history]
    for resumed, uninterrupted in zip(final.history, whole.history, strict=True):
        assert resumed.eval_loss == pytest.approx(uninterrupted.eval_loss, rel=1e-4)
    got, want = _weights(final.adapter_dir), _weights(whole.adapter_dir)
    assert got.keys() == want.keys()
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-4, atol=1e-5)
    # It went on past the first rung: four evaluations (every half epoch) against one.
    assert [r.epoch for r in final.history] == [0.5, 1.0, 1.5, 2.0]


def test_stop_step_and_first_rungs() -> None:
    assert stop_step(0.1, steps_per_epoch=1000, max_steps=1000) == 100
    assert stop_step(0.001, steps_per_epoch=100, max_steps=100) == 1  # at least one step
    assert stop_step(1.0, steps_per_epoch=100, max_steps=100) is None  # not before the end
    assert stop_step(None, steps_per_epoch=100, max_steps=100) is None
    short = HP.model_copy(update={"name": "short", "epochs": 1})
    assert first_rungs([HP, short], 0.1) == {"tiny": 0.1, "short": 0.1}
    assert first_rungs([HP, short], 1.0) == {"tiny": 1.0, "short": None}  # not longer: no stop
    assert (
        first_rungs([HP, short], 0.0)
        == first_rungs([HP, short], None)
        == {
            "tiny": None,
            "short": None,
        }
    )
    assert first_rungs([HP], 0.1) == {"tiny": None}  # one config: nothing to choose between


def _result(name: str, f1: float, *, stopped: float | None = 0.1, seconds=10.0, rate=100.0):
    return TrainingResult(
        config_name=name,
        hyperparams=HP.model_copy(update={"name": name}),
        adapter_dir=f"/x/{name}",
        validation_metrics={"accuracy": f1, "f1_macro": f1},
        history=[],
        best_epoch=0.1,
        train_seconds=seconds,
        train_examples=1000,
        examples_per_second=rate,
        trainable_parameters=10,
        total_parameters=100,
        target_modules=["q"],
        device="cpu",
        resumed_from_checkpoint=False,
        stopped_at_epoch=stopped,
    )


def test_the_best_stopped_config_is_promoted_and_its_rungs_add_up() -> None:
    results = [
        _result("a", 0.80),
        _result("b", 0.86),
        _result("c", 0.84),
        _result("d", 0.99, stopped=None),
    ]
    assert promoted(results) == ["b"]  # "d" already trained to its end: not a candidate
    assert promoted(results, keep=2) == ["b", "c"]
    assert promoted([_result("d", 0.9, stopped=None)]) == []

    first = _result("b", 0.86, seconds=10.0, rate=100.0)  # 1,000 examples
    final = _result("b", 0.90, stopped=None, seconds=30.0, rate=300.0)  # 9,000 examples
    merged = merge(first, final)
    assert merged.train_seconds == 40.0
    assert merged.examples_per_second == pytest.approx(10_000 / 40.0)
    assert merged.validation_metrics == final.validation_metrics
    assert merged.stopped_at_epoch is None


def test_halving_is_an_option_every_profile_leaves_off() -> None:
    for profile in ("quick", "full"):
        assert build_pipeline_config(profile).train.first_rung_epochs == 0
    on = build_pipeline_config("quick", train=TrainConfig(first_rung_epochs=0.1))
    assert on.train.first_rung_epochs == 0.1
    with pytest.raises(ValueError, match="first_rung_epochs"):
        TrainConfig(first_rung_epochs=-1)
