"""Start and stop a local Prefect stack: server, work pools, deployments, workers.

    python scripts/prefect_stack.py server    # Prefect server on 127.0.0.1:4200, DB in .prefect/
    python scripts/prefect_stack.py deploy    # pools `cpu` and `gpu`, then every deployment
    python scripts/prefect_stack.py workers   # one process worker per pool
    python scripts/prefect_stack.py up        # all three
    python scripts/prefect_stack.py down      # stop what this script started
    python scripts/prefect_stack.py status

Processes run in their own sessions (they outlive this script); their pids and logs are kept
under ``$PREFECT_HOME/stack``. The end-to-end tests drive the same functions with a temporary
home and a free port.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sentiment_lora.operations.locks import REGISTRY_LIMIT

ROOT = Path(__file__).resolve().parent.parent
POOLS = ("cpu", "gpu")


def stack_env(home: Path, port: int, *, host: str = "127.0.0.1") -> dict[str, str]:
    """Environment for the server, the CLI calls and the workers."""
    env = dict(os.environ)
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=f"http://{host}:{port}/api",
        PREFECT_SERVER_API_HOST=host,
        PREFECT_SERVER_API_PORT=str(port),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        DO_NOT_TRACK="1",
        PREFECT_WORKER_QUERY_SECONDS=env.get("PREFECT_WORKER_QUERY_SECONDS", "3"),
        SENTIMENT_LORA_ROOT=str(ROOT),
    )
    return env


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prefect(*args: str) -> list[str]:
    return [sys.executable, "-m", "prefect", *args]


def _spawn(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    log.parent.mkdir(parents=True, exist_ok=True)
    out = open(log, "ab")  # noqa: SIM115 (kept open by the child)
    return subprocess.Popen(
        cmd,
        env=env,
        cwd=ROOT,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # own process group: one killpg stops it and its children
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _record(home: Path, name: str, proc: subprocess.Popen) -> None:
    pids = home / "stack" / "pids.json"
    data = json.loads(pids.read_text()) if pids.exists() else {}
    data[name] = proc.pid
    pids.write_text(json.dumps(data))


def wait_healthy(api_url: str, *, timeout: float = 150) -> None:
    """Block until ``GET {api_url}/health`` answers, or raise TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"Prefect server at {api_url} not healthy after {timeout:.0f}s")


def start_server(env: dict[str, str]) -> subprocess.Popen:
    """Start ``prefect server start`` bound to the env's host and port; wait until healthy."""
    home = Path(env["PREFECT_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    cmd = _prefect(
        "server",
        "start",
        "--host",
        env["PREFECT_SERVER_API_HOST"],
        "--port",
        env["PREFECT_SERVER_API_PORT"],
    )
    proc = _spawn(cmd, env, home / "stack" / "server.log")
    _record(home, "server", proc)
    try:
        wait_healthy(env["PREFECT_API_URL"])
    except TimeoutError:
        stop([proc])
        raise
    return proc


def deploy(env: dict[str, str]) -> None:
    """Create the process pools and deploy everything in prefect.yaml (idempotent)."""
    for pool in POOLS:
        subprocess.run(
            _prefect("work-pool", "create", pool, "--type", "process", "--overwrite"),
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    # Gate and promotion hold this limit (tasks/locking.py): one run at a time, any machine.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "from prefect.client.orchestration import get_client\n"
            "with get_client(sync_client=True) as c:\n"
            f"    c.upsert_global_concurrency_limit_by_name({REGISTRY_LIMIT!r}, 1)",
        ],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        _prefect("--no-prompt", "deploy", "--all"),
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"prefect deploy failed:\n{done.stdout}\n{done.stderr}")


def start_worker(
    env: dict[str, str], pool: str, *, extra_env: dict[str, str] | None = None
) -> subprocess.Popen:
    """One process worker polling ``pool`` (``extra_env`` added to its environment)."""
    home = Path(env["PREFECT_HOME"])
    proc = _spawn(
        _prefect("worker", "start", "--pool", pool, "--type", "process"),
        {**env, **(extra_env or {})},
        home / "stack" / f"worker-{pool}.log",
    )
    _record(home, f"worker-{pool}", proc)
    return proc


def stop(procs: list[subprocess.Popen]) -> None:
    """Terminate processes (and their process groups), then kill what is left after 10 s."""
    for proc in procs:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def stop_recorded(home: Path) -> list[str]:
    """Stop every process recorded under ``home`` by earlier commands."""
    pids = home / "stack" / "pids.json"
    if not pids.exists():
        return []
    stopped = []
    for name, pid in json.loads(pids.read_text()).items():
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped.append(name)
        except ProcessLookupError:
            pass
    pids.unlink()
    return stopped


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("command", choices=["server", "deploy", "workers", "up", "down", "status"])
    p.add_argument("--home", default=os.environ.get("PREFECT_HOME", str(ROOT / ".prefect")))
    p.add_argument(
        "--host", default="127.0.0.1", help="address the server binds (default 127.0.0.1)"
    )
    p.add_argument("--port", type=int, default=4200)
    args = p.parse_args(argv)
    env = stack_env(Path(args.home).resolve(), args.port, host=args.host)
    if args.command in ("server", "up"):
        start_server(env)
        print(f"Prefect server: http://{args.host}:{args.port} (UI), home {env['PREFECT_HOME']}")
    if args.command in ("deploy", "up"):
        deploy(env)
        print("pools cpu, gpu; deployments sst2-full, sst2-train-config, sst2-weekly-retrain")
    if args.command in ("workers", "up"):
        for pool in POOLS:
            start_worker(env, pool)
        print(f"workers started; logs in {env['PREFECT_HOME']}/stack/")
    if args.command == "down":
        print("stopped:", ", ".join(stop_recorded(Path(env["PREFECT_HOME"]))) or "nothing")
    if args.command == "status":
        try:
            wait_healthy(env["PREFECT_API_URL"], timeout=2)
            print(f"server up at {env['PREFECT_API_URL']}")
        except TimeoutError:
            print(f"no server at {env['PREFECT_API_URL']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
