"""A real Prefect stack for end-to-end tests: server on a free loopback port with a temporary
home, the `cpu` and `gpu` process pools, every deployment of prefect.yaml and one worker per
pool, all started by scripts/prefect_stack.py (what `make stack` uses) and stopped afterwards."""

import importlib.util
import shutil
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


def _other_machine(home: Path) -> dict[str, str]:
    """Environment of a worker that shares nothing local with the rest of the stack."""
    checkout = home / "gpu-checkout"
    for part in ("flows", "tasks"):
        shutil.copytree(ROOT / part, checkout / part, ignore=shutil.ignore_patterns("__pycache__"))
    return {
        "PREFECT_HOME": str(home / "gpu-home"),
        "SENTIMENT_LORA_ROOT": str(checkout),
        "SENTIMENT_LORA_CACHE_DIR": str(home / "gpu-cache"),
    }


@pytest.fixture(scope="session")
def prefect_stack(tmp_path_factory):
    """Yields the stack's environment (PREFECT_API_URL, PREFECT_HOME, ...)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    home = tmp_path_factory.mktemp("prefect-home")
    env = stack_module.stack_env(home, stack_module.free_port(), live_data=home / "sst2-live")
    env.pop("SENTIMENT_LORA_ALERT_WEBHOOK", None)  # never alert a developer's real webhook
    procs = [stack_module.start_server(env)]
    try:
        stack_module.deploy(env)
        procs.append(stack_module.start_worker(env, "cpu"))
        # The gpu worker is "another machine": its own Prefect home, working copy and artifact
        # cache. Nothing is shared with the parent but the server's URL and the artifacts root.
        procs.append(stack_module.start_worker(env, "gpu", extra_env=_other_machine(home)))
        # The stack's own report server, as `make stack` starts it (for the UI test's links).
        reports, port = home / "reports", stack_module.free_port()
        procs.append(
            stack_module.start_report_server(
                env, reports_dir=reports, registry_dir=home / "registry", port=port
            )
        )
        env = {
            **env,
            "SENTIMENT_LORA_REPORT_URL": f"http://127.0.0.1:{port}",
            "SENTIMENT_LORA_REPORTS_DIR": str(reports),
        }
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
