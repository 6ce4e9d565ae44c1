"""The pipeline with a fully fine-tuned config beside a LoRA one and an ensemble candidate
(``train.ensemble_top_k``) on a small slice of SST-2: the ensemble is built from the trained
configs, evaluated like them, selected by the same rule; the selected model is published."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.testing.utilities import prefect_test_harness

from flows.full import sst2_lora_pipeline
from sentiment_lora.config import (
    ALL_LINEAR_BERT,
    DataConfig,
    LoraHyperparams,
    TrainConfig,
)
from sentiment_lora.reporting.results import Experiment, load_results
from sentiment_lora.training.ensemble import ENSEMBLE_FILE
from sentiment_lora.training.inference import load_analyzer
from tests.conftest import run_options_in

pytestmark = pytest.mark.slow

GRID = [  # the quick grid's first config, and full fine-tuning beside it
    LoraHyperparams(
        name="all-r16", learning_rate=1e-3, epochs=1, lora_r=16, target_modules=ALL_LINEAR_BERT
    ),
    LoraHyperparams(name="full", learning_rate=1e-4, epochs=1, method="full"),
]


def _run(tmp: Path, sst2_dir: Path) -> tuple[Path, dict[str, str]]:
    state = sst2_lora_pipeline(
        profile="quick",
        data=DataConfig(
            data_dir=str(sst2_dir),
            max_train_samples=800,
            max_validation_samples=150,
            max_test_samples=200,
        ),
        train=TrainConfig(ensemble_top_k=2, evals_per_epoch=1),
        grid=GRID,
        options=run_options_in(tmp),
        return_state=True,
    )
    assert state.is_completed(), state.message
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    return Path(state.result()), {run.name: run.state.name for run in runs}


def test_an_ensemble_candidate_is_built_evaluated_and_selected_like_a_config(
    sst2_dir, tmp_path
) -> None:
    with prefect_test_harness(server_startup_timeout=120):
        run_dir, states = _run(tmp_path, sst2_dir)
        _, states2 = _run(tmp_path, sst2_dir)

    summary = json.loads((run_dir / "fine_tuning_results.json").read_text())
    experiments = {e.name: e for e in load_results(run_dir).hyperparameter_experiments}
    assert list(experiments) == ["all-r16", "full", "ensemble-top2"]
    ensemble = experiments["ensemble-top2"]
    assert sorted(ensemble.members) == sorted(hp.name for hp in GRID)
    assert ensemble.test_predict_seconds > 0 and ensemble.training.history == []

    # Its test scores are those of the mean of its members' probabilities, sentence by sentence.
    predictions = pd.read_csv(run_dir / "test_predictions.csv")
    members = predictions[[f"prob_positive:{name}" for name in ensemble.members]]
    np.testing.assert_allclose(
        predictions["prob_positive:ensemble-top2"], members.mean(axis=1), atol=1e-6
    )
    accuracy = ((members.mean(axis=1) >= 0.5) == predictions["label"]).mean()
    assert ensemble.test_metrics.accuracy == pytest.approx(accuracy)
    assert ensemble.test_metrics.accuracy >= 0.65  # it learned (majority class: 0.51)

    # Selected by the rule that selects configs; the published model is the one selected.
    def key(e: Experiment) -> tuple:
        v = e.training.validation_metrics
        return (v.f1_macro, v.accuracy, -e.training.trainable_parameters)

    best = max(experiments.values(), key=key).name
    assert summary["best_config"]["name"] == best
    assert (run_dir / "model" / ENSEMBLE_FILE).is_file() == (best == "ensemble-top2")
    assert summary["champion"]["promoted"]  # the first run: no champion to beat
    served = load_analyzer(tmp_path / "registry" / "versions" / "v0001" / "model")
    assert [p.label for p in served.predict(["a gorgeous , witty movie .", "a dull mess ."])] == [
        "positive",
        "negative",
    ]
    # The full config trained every weight and was saved as a whole model with its card.
    full = experiments["full"].training
    assert full.trainable_parameters == full.total_parameters and not full.target_modules
    card = (run_dir / "model" / "README.md").read_text(encoding="utf-8")
    expected = {"ensemble-top2": "An ensemble of 2", "full": "A fully fine-tuned classifier"}
    assert expected.get(best, "A LoRA adapter") in card and summary["run_id"] in card
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "Ensemble candidate: ensemble-top2" in html
    # Tested against the best single config like any other pair of configs.
    assert len(summary["statistical_tests"]["configs"]["pairwise"]) == 3

    assert states["ensemble-top2"] == "Completed"
    assert states2["ensemble-top2"] == "Cached"  # same members, same data: from the cache
