"""The accuracy-lever bench: its configs, the ensemble row, the spread over seeds, the table."""

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

from levers import (  # noqa: E402
    BASELINE,
    LEVERS,
    LeverRun,
    ensemble_run,
    select_levers,
)
from levers_table import render_table, seed_spread  # noqa: E402

from sentiment_lora.config import GRIDS  # noqa: E402
from sentiment_lora.training.evaluation import evaluate_probabilities  # noqa: E402

# What each config changes against the baseline (every other field equal).
EXPECTED_CHANGES = {
    "all-r16-lr1e-3-e4": {},
    "rslora-r64": {"use_rslora": True, "lora_r": 64, "lora_alpha": 8},
    "loraplus-x8": {"loraplus_lr_ratio": 8, "learning_rate": 5e-4},
    "layernorm": {"train_layernorm": True},
    "cosine-e4": {"lr_scheduler": "cosine"},
    "cosine-e6": {"lr_scheduler": "cosine", "epochs": 6},
    "combined-e6": {
        "use_rslora": True,
        "lora_r": 64,
        "lora_alpha": 8,
        "loraplus_lr_ratio": 8,
        "learning_rate": 5e-4,
        "train_layernorm": True,
        "lr_scheduler": "cosine",
        "epochs": 6,
    },
}


def test_the_baseline_is_todays_best_full_profile_config() -> None:
    assert BASELINE == GRIDS["lora"][0] and BASELINE.name == "all-r16-lr1e-3-e4"


@pytest.mark.parametrize("name", sorted(EXPECTED_CHANGES))
def test_each_lora_config_pulls_only_its_levers(name: str) -> None:
    base, hp = BASELINE.model_dump(), LEVERS[name].hp.model_dump()
    changed = {k: v for k, v in hp.items() if k != "name" and v != base[k]}
    assert changed == EXPECTED_CHANGES[name]


def test_full_fine_tuning_configs() -> None:
    full = {n: lv.hp for n, lv in LEVERS.items() if lv.hp.method == "full"}
    assert sorted(full) == ["full-lr3e-5-e3", "full-lr5e-5-e3"]
    assert {hp.learning_rate for hp in full.values()} == {3e-5, 5e-5}
    assert {(hp.epochs, hp.batch_size) for hp in full.values()} == {(3, BASELINE.batch_size)}


def test_select_levers_by_name_and_epochs_override() -> None:
    chosen = select_levers("layernorm, full-lr3e-5-e3", epochs=1)
    assert [lv.hp.name for lv in chosen] == ["layernorm", "full-lr3e-5-e3"]
    assert {lv.hp.epochs for lv in chosen} == {1}
    assert all("epochs overridden" in lv.lever for lv in chosen)
    assert [lv.hp.name for lv in select_levers(None)] == list(LEVERS)
    with pytest.raises(ValueError, match="unknown"):
        select_levers("layernorm,nope")


def _run(tmp_path: Path, name: str, seed: int, val: float, probs: list[float]) -> LeverRun:
    labels = [1, 0, 1, 0]
    evaluation = evaluate_probabilities(name, labels, probs)
    path = tmp_path / f"{name}-{seed}.json"
    path.write_text(evaluation.model_dump_json(), encoding="utf-8")
    return LeverRun(
        name=name,
        lever=name,
        seed=seed,
        val_accuracy=val,
        test_accuracy=evaluation.metrics.accuracy,
        test_f1_macro=evaluation.metrics.f1_macro,
        train_seconds=10.0,
        trainable_parameters=100,
        device="cpu",
        test_inference_seconds=1.5,
        evaluation_path=str(path),
    )


def test_ensemble_averages_the_top_three_by_validation_accuracy(tmp_path: Path) -> None:
    runs = [
        _run(tmp_path, "a", 42, 0.95, [0.9, 0.6, 0.4, 0.1]),  # 2/4 right
        _run(tmp_path, "b", 42, 0.94, [0.9, 0.3, 0.7, 0.1]),  # 4/4
        _run(tmp_path, "c", 42, 0.93, [0.2, 0.3, 0.8, 0.7]),  # 2/4
        _run(tmp_path, "worst", 42, 0.50, [0.0, 1.0, 0.0, 1.0]),  # left out
        LeverRun(name="failed", lever="x", seed=42, error="boom"),
    ]
    ensemble = ensemble_run(runs)
    assert ensemble is not None
    assert ensemble.members == ["a-s42", "b-s42", "c-s42"]
    # mean P(positive) = [0.667, 0.4, 0.633, 0.3] -> predictions 1, 0, 1, 0: all right
    assert ensemble.test_accuracy == 1.0
    assert ensemble.forward_passes == 3
    assert ensemble.test_inference_seconds == pytest.approx(4.5)
    assert ensemble.trainable_parameters == 300


def test_no_ensemble_from_one_run(tmp_path: Path) -> None:
    assert ensemble_run([_run(tmp_path, "a", 42, 0.9, [0.9, 0.1, 0.9, 0.1])]) is None


def test_ensemble_refuses_members_scored_on_other_sets(tmp_path: Path) -> None:
    runs = [_run(tmp_path, "a", 42, 0.9, [0.9, 0.1, 0.9, 0.1])]
    other = evaluate_probabilities("b", [0, 0, 1, 1], [0.1, 0.1, 0.9, 0.9])
    (tmp_path / "b.json").write_text(other.model_dump_json(), encoding="utf-8")
    runs.append(
        runs[0].model_copy(update={"name": "b", "evaluation_path": str(tmp_path / "b.json")})
    )
    with pytest.raises(ValueError, match="different test sets"):
        ensemble_run(runs)


def test_seed_spread(tmp_path: Path) -> None:
    runs = [
        LeverRun(name="a", lever="", seed=s, val_accuracy=0.9, test_accuracy=acc)
        for s, acc in ((42, 0.90), (43, 0.92), (44, 0.94))
    ] + [LeverRun(name="single", lever="", seed=42, val_accuracy=0.9, test_accuracy=0.5)]
    (spread,) = seed_spread(runs)
    assert spread["name"] == "a" and spread["seeds"] == [42, 43, 44]
    assert spread["test_accuracy_mean"] == pytest.approx(0.92)
    assert spread["test_accuracy_sd"] == pytest.approx(0.02)
    assert (spread["test_accuracy_min"], spread["test_accuracy_max"]) == (0.90, 0.94)


def test_table_has_a_row_per_run_the_ensemble_cost_and_failures(tmp_path: Path) -> None:
    runs = [
        _run(tmp_path, "a", 42, 0.95, [0.9, 0.6, 0.4, 0.1]),
        _run(tmp_path, "b", 42, 0.94, [0.9, 0.3, 0.7, 0.1]),
        _run(tmp_path, "c", 42, 0.93, [0.2, 0.3, 0.8, 0.7]),
        LeverRun(name="d", lever="x", seed=42, error="RuntimeError: NaN"),
    ]
    table = render_table([*runs, ensemble_run(runs)], ["# header"])
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert len(rows) == 2 + 5  # names and rule, then four runs and the ensemble
    assert {row.count(" | ") for row in rows} == {10}  # 11 cells in every row
    assert "| a | a | 42 | 0.9500 | 0.5000 |" in table
    assert "4.50 (3 forward passes)" in table
    assert "failed: RuntimeError: NaN" in table
    assert table.startswith("# header\n")
