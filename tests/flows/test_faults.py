"""Faults an operator walks away from: retries, permanent errors, deleted cache files, crashes
mid-write, SIGKILL mid-training, and two runs at once."""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect.settings import PREFECT_API_URL
from prefect.testing.utilities import prefect_test_harness

import tasks.pipeline_tasks as pipeline_tasks
from flows.full import sst2_lora_pipeline
from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig
from sentiment_lora.reporting.results import load_results
from tests.conftest import run_options_in

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow

ONE = [LoraHyperparams(name="one", learning_rate=2e-3, epochs=1)]


@pytest.fixture(scope="module")
def harness():
    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


def _params(tmp: Path, sst2_dir: Path, *, grid=ONE, seed: int = 42, rows: int = 200) -> dict:
    return {
        "data": DataConfig(
            data_dir=str(sst2_dir),
            max_train_samples=rows,
            max_validation_samples=100,
            max_test_samples=100,
            seed=seed,
        ),
        "train": TrainConfig(evals_per_epoch=4, seed=seed),
        "grid": grid,
        "options": run_options_in(tmp),
    }


def _states(state) -> dict[str, str]:
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(
                id=FlowRunFilterId(any_=[state.state_details.flow_run_id])
            )
        )
    return {run.name: run.state.name for run in runs}


def _adapter_files(tmp: Path) -> list[Path]:
    return sorted((tmp / "artifacts" / "train").glob("*/adapter/adapter_model.safetensors"))


def test_transient_error_is_retried_and_the_run_completes(harness, sst2_dir, tmp_path, monkeypatch):
    real, calls = pipeline_tasks.prepare_sst2, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("transient: disk briefly unavailable")
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline_tasks, "prepare_sst2", flaky)
    state = sst2_lora_pipeline(**_params(tmp_path, sst2_dir), return_state=True)
    assert state.is_completed(), state.message
    assert len(calls) == 2  # failed once, retried once
    assert (tmp_path / "reports" / "latest" / "fine_tuning_results.json").is_file()


def test_permanent_error_fails_the_run_and_keeps_latest(harness, sst2_dir, tmp_path, monkeypatch):
    state = sst2_lora_pipeline(**_params(tmp_path, sst2_dir), return_state=True)
    assert state.is_completed()
    latest = os.readlink(tmp_path / "reports" / "latest")

    def broken(*args, **kwargs):
        raise RuntimeError("permanent: CUDA driver exploded")

    monkeypatch.setattr(pipeline_tasks, "train_lora", broken)
    params = _params(tmp_path, sst2_dir, grid=[ONE[0].model_copy(update={"learning_rate": 1e-3})])
    failed = sst2_lora_pipeline(**params, return_state=True)
    assert failed.is_failed()
    assert "permanent: CUDA driver exploded" in failed.message
    assert os.readlink(tmp_path / "reports" / "latest") == latest
    assert len([p for p in (tmp_path / "reports").iterdir() if p.name != "latest"]) == 1


def test_deleted_model_files_are_noticed_and_retrained(harness, sst2_dir, tmp_path) -> None:
    first = sst2_lora_pipeline(**_params(tmp_path, sst2_dir), return_state=True)
    assert first.is_completed()
    (adapter,) = _adapter_files(tmp_path)
    shutil.rmtree(adapter.parent)  # an operator cleaning up by hand
    second = sst2_lora_pipeline(**_params(tmp_path, sst2_dir), return_state=True)
    assert second.is_completed(), second.message
    states = _states(second)
    assert states["train-one"] == "Completed"  # not a Cached path to nothing
    assert adapter.is_file()
    third = sst2_lora_pipeline(**_params(tmp_path, sst2_dir), return_state=True)
    assert _states(third)["train-one"] == "Cached"


def test_a_crash_while_writing_the_report_leaves_the_last_run(
    harness, sst2_dir, tmp_path, monkeypatch
) -> None:
    assert sst2_lora_pipeline(**_params(tmp_path, sst2_dir), return_state=True).is_completed()
    latest = os.readlink(tmp_path / "reports" / "latest")

    def crash(run_dir):
        (Path(run_dir) / "report.html").write_text("<html>half")
        raise OSError("disk full while writing report.pdf")

    monkeypatch.setattr(pipeline_tasks, "render_report", crash)
    state = sst2_lora_pipeline(**_params(tmp_path, sst2_dir), return_state=True)
    assert state.is_failed() and "disk full" in state.message
    assert os.readlink(tmp_path / "reports" / "latest") == latest
    names = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert names == sorted([latest, "latest"])  # no new run dir, no .partial left behind


_RUNNER = textwrap.dedent(
    """
    import json, sys
    from flows.full import sst2_lora_pipeline
    from sentiment_lora.config import DataConfig, LoraHyperparams, RunOptions, TrainConfig
    p = json.loads(sys.argv[1])
    run_dir = sst2_lora_pipeline(
        data=DataConfig(**p["data"]), train=TrainConfig(**p["train"]),
        grid=[LoraHyperparams(**g) for g in p["grid"]],
        options=RunOptions(**{**p["options"], "gate": False}),
    )
    print("RUN_DIR", run_dir)
    """
)


def _spawn(harness_url: str, params: dict, log: Path) -> subprocess.Popen:
    plain = {k: (v.model_dump() if hasattr(v, "model_dump") else v) for k, v in params.items()}
    plain["grid"] = [g.model_dump() for g in params["grid"]]
    env = {**os.environ, "PREFECT_API_URL": harness_url}
    return subprocess.Popen(
        [sys.executable, "-c", _RUNNER, json.dumps(plain)],
        cwd=ROOT,
        env=env,
        stdout=open(log, "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
    )


TWO = [
    LoraHyperparams(name="first", learning_rate=2e-3, epochs=1),
    LoraHyperparams(name="second", learning_rate=1e-3, epochs=1),
]


def test_sigkill_mid_training_resumes_from_the_last_checkpoint(harness, sst2_dir, tmp_path):
    params = _params(tmp_path, sst2_dir, grid=TWO, rows=480)  # 30 steps, a checkpoint every 8
    proc = _spawn(harness, params, tmp_path / "killed.log")
    deadline = time.monotonic() + 300
    checkpoint = None
    while time.monotonic() < deadline and proc.poll() is None:
        # "second" trains after "first": kill once it has written a checkpoint of its own
        done_first = _adapter_files(tmp_path)
        ckpts = [
            c
            for c in (tmp_path / "artifacts" / "train").glob("*/checkpoints/checkpoint-*")
            if done_first
            and c.parents[1] != done_first[0].parents[1]
            and (c / "trainer_state.json").is_file()
        ]
        if ckpts:
            checkpoint = ckpts[0]
            break
        time.sleep(0.2)
    assert checkpoint is not None, (tmp_path / "killed.log").read_text()[-3000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()

    state = sst2_lora_pipeline(**params, return_state=True)
    assert state.is_completed(), state.message
    states = _states(state)
    assert states["train-first"] == "Cached"
    assert states["train-second"] == "Completed"
    summary = load_results(Path(state.result()))
    resumed = {e.name: e for e in summary.hyperparameter_experiments}
    assert resumed["second"].training.resumed_from_checkpoint is True

    # The same run, never interrupted, in a fresh artifacts root: same results within 0.01.
    clean = sst2_lora_pipeline(
        **{
            **params,
            "options": params["options"].model_copy(
                update={"artifacts_dir": str(tmp_path / "clean")}
            ),
        },
        return_state=True,
    )
    reference = load_results(Path(clean.result()))
    uninterrupted = {e.name: e for e in reference.hyperparameter_experiments}
    assert uninterrupted["second"].training.resumed_from_checkpoint is False
    for key in ("accuracy", "f1_macro"):
        assert getattr(resumed["second"].training.validation_metrics, key) == pytest.approx(
            getattr(uninterrupted["second"].training.validation_metrics, key), abs=0.01
        )
        assert getattr(resumed["second"].test_metrics, key) == pytest.approx(
            getattr(uninterrupted["second"].test_metrics, key), abs=0.01
        )


def test_two_runs_at_once_write_their_own_directories(harness, sst2_dir, tmp_path) -> None:
    runs = [
        _spawn(harness, _params(tmp_path, sst2_dir, seed=seed), tmp_path / f"run{seed}.log")
        for seed in (1, 2)
    ]
    for proc in runs:
        assert proc.wait(timeout=600) == 0
    run_dirs = []
    for seed in (1, 2):
        out = (tmp_path / f"run{seed}.log").read_text()
        run_dirs.append(
            Path(next(line for line in out.splitlines() if line.startswith("RUN_DIR"))[8:])
        )
    assert run_dirs[0] != run_dirs[1]
    for seed, run_dir in zip((1, 2), run_dirs, strict=True):
        summary = json.loads((run_dir / "fine_tuning_results.json").read_text())
        assert summary["data"]["config"]["seed"] == seed  # never mixed
        assert summary["run_id"] == run_dir.name
        assert (run_dir / "report.pdf").is_file()
    last = max(run_dirs, key=lambda d: d.stat().st_ctime)
    assert (tmp_path / "reports" / "latest").resolve() == last.resolve()
