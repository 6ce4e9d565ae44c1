"""A real Prefect stack for end-to-end tests: server on a free loopback port with a temporary
home, the `cpu` and `gpu` process pools, every deployment of prefect.yaml and one worker per
pool, all started by scripts/prefect_stack.py (what `make stack` uses) and stopped afterwards."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load_stack_module():
    spec = importlib.util.spec_from_file_location(
        "prefect_stack", ROOT / "scripts" / "prefect_stack.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


stack_module = _load_stack_module()


@pytest.fixture(scope="session")
def prefect_stack(tmp_path_factory):
    """Yields the stack's environment (PREFECT_API_URL, PREFECT_HOME, ...)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("prefect-home")
    env = stack_module.stack_env(home, stack_module.free_port())
    procs = [stack_module.start_server(env)]
    try:
        stack_module.deploy(env)
        # The gpu worker mirrors URL artifact roots in its own cache, like another machine.
        procs.append(stack_module.start_worker(env, "cpu"))
        procs.append(
            stack_module.start_worker(
                env, "gpu", extra_env={"SENTIMENT_LORA_CACHE_DIR": str(home / "gpu-cache")}
            )
        )
        with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
            yield env
    finally:
        stack_module.stop(procs)


def small_run_parameters(tmp: Path, sst2_dir: Path) -> dict:
    """sst2-full parameters for a run of a few hundred rows and two configs."""
    return {
        "data": {
            "data_dir": str(sst2_dir),
            "max_train_samples": 400,
            "max_validation_samples": 100,
            "max_test_samples": 200,
        },
        "grid": [
            {"name": "lr2e-3-r8", "learning_rate": 2e-3, "epochs": 1},
            {
                "name": "lr1e-3-r4",
                "learning_rate": 1e-3,
                "epochs": 1,
                "lora_r": 4,
                "lora_alpha": 16,
            },
        ],
        "options": {
            "reports_dir": str(tmp / "reports"),
            # An fsspec URL: children upload adapters there, the parent downloads them.
            "artifacts_dir": f"file://{tmp}/shared-artifacts",
            "registry_dir": str(tmp / "registry"),
            "backend": "work-pool",
        },
    }
