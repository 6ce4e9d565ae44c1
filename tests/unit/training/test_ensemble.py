"""The ensemble candidate: saved as one model directory, predicted as the mean of its members,
evaluated, selected, gated, promoted and refused by export like any model.

Two adapters on the tiny random DistilBERT train on `tiny_prepared` (seconds).
"""

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sentiment_lora.config import LoraHyperparams, TrainConfig, build_pipeline_config
from sentiment_lora.errors import UserError
from sentiment_lora.operations.gate import challenge_champion, model_key, without_export
from sentiment_lora.operations.registry import champion_model_dir, promote, read_champion
from sentiment_lora.training.ensemble import (
    ENSEMBLE_FILE,
    ensemble_result,
    member_dirs,
    recorded_hyperparameters,
    top_k,
    weights_identity,
    write_ensemble,
)
from sentiment_lora.training.evaluation import ValidationMetrics, evaluate_probabilities
from sentiment_lora.training.inference import EnsembleAnalyzer, SentimentAnalyzer, load_analyzer
from sentiment_lora.training.lora import TrainingResult, train_lora
from sentiment_lora.training.modeling import ModelLoadError
from sentiment_lora.training.scoring import evaluate_saved_model
from sentiment_lora.training.selection import select_best

FP32 = {"device": "cpu", "precision": "fp32"}
SENTENCES = ["a truly great and moving film", "boring from start to finish", "an odd one"]


@pytest.fixture(scope="module")
def members(tiny_prepared, tiny_distilbert_dir, tmp_path_factory) -> list[TrainingResult]:
    train = TrainConfig(model=str(tiny_distilbert_dir), max_length=16, precision="fp32")
    tmp = tmp_path_factory.mktemp("members")
    return [
        train_lora(
            tiny_prepared,
            LoraHyperparams(name=name, learning_rate=lr, epochs=1, lora_r=4, batch_size=8),
            train,
            tmp / name,
        )
        for name, lr in (("slow", 1e-3), ("fast", 5e-3))
    ]


@pytest.fixture(scope="module")
def ensemble_dir(members, tmp_path_factory) -> Path:
    return write_ensemble(members, tmp_path_factory.mktemp("ens") / "ensemble")


def _copy(ensemble_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(ensemble_dir, tmp_path / "copy"))


def test_the_saved_ensemble_predicts_the_mean_of_its_members(members, ensemble_dir) -> None:
    assert json.loads((ensemble_dir / ENSEMBLE_FILE).read_text())["method"] == "mean-probability"
    analyzer = load_analyzer(ensemble_dir, **FP32)
    assert isinstance(analyzer, EnsembleAnalyzer) and len(analyzer.members) == 2
    separate = [
        SentimentAnalyzer.load(m.adapter_dir, **FP32).predict_proba(SENTENCES) for m in members
    ]
    assert not np.allclose(separate[0], separate[1])  # two different models
    mean = analyzer.predict_proba(SENTENCES)
    np.testing.assert_allclose(mean, (separate[0] + separate[1]) / 2, atol=1e-6)
    predictions = analyzer.predict(SENTENCES)
    assert [p.confidence for p in predictions] == pytest.approx(mean.max(axis=1).tolist())
    # A single config's directory still loads as one model.
    assert isinstance(load_analyzer(members[0].adapter_dir, **FP32), SentimentAnalyzer)


def test_it_is_evaluated_by_the_same_function_as_any_model(
    members, ensemble_dir, tiny_prepared
) -> None:
    ensemble = evaluate_saved_model(
        str(ensemble_dir), tiny_prepared.test_path, name="ensemble-top2", **FP32
    )
    singles = [
        evaluate_saved_model(m.adapter_dir, tiny_prepared.test_path, name=m.config_name, **FP32)
        for m in members
    ]
    mean = np.mean([s.prob_positive for s in singles], axis=0)
    expected = evaluate_probabilities("ensemble-top2", singles[0].labels, mean)
    assert ensemble.metrics == expected.metrics
    assert ensemble.predict_seconds is not None and ensemble.predict_seconds > 0


def test_it_competes_with_the_configs_under_the_selection_rule(
    members, ensemble_dir, tiny_prepared
) -> None:
    validation = evaluate_saved_model(
        str(ensemble_dir), tiny_prepared.validation_path, name="ensemble-top2", **FP32
    )
    result = ensemble_result(members, ensemble_dir, validation)
    assert result.config_name == "ensemble-top2" and result.members == ["slow", "fast"]
    assert result.validation_metrics.accuracy == validation.metrics.accuracy
    assert result.validation_metrics.loss > 0
    assert result.trainable_parameters == sum(m.trainable_parameters for m in members)
    assert result.train_seconds == pytest.approx(sum(m.train_seconds for m in members))
    assert recorded_hyperparameters(result) == {
        "ensemble": "mean-probability",
        "members": ["slow", "fast"],
    }

    def scored(r: TrainingResult, f1: float) -> TrainingResult:
        metrics = ValidationMetrics(accuracy=f1, f1_macro=f1)
        return r.model_copy(update={"validation_metrics": metrics})

    configs = [scored(members[0], 0.80), scored(members[1], 0.85)]
    assert select_best([*configs, scored(result, 0.86)]).config_name == "ensemble-top2"
    assert select_best([*configs, scored(result, 0.84)]).config_name == "fast"
    # A tie goes to the config: it has fewer trainable parameters.
    assert select_best([*configs, scored(result, 0.85)]).config_name == "fast"
    # top_k ranks by the same rule and leaves out configs stopped at a first rung.
    assert [r.config_name for r in top_k(configs, 2)] == ["fast", "slow"]
    stopped = configs[1].model_copy(update={"stopped_at_epoch": 0.5})
    assert [r.config_name for r in top_k([configs[0], stopped], 2)] == ["slow"]


def test_its_identity_is_its_members_weights(members, ensemble_dir, tmp_path) -> None:
    assert weights_identity(ensemble_dir) == weights_identity(_copy(ensemble_dir, tmp_path))
    assert model_key(ensemble_dir) == weights_identity(ensemble_dir)[:20]
    reversed_dir = write_ensemble(members[::-1], tmp_path / "reversed")
    assert weights_identity(reversed_dir) != weights_identity(ensemble_dir)
    assert weights_identity(ensemble_dir) not in {weights_identity(m.adapter_dir) for m in members}
    assert weights_identity(tmp_path / "nothing").startswith("missing:")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / ENSEMBLE_FILE).write_text("{"), "ensemble.json:1: invalid JSON"),
        (
            lambda d: (d / ENSEMBLE_FILE).write_text(
                (d / ENSEMBLE_FILE).read_text().replace("members/slow", "../slow")
            ),
            "'../slow' is not members/<name>",
        ),
        (lambda d: shutil.rmtree(d / "members" / "fast"), "member 'fast'"),
        (
            lambda d: (d / ENSEMBLE_FILE).write_text('{"members": []}'),
            "members: List should have at least 2 items",
        ),
    ],
)
def test_a_damaged_ensemble_is_named_before_any_weights_load(
    ensemble_dir, tmp_path, damage, message
) -> None:
    copy = _copy(ensemble_dir, tmp_path)
    damage(copy)
    with pytest.raises(ModelLoadError, match="ensemble.json") as error:
        load_analyzer(copy, **FP32)
    assert message in str(error.value)


def test_what_takes_one_model_refuses_an_ensemble_by_name(ensemble_dir, tmp_path) -> None:
    from sentiment_lora.deployment.onnx_export import export_onnx

    with pytest.raises(ModelLoadError, match="is an ensemble .*slow, fast.*members"):
        SentimentAnalyzer.load(ensemble_dir)
    with pytest.raises(UserError, match="is an ensemble of slow, fast; an ONNX export is one"):
        export_onnx(ensemble_dir, tmp_path / "onnx", quantize="int8")
    assert not (tmp_path / "onnx").exists()


def test_the_gate_promotes_it_and_the_registry_serves_it(
    members, ensemble_dir, tiny_prepared, tmp_path
) -> None:
    from sentiment_lora.training.data import read_split

    test = evaluate_saved_model(str(ensemble_dir), tiny_prepared.test_path, name="e", **FP32)
    sentences = read_split(tiny_prepared.test_path)["sentence"].tolist()
    registry = tmp_path / "registry"
    decision = challenge_champion(
        test,
        model_dir=ensemble_dir,
        run_id="run-1",
        sentences=sentences,
        registry_dir=registry,
        alpha=0.05,
        inference_options=FP32,
    )
    assert decision.promoted and decision.challenger.model_key == model_key(ensemble_dir)
    # Asked to check the export, the gate refuses it: an ensemble has no single ONNX graph.
    refused = without_export(decision, "ensemble-top2 is 2 models; ONNX export takes one")
    assert not refused.promoted and "ONNX export takes one" in refused.reason

    promote(registry, decision.challenger, ensemble_dir, hyperparameters={"members": ["a"]})
    assert read_champion(registry).run_id == "run-1"
    served = load_analyzer(champion_model_dir(registry), **FP32)
    np.testing.assert_allclose(
        served.predict_proba(SENTENCES),
        load_analyzer(ensemble_dir, **FP32).predict_proba(SENTENCES),
    )
    assert [p.name for p in member_dirs(champion_model_dir(registry))] == ["slow", "fast"]


def test_the_option_is_checked_against_the_grid() -> None:
    grid = [LoraHyperparams(name=n, learning_rate=1e-3, epochs=1) for n in ("a", "b", "c")]
    assert build_pipeline_config("quick", grid=grid, train=TrainConfig(ensemble_top_k=3))
    with pytest.raises(ValueError, match="at least 2 configs"):
        TrainConfig(ensemble_top_k=1)
    with pytest.raises(ValueError, match="train.ensemble_top_k: 4 configs, but the grid has 3"):
        build_pipeline_config("quick", grid=grid, train=TrainConfig(ensemble_top_k=4))
    with pytest.raises(ValueError, match="successive halving"):
        build_pipeline_config(
            "quick", grid=grid, train=TrainConfig(ensemble_top_k=2, first_rung_epochs=0.5)
        )


def test_the_report_and_the_card_say_what_it_averages_and_what_it_costs(tmp_path) -> None:
    from sentiment_lora.reporting.context import build_report_context
    from sentiment_lora.reporting.render import render_html
    from sentiment_lora.reporting.results import load_results
    from sentiment_lora.training.model_card import render_model_card
    from tests.unit.reporting.test_report import copy_run, edit_results
    from tests.unit.training.test_model_card import _facts

    run_dir = copy_run(tmp_path / "run")
    names: list[str] = []

    def add_ensemble(summary: dict) -> None:
        experiments = summary["hyperparameter_experiments"]
        names.extend(e["training"]["config_name"] for e in experiments[:2])
        for e, seconds in zip(experiments[:2], (1.5, 2.0), strict=True):
            e["test_predict_seconds"] = seconds
        training = {
            **experiments[0]["training"],
            "config_name": "ensemble-top2",
            "members": names,
            "history": [],
        }
        ensemble = {**experiments[0], "training": training, "test_predict_seconds": 3.6}
        experiments.append(ensemble)
        summary["best_config"].update(name="ensemble-top2", members=names)

    edit_results(run_dir, add_ensemble)
    predictions = pd.read_csv(run_dir / "test_predictions.csv")
    columns = [f"prob_positive:{name}" for name in names]
    predictions["prob_positive:ensemble-top2"] = predictions[columns].mean(axis=1)
    predictions.to_csv(run_dir / "test_predictions.csv", index=False)
    context = build_report_context(load_results(run_dir), plots={})
    first = context["summary_sentences"][0]
    assert first.startswith(f"Of {len(load_results(run_dir).hyperparameter_experiments) - 1} ")
    assert f"ensemble-top2 (the mean probability of {names[0]} and {names[1]})" in first
    sentence = context["search"]["ensemble"]
    assert "2 forward passes per sentence (test predictions 3.6 s against 1.5 s and 2.0 s" in (
        sentence
    )
    assert "was selected" in sentence
    (row,) = [c for c in context["search"]["configs"] if c["name"] == "ensemble-top2"]
    assert row["target_modules"] == f"mean probability of {names[0]} + {names[1]}"
    html = render_html(run_dir).read_text(encoding="utf-8")
    assert "Ensemble candidate: ensemble-top2" in html

    card = render_model_card(_facts(config_name="ensemble-top2", members=("a", "b")))
    assert "An ensemble of 2 fine-tuned models" in card and "- `members/a`" in card
    assert "2 forward passes" in card and "## Training configuration" not in card
    assert "## Training configuration" in render_model_card(_facts())


def test_writing_an_ensemble_again_keeps_replaces_or_repairs_it(members, tmp_path) -> None:
    out = write_ensemble(members, tmp_path / "ens")
    spec = (out / ENSEMBLE_FILE).stat().st_mtime_ns
    assert write_ensemble(members, out) == out  # the same members: kept as written
    assert (out / ENSEMBLE_FILE).stat().st_mtime_ns == spec
    write_ensemble(members[::-1], out)  # other members: replaced
    assert [p.name for p in member_dirs(out)] == ["fast", "slow"]
    shutil.rmtree(out / "members" / "slow")  # damaged: replaced by a whole one
    write_ensemble(members[::-1], out)
    assert [p.name for p in member_dirs(out)] == ["fast", "slow"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ens"]  # no temporary left


def test_a_failed_write_leaves_nothing(members, tmp_path) -> None:
    gone = members[1].model_copy(update={"adapter_dir": str(tmp_path / "gone")})
    with pytest.raises(FileNotFoundError):
        write_ensemble([members[0], gone], tmp_path / "ens")
    assert list(tmp_path.iterdir()) == []
