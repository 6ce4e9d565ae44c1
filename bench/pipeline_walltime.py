"""Pipeline wall time: the quick profile cold, then warm (every cached task reused).

Each run is ``python flows/full.py --profile quick ...`` in a subprocess, both with the same fresh
temporary directory for ``--artifacts-dir``, ``--reports-dir``, the registry (the working
directory of the run) and Prefect (``PREFECT_HOME`` and ``PREFECT_RESULTS_LOCAL_STORAGE_PATH``),
so the first run finds no cache and the second finds everything the first stored.

Both runs execute a snapshot of the project's code (``src/``, ``tasks/``, ``flows/``,
``templates/``) copied into that directory first, through ``PYTHONPATH``: every cache key hashes
``src/sentiment_lora``, so an edit to the working tree between the two runs would otherwise turn
the warm run cold. The warm run's task states are counted from its log (``Cached``).

Both runs talk to one running Prefect server, as a user with ``make server`` up has: the one on
127.0.0.1:4200 if it answers, else one the bench starts (``scripts/prefect_stack.py``'s
``start_server``, its database in the temp dir, on a free port) before the cold run and stops
after the warm run, outside both timings. Without it each process starts an ephemeral server
(10-20 s here), which is most of a warm run.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from common import DATA_DIR, PROJECT_ROOT, child_env

from sentiment_lora.reporting.results import load_results

sys.path.insert(0, str(PROJECT_ROOT / "scripts"))
import prefect_stack  # noqa: E402  (scripts/ is not a package)

LOCAL_SERVER = "http://127.0.0.1:4200/api/health"
SNAPSHOT_DIRS = ("src", "tasks", "flows", "templates")
QUICK_CAPS = ("--max-train-samples", "1000", "--max-validation-samples", "200")
_FINISHED = re.compile(r"Task run '[^']+' - Finished in state (\w+)")


def _local_server_up() -> bool:
    """True if a Prefect server answers on 127.0.0.1:4200 (flows/_env.py would reuse it)."""
    try:
        with urllib.request.urlopen(LOCAL_SERVER, timeout=0.5) as response:
            return response.status == 200
    except OSError:
        return False


def snapshot_code(root: Path) -> Path:
    """Copy the code the flow runs into ``root/code``; return that directory."""
    code = root / "code"
    for name in SNAPSHOT_DIRS:
        shutil.copytree(
            PROJECT_ROOT / name, code / name, ignore=shutil.ignore_patterns("__pycache__")
        )
    return code


def run_pipeline(
    root: Path, code: Path, extra: tuple[str, ...], timeout: float, api_url: str
) -> dict:
    """One ``flows/full.py --profile quick`` run of the snapshot ``code``, state under ``root``."""
    cmd = [
        sys.executable,
        str(code / "flows" / "full.py"),
        "--profile",
        "quick",
        "--data-dir",
        str(DATA_DIR.resolve()),
        "--reports-dir",
        str(root / "reports"),
        "--artifacts-dir",
        str(root / "artifacts"),
        *extra,
    ]
    env = child_env(
        PREFECT_HOME=str(root / "prefect"),
        PREFECT_RESULTS_LOCAL_STORAGE_PATH=str(root / "prefect" / "storage"),
        PYTHONPATH=os.pathsep.join([str(code / "src"), str(code)]),
        PREFECT_API_URL=api_url,
    )
    started = time.perf_counter()
    proc = subprocess.run(
        cmd, cwd=root, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    seconds = time.perf_counter() - started
    log = proc.stdout + proc.stderr
    (root / f"run-{len(list(root.glob('run-*.log'))) + 1}.log").write_text(log)
    if proc.returncode != 0:
        raise RuntimeError(f"pipeline run failed ({proc.returncode}):\n{log[-3000:]}")
    states: dict[str, int] = {}
    for state in _FINISHED.findall(log):
        states[state] = states.get(state, 0) + 1
    match = re.search(r"results: (\S+fine_tuning_results\.json)", log)
    if match is None:
        raise RuntimeError(f"pipeline run printed no results path:\n{log[-3000:]}")
    return {
        "seconds": seconds,
        "task_states": states,
        "results_json": match.group(1),
    }


def benchmark(
    quick: bool,
    log=print,
    timeout: float = 1500,
    keep: bool = False,
    on_model: Callable[[str], dict] | None = None,
) -> dict:
    """Cold then warm quick-profile run; ``quick`` caps the rows (1,000 train / 200 val).

    ``on_model`` is called with the cold run's best model directory before the temp dir goes.
    """
    extra = QUICK_CAPS if quick else ()
    root = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    server_proc = None
    try:
        if _local_server_up():
            api_url, server = "http://127.0.0.1:4200/api", "reused 127.0.0.1:4200"
        else:
            env = prefect_stack.stack_env(root / "server", prefect_stack.free_port())
            started = time.perf_counter()
            server_proc = prefect_stack.start_server(env)
            api_url = env["PREFECT_API_URL"]
            server = (
                f"started by the bench at {api_url} in {time.perf_counter() - started:.1f} s, "
                "outside the timed runs"
            )
        log(f"  Prefect server: {server}")
        code = snapshot_code(root)
        cold = run_pipeline(root, code, extra, timeout, api_url)
        log(f"  pipeline cold {cold['seconds']:6.1f} s  tasks {cold['task_states']}")
        warm = run_pipeline(root, code, extra, timeout, api_url)
        log(f"  pipeline warm {warm['seconds']:6.1f} s  tasks {warm['task_states']}")
        if not warm["task_states"].get("Cached"):
            log("  WARNING: no task of the warm run came from the cache")
        summary = load_results(Path(cold["results_json"]).parent)
        model_check = (
            on_model(str(Path(cold["results_json"]).parent / "model")) if on_model else None
        )
    finally:
        if server_proc is not None:
            prefect_stack.stop([server_proc])
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
    return {
        "command": "python flows/full.py --profile quick " + " ".join(extra),
        "rows": "1,000 train / 200 validation (bench-quick caps)"
        if quick
        else "12,000 train / 1,000 validation (quick profile)",
        "prefect_server": server,
        "code": "snapshot of src/, tasks/, flows/, templates/ in the temp dir",
        "cold": cold,
        "warm": warm,
        "warm_pct": 100 * warm["seconds"] / cold["seconds"],
        "cold_over_warm": cold["seconds"] / warm["seconds"],
        "cold_summary": summary,
        "model_check": model_check,
        "workdir": str(root) if keep else None,
    }
