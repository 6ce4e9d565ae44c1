"""End to end: the pipeline flow on a subset of the real SST-2 with the embedded model."""

import json
import math
from pathlib import Path

import jsonschema
import pytest
import yaml
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.testing.utilities import prefect_test_harness

from flows.full import sst2_lora_pipeline
from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig
from sentiment_lora.operations.events import CHAMPION_KEPT, CHAMPION_PROMOTED
from sentiment_lora.operations.ledger import read_ledger
from sentiment_lora.reporting.results import load_results, results_schema
from sentiment_lora.training.inference import SentimentAnalyzer
from tests.conftest import run_options_in

GRID = [
    LoraHyperparams(name="lr1e-3-r8", learning_rate=1e-3, epochs=1, lora_r=8, lora_alpha=32),
    LoraHyperparams(name="lr2e-3-r4", learning_rate=2e-3, epochs=1, lora_r=4, lora_alpha=16),
]


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def _task_states(flow_run_id) -> dict[str, str]:
    """Each task run's state by name, and under ``"artifacts"`` the run's artifact keys."""
    of_run = FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(flow_run_filter=of_run)
        artifacts = client.read_artifacts(flow_run_filter=of_run)
    states = {run.name: run.state.name for run in runs}
    return {**states, "artifacts": " ".join(sorted({a.key for a in artifacts if a.key}))}


def _run(tmp: Path, sst2_dir: Path, grid: list[LoraHyperparams], *, export_check: bool = False):
    state = sst2_lora_pipeline(
        profile="quick",
        data=DataConfig(data_dir=str(sst2_dir), max_train_samples=1500, max_validation_samples=300),
        train=TrainConfig(first_rung_epochs=0.1),  # successive halving
        grid=grid,
        options=run_options_in(tmp, export_check=export_check),
        return_state=True,
    )
    assert state.is_completed(), state.message
    return Path(state.result()), _task_states(state.state_details.flow_run_id)


@pytest.mark.slow
def test_pipeline_learns_caches_and_retrains_only_what_changed(
    harness, sst2_dir, tmp_path, monkeypatch
) -> None:
    secret = "hf_SECRETtoken0123456789"
    sent: list[tuple[str, dict]] = []  # every event the pipeline emits, as Prefect gets it
    monkeypatch.setattr(
        "tasks.events.emit_event",
        lambda *, event, resource, payload: sent.append((event, payload)),
    )
    for name in ("HF_TOKEN", "PREFECT_API_KEY", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, secret)
    run_dir, states = _run(tmp_path, sst2_dir, GRID, export_check=True)

    # No secret from the environment reaches the outputs or the run's logs.
    for path in run_dir.rglob("*"):
        if path.is_file() and path.suffix in {".json", ".html", ".csv", ".md", ".txt"}:
            assert secret not in path.read_text(errors="ignore"), path
    with get_client(sync_client=True) as client:
        logs = client.read_logs()
    assert logs and not any(secret in log.message for log in logs)

    # Outputs and their shape.
    summary = json.loads(
        (run_dir / "fine_tuning_results.json").read_text(), parse_constant=pytest.fail
    )
    for key in ("data", "hyperparameter_experiments", "best_config", "test_metrics", "environment"):
        assert key in summary
    # The real run's JSON validates against the schema that `sentiment-lora schema` prints.
    jsonschema.validate(summary, results_schema())
    typed = load_results(run_dir)
    assert typed.run_id == summary["run_id"]
    experiments = [e.training for e in typed.hyperparameter_experiments]
    assert [e.config_name for e in experiments] == ["lr1e-3-r8", "lr2e-3-r4"]
    for e in experiments:
        assert e.train_seconds > 0 and e.trainable_parameters > 0
        assert Path(e.adapter_dir).is_dir()  # where the model was saved, recorded
    # Successive halving: both configs trained 0.1 epoch, then the better one on validation
    # there resumed from its checkpoint and trained to the end.
    (stopped,) = [e for e in experiments if e.stopped_at_epoch is not None]
    (finished,) = [e for e in experiments if e.stopped_at_epoch is None]
    assert stopped.stopped_at_epoch == pytest.approx(0.1, abs=0.01)
    assert finished.resumed_from_checkpoint and finished.history[-1].epoch == 1.0
    assert finished.validation_metrics.accuracy > stopped.validation_metrics.accuracy
    assert (
        f"train-{stopped.config_name}-first-rung" in states
        and f"train-{stopped.config_name}" not in states
    )
    assert {f"train-{finished.config_name}-first-rung", f"train-{finished.config_name}"} <= set(
        states
    )
    assert "Successive halving" in (run_dir / "report.html").read_text(encoding="utf-8")
    assert summary["data"]["counts"]["test"] == 872
    disk = summary["disk"]  # what the run left on disk
    model_bytes = sum(f.stat().st_size for f in (run_dir / "model").rglob("*") if f.is_file())
    # (the published card holds the test metrics too: a few KB more than the saved one's)
    assert abs(disk["model_bytes"] - model_bytes) < 20_000 and model_bytes > 1_000_000
    assert disk["training_bytes"] >= disk["model_bytes"]
    assert disk["free_bytes"] > 0
    assert summary["environment"]["data_hashes"]["dev.tsv"].startswith("54a9c12c")
    assert summary["environment"]["packages"]["peft"]
    assert (tmp_path / "reports" / "latest").resolve() == run_dir.resolve()
    assert all(
        not (isinstance(v, float) and math.isnan(v))
        for v in summary["test_metrics"].values()
        if isinstance(v, float)
    )

    # Real learning: far above the 0.51 majority class on validation and on the 872 test rows.
    # Validation holds whole sentences none of whose phrases were trained on, so it scores like
    # test (0.72 here), not like the leaky random split's phrases did (0.75+).
    best = next(e for e in experiments if e.config_name == summary["best_config"]["name"])
    assert best.validation_metrics.accuracy >= 0.65
    assert summary["data"]["validation_inside_train"] == 0
    assert summary["data"]["test_inside_train"] <= 2
    assert summary["data"]["counts"]["removed_inside_validation"] > 1000
    assert summary["test_metrics"]["accuracy"] >= 0.72
    assert summary["test_metrics"]["auc_roc"] >= 0.8

    # Evidence: baselines on the same rows, tests, calibration, error analysis with clusters.
    assert set(summary["baselines"]) == {"pretrained-head", "majority", "tfidf-logreg"}
    assert summary["baselines"]["majority"]["test_metrics"]["accuracy"] < 0.52
    tests = summary["statistical_tests"]
    verdicts = {c["baseline"]: c["verdict"] for c in tests["baselines"]}
    assert verdicts["majority"] == "better" and verdicts["pretrained-head"] == "better"
    assert (
        tests["accuracy"]["low"] <= summary["test_metrics"]["accuracy"] <= tests["accuracy"]["high"]
    )
    assert tests["configs"]["cochran_q"]["df"] == 1 and len(tests["configs"]["pairwise"]) == 1
    calibration = summary["calibration"]
    assert calibration["temperature"] > 0 and len(calibration["before"]["bins"]) == 15
    errors = summary["error_analysis"]
    n_wrong = round((1 - summary["test_metrics"]["accuracy"]) * 872)
    assert errors["n_errors"] == n_wrong == errors["false_positives"] + errors["false_negatives"]
    assert sum(c["size"] for c in errors["clusters"]["clusters"]) == n_wrong
    assert errors["suggestions"]
    with get_client(sync_client=True) as client:
        keys = {a.key for a in client.read_artifacts()}
    assert {"sst2-comparisons", "sst2-run-summary", "sst2-report-pdf", "sst2-report-html"} <= keys

    # The first model becomes champion; `predict` defaults to it.
    assert summary["champion"]["promoted"] and "no champion yet" in summary["champion"]["reason"]
    # The gate exported the challenger to int8 ONNX and checked it on the same test sentences.
    export = summary["champion"]["export_check"]
    assert export["quantize"] == "int8" and export["passed"], export["reason"]
    assert (
        export["mcnemar"]["discordant"] >= 0 and export["reason"] in summary["champion"]["reasons"]
    )
    champion = json.loads((tmp_path / "registry" / "champion.json").read_text())
    assert champion["run_id"] == summary["run_id"]
    assert champion["version"] == "v0001"
    version_dir = tmp_path / "registry" / "versions" / "v0001"
    assert (version_dir / "model" / "adapter_model.safetensors").is_file()
    assert (version_dir / "data_snapshot" / "snapshot.json").is_file()
    # The data diff of a first run, the ledger and the run's snapshot beside its results.
    assert summary["data_diff"]["first_run"] is True
    assert (run_dir / "data_snapshot" / "snapshot.json").is_file()
    (first_record,) = read_ledger(tmp_path / "registry")
    assert first_record.run_id == summary["run_id"] and first_record.gate == "promoted"
    assert first_record.champion_version == "v0001" and first_record.triggered_by == "cli"
    assert [h["run_id"] for h in summary["history"]] == [summary["run_id"]]
    assert (run_dir / "trend.png").is_file()

    # The model's card states the run's test metrics with their bootstrap intervals.
    card = (run_dir / "model" / "README.md").read_text(encoding="utf-8")
    front = yaml.safe_load(card.split("---")[1])
    (result,) = front["model-index"][0]["results"]
    metrics = {m["type"]: m for m in result["metrics"]}
    assert metrics["accuracy"]["value"] == pytest.approx(
        summary["test_metrics"]["accuracy"], abs=1e-4
    )
    assert metrics["accuracy"]["args"]["ci_low"] == pytest.approx(
        tests["accuracy"]["low"], abs=1e-4
    )
    assert summary["run_id"] in card

    # The report is rendered before the run is published, beside the JSON.
    assert (run_dir / "report.pdf").stat().st_size > 10_000
    assert (run_dir / "report.html").is_file()
    assert not list((tmp_path / "reports").glob(".*.partial"))

    # The saved model predicts like the pipeline's evaluation did.
    analyzer = SentimentAnalyzer.load(run_dir / "model")
    preds = analyzer.predict(["a gorgeous , witty , seductive movie .", "a dull , lifeless mess ."])
    assert [p.label for p in preds] == ["positive", "negative"]
    states.pop("artifacts")
    assert all(state == "Completed" for state in states.values())
    assert [name for name, _ in sent] == [CHAMPION_PROMOTED]  # the first run: no champion yet

    # Second identical run: every data, training and evaluation task comes from the cache.
    run_dir2, states2 = _run(tmp_path, sst2_dir, GRID)
    assert run_dir2 != run_dir
    assert "sst2-data-drift" in states2.pop("artifacts")
    assert [name for name, _ in sent[1:]] == [CHAMPION_KEPT]  # every gated run ends in one event
    assert (sent[1][1]["outcome"], sent[1][1]["champion_run_id"]) == ("unchanged", run_dir.name)
    cached = {
        name: state
        for name, state in states2.items()
        if not name.startswith(
            (
                "select-best",
                "write-results",
                "champion-gate",
                "run-trigger",
                "record-run",
                "publish-data-diff",
            )
        )
        and not name.startswith("data-diff")  # the champion is new: this run has one to diff
    }
    assert len(cached) == 13 and set(cached.values()) == {"Cached"}, states2
    summary2 = json.loads((run_dir2 / "fine_tuning_results.json").read_text())
    assert summary2["test_metrics"] == summary["test_metrics"]
    assert summary2["champion"]["unchanged"] and not summary2["champion"]["promoted"]
    assert "from the cache" in summary2["champion"]["reason"]
    diff = summary2["data_diff"]
    assert not diff["first_run"] and not diff["drifted"] and not diff["test_set_changed"]
    assert diff["training"]["identical"] and diff["training"]["added"] == 0
    assert [r.gate for r in read_ledger(tmp_path / "registry")] == ["promoted", "unchanged"]

    # Changing one config's learning rate retrains (and re-evaluates) only that config.
    changed = [GRID[0], GRID[1].model_copy(update={"learning_rate": 1.5e-3})]
    run_dir3, states3 = _run(tmp_path, sst2_dir, changed)
    # The data diff came from the cache (same data, same champion); its artifact did not.
    (diff3,) = [state for name, state in states3.items() if name.startswith("data-diff")]
    assert diff3 == "Cached" and "sst2-data-drift" in states3["artifacts"]
    assert len(sent) == 3 and sent[2][0] in (CHAMPION_PROMOTED, CHAMPION_KEPT)
    assert states3["train-lr1e-3-r8-first-rung"] == "Cached"
    assert states3["train-lr2e-3-r4-first-rung"] == "Completed"
    assert states3["evaluate-lr1e-3-r8-first-rung"] == "Cached"
    assert states3["evaluate-lr2e-3-r4-first-rung"] == "Completed"
    summary3 = load_results(run_dir3)
    (on,) = [e.name for e in summary3.hyperparameter_experiments if not e.training.stopped_at_epoch]
    assert states3[f"train-{on}"] == ("Cached" if on == "lr1e-3-r8" else "Completed")
    assert "champion-gate" in " ".join(states3)  # changed parameters go through the gate again
