"""End to end against a real Prefect server, work pools, workers and deployments."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    DeploymentFilter,
    DeploymentFilterId,
    FlowRunFilter,
    FlowRunFilterParentFlowRunId,
)
from prefect.deployments import run_deployment
from prefect.states import Cancelling

from sentiment_lora.operations.data_manifest import read_manifest
from sentiment_lora.operations.storage import get_text, result_location
from sentiment_lora.reporting.results import load_results
from tasks.pipeline_tasks import ConfigRun
from tests.conftest import write_tsv
from tests.e2e.conftest import small_run_parameters

pytestmark = pytest.mark.slow


def test_weekly_schedule_as_the_server_reports_it(prefect_stack) -> None:
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("sst2-lora-pipeline/sst2-weekly-retrain")
        assert deployment.work_pool_name == "cpu"
        # One data home: the schedule trains on the live directory `data add` writes, which
        # deploying created from data/sst2.
        live = Path(prefect_stack["SENTIMENT_LORA_DATA_HOME"])
        assert deployment.parameters == {
            "profile": "full",
            "data": {"data_dir": str(live)},
            "options": {"gate": "on", "backend": "work-pool"},
        }
        assert (live / "train.tsv").is_file() and not (live / "train.tsv").is_symlink()
        # One production run at a time: a run started while one is active waits (queued, so
        # data-triggered runs are never dropped).
        assert deployment.global_concurrency_limit.limit == 1
        assert deployment.concurrency_options.collision_strategy == "ENQUEUE"
        # Gate and promotion of every run hold this limit (created by `make deploy`).
        assert client.read_global_concurrency_limit_by_name("sentiment-lora-registry").limit == 1
        (schedule,) = deployment.schedules
        assert schedule.active
        assert schedule.schedule.cron == "0 3 * * 1"
        assert schedule.schedule.timezone == "UTC"

        train = client.read_deployment_by_name("sst2-train-config/sst2-train-config")
        assert train.work_pool_name == "gpu"
        # One training run at a time on the gpu pool (scripts/prefect_stack.py, GPU_POOL_LIMIT).
        assert client.read_work_pool("gpu").concurrency_limit == 1
        full = client.read_deployment_by_name("sst2-lora-pipeline/sst2-full")
        # The UI's run form comes from this schema: every field documented.
        props = full.parameter_openapi_schema["properties"]
        assert {"profile", "data", "train", "grid", "stats", "options"} <= set(props)
        definitions = full.parameter_openapi_schema["definitions"]
        options = definitions["RunOptions"]["properties"]
        assert {"backend", "gate", "reports_dir", "report_base_url"} <= set(options)
        for field in definitions["LoraHyperparams"]["properties"].values():
            assert field.get("description"), field


def test_full_pipeline_fans_out_to_the_gpu_pool(
    prefect_stack, sst2_dir: Path, tmp_path: Path
) -> None:
    params = small_run_parameters(tmp_path, sst2_dir)
    params["train"] = {"first_rung_epochs": 0.1}  # successive halving across the pool
    parent = run_deployment("sst2-lora-pipeline/sst2-full", parameters=params, timeout=900)
    assert parent.state.is_completed(), (
        f"parent run ended {parent.state.name}: {parent.state.message}"
    )

    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])
            )
        )
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[parent.id]))
        )
    # Successive halving through the pool: one first-rung child per config, then one more for
    # the config that was better there; all on the gpu pool.
    assert len(children) == 3
    assert {c.work_pool_name for c in children} == {"gpu"}
    assert all(c.state.is_completed() for c in children)
    assert sorted(bool(c.parameters.get("stop_at_epoch")) for c in children) == [False, True, True]
    # Each child's result is read where the parent reads it: in the shared artifacts root
    # (the gpu worker has its own Prefect home and working copy, like another machine).
    root = params["options"]["artifacts_dir"]
    child_runs = [
        ConfigRun.model_validate_json(get_text(result_location(root, str(c.id)))) for c in children
    ]
    assert (Path(prefect_stack["PREFECT_HOME"]) / "gpu-home").is_dir()
    assert {r.training.config_name for r in child_runs} == {"lr2e-3-r8", "lr1e-3-r4"}
    (final,) = [r for r in child_runs if r.training.stopped_at_epoch is None]
    # The promoted config resumed from its first rung's checkpoint on the worker.
    assert final.training.resumed_from_checkpoint

    # The parent's results are the children's: the final child's for the promoted config.
    run_dir = Path(tmp_path / "reports" / "latest").resolve()
    summary = json.loads((run_dir / "fine_tuning_results.json").read_text())
    assert summary["training_backend"] == "work-pool"
    for entry in load_results(run_dir).hyperparameter_experiments:
        (child,) = [
            r
            for r in child_runs
            if r.training.config_name == entry.name
            and r.training.stopped_at_epoch == entry.training.stopped_at_epoch
        ]
        # (the promoted config's time and history also count its first rung: halving.merge)
        assert entry.training.validation_metrics == child.training.validation_metrics
        assert entry.test_metrics.accuracy == child.test.metrics.accuracy
        assert entry.training.device == "cpu"
        assert child.training.adapter_dir.startswith(f"file://{tmp_path}/shared-artifacts/train/")

    # Artifacts, report and champion.
    keys = {a.key for a in artifacts}
    assert {"sst2-run-summary", "sst2-comparisons", "sst2-report-pdf", "sst2-champion-gate"} <= keys
    assert (run_dir / "report.pdf").is_file()
    assert (run_dir / "model" / "adapter_model.safetensors").is_file()  # downloaded from the root
    champion = json.loads((tmp_path / "registry" / "champion.json").read_text())
    assert champion["run_id"] == summary["run_id"]
    assert summary["champion"]["promoted"]


def test_a_failed_child_fails_the_parent_with_its_error(
    prefect_stack, sst2_dir: Path, tmp_path: Path
) -> None:
    params = small_run_parameters(tmp_path, sst2_dir)
    params["grid"] = [
        {"name": "broken", "learning_rate": 1e-3, "epochs": 1, "target_modules": ["no_such_layer"]}
    ]
    parent = run_deployment("sst2-lora-pipeline/sst2-full", parameters=params, timeout=600)
    assert parent.state.is_failed()
    message = parent.state.message
    # The parent's failure names the child's config and carries PEFT's original error.
    assert "ChildRunFailed" in message and "config broken" in message, message
    assert "target_modules" in message, message
    assert not (tmp_path / "reports" / "latest").exists()
    assert not (tmp_path / "registry" / "champion.json").exists()


def _automation_runs(client, deployment_id) -> list:
    runs = client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id]))
    )
    return [r for r in runs if r.created_by and r.created_by.type == "AUTOMATION"]


def test_adding_rows_starts_exactly_one_run(prefect_stack, sst2_dir: Path, tmp_path: Path) -> None:
    """Three `sentiment-lora data add` within the trigger's 60 s give one retraining run,
    scheduled to start after the window (debounce), so it reads all three additions."""
    data = tmp_path / "sst2"
    data.mkdir()
    for name in ("train.tsv", "dev.tsv"):  # a writable copy: the shared data is read-only
        (data / name).write_bytes((sst2_dir / name).read_bytes())
    env = {**os.environ, **prefect_stack}
    command = [sys.executable, "-m", "sentiment_lora.cli", "data", "add", "--data-dir", str(data)]
    for i in range(3):
        new = write_tsv(tmp_path / f"new{i}.tsv", [f"an end to end sentence number {i}\t{i % 2}"])
        done = subprocess.run(
            [*command, str(new)], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "sent sentiment-lora.data.updated" in done.stdout
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("sst2-lora-pipeline/sst2-weekly-retrain")
        deadline = time.monotonic() + 60
        while not (runs := _automation_runs(client, deployment.id)):
            assert time.monotonic() < deadline, "no run was triggered by the data update"
            time.sleep(1)
        time.sleep(8)  # a second run, if the debounce failed, would exist by now
        runs = _automation_runs(client, deployment.id)
        for run in runs:  # never train the full profile in the test stack
            client.set_flow_run_state(run.id, Cancelling(), force=True)
    assert len(runs) == 1, [r.name for r in runs]
    assert runs[0].parameters["data"]["data_dir"] == str(data.resolve())
    assert runs[0].parameters["profile"] == "full"
    versions = read_manifest(data).versions
    assert [v.version for v in versions] == ["v0001", "v0002", "v0003", "v0004"]
    # schedule_after: the run starts a minute after the first event, after the whole burst.
    delay = (runs[0].expected_start_time - runs[0].created).total_seconds()
    assert delay >= 55, delay
