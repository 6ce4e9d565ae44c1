"""Start and stop a local Prefect stack: server, work pools, deployments, workers, reports.

    python scripts/prefect_stack.py server    # Prefect server on 127.0.0.1:4200, DB in .prefect/
    python scripts/prefect_stack.py deploy    # pools `cpu` and `gpu`, then every deployment
    python scripts/prefect_stack.py workers   # one process worker per pool
    python scripts/prefect_stack.py reports   # sentiment-lora serve-reports on 127.0.0.1:8765
    python scripts/prefect_stack.py up        # all four
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

from sentiment_lora.cli_options import OptionError
from sentiment_lora.errors import debug_requested, report_input_error
from sentiment_lora.operations.data_home import DATA_HOME_ENV, data_home, ensure_data_home
from sentiment_lora.operations.locks import REGISTRY_LIMIT
from sentiment_lora.reporting.listen import bind, server_options

ROOT = Path(__file__).resolve().parent.parent
POOLS = ("cpu", "gpu")
GPU_POOL_LIMIT = int(os.environ.get("SENTIMENT_LORA_GPU_LIMIT", "1"))  # runs at once on `gpu`
REPORT_PORT = int(os.environ.get("SENTIMENT_LORA_REPORT_PORT", "8765"))  # the links' default


def stack_env(
    home: Path,
    port: int,
    *,
    host: str = "127.0.0.1",
    db_url: str | None = None,
    live_data: Path | None = None,
) -> dict[str, str]:
    """Environment for the server, the CLI calls and the workers. ``db_url`` (e.g. a
    ``postgresql+asyncpg://`` URL from scripts/postgres.py) becomes the server's database;
    without it the server keeps SQLite under ``home``. ``live_data`` is the live data
    directory (default: :func:`data_home`, ``$SENTIMENT_LORA_DATA_HOME`` or data/sst2-live)."""
    env = dict(os.environ)
    if db_url:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = db_url
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
    env[DATA_HOME_ENV] = str(live_data or data_home(ROOT))  # the weekly data_dir (prefect.yaml)
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


def deploy(env: dict[str, str], *, gpu_limit: int = GPU_POOL_LIMIT) -> None:
    """Create the process pools (``gpu`` limited to ``gpu_limit`` runs at once) and deploy
    everything in prefect.yaml (idempotent). The live data directory the weekly deployment
    trains on is created first, from data/sst2, if it is not there yet."""
    home = Path(env[DATA_HOME_ENV])
    if ensure_data_home(home, ROOT / "data" / "sst2"):
        print(f"live data: created {home} from data/sst2 (data add writes here)")
    for pool in POOLS:
        subprocess.run(
            _prefect("work-pool", "create", pool, "--type", "process", "--overwrite"),
            env=env,
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
    subprocess.run(
        _prefect("work-pool", "set-concurrency-limit", "gpu", str(gpu_limit)),
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
    # Alerts kept in alerts.yaml: upserted by name; "alerts are off" without a webhook URL.
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "alerts.py")], env=env, cwd=ROOT, check=True
    )


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


def start_report_server(
    env: dict[str, str], *, reports_dir: Path, registry_dir: Path, port: int = REPORT_PORT
) -> subprocess.Popen:
    """``sentiment-lora serve-reports`` for ``reports_dir`` on 127.0.0.1:``port``; waits until
    it answers. The flows' report links point here (``options.report_base_url``)."""
    home = Path(env["PREFECT_HOME"])
    reports_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "sentiment_lora.cli",
        "serve-reports",
        "--reports-dir",
        str(reports_dir),
        "--registry-dir",
        str(registry_dir),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    proc = _spawn(cmd, env, home / "stack" / "report-server.log")
    _record(home, "report-server", proc)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"report server exited; see {home / 'stack' / 'report-server.log'}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    stop([proc])
    raise TimeoutError(f"report server at {url} not answering after 60 s")


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
    """Stop every process recorded under ``home`` by earlier commands, then the PostgreSQL
    cluster recorded there (``stack/postgres.json``) once they are gone (20 s at most)."""
    pids = home / "stack" / "pids.json"
    cluster = home / "stack" / "postgres.json"
    recorded = json.loads(pids.read_text()) if pids.exists() else {}
    stopped = []
    for name, pid in recorded.items():
        try:
            os.killpg(pid, signal.SIGTERM)
            stopped.append(name)
        except ProcessLookupError:
            pass
    pids.unlink(missing_ok=True)
    if cluster.exists():
        deadline = time.monotonic() + 20  # the server first: it holds connections
        for pid in recorded.values():
            while time.monotonic() < deadline:
                try:
                    os.killpg(pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.5)
        try:
            import postgres  # scripts/postgres.py (scripts/ is sys.path[0] for the script)
        except ImportError:
            from scripts import postgres
        if postgres.stop(Path(json.loads(cluster.read_text())["directory"])):
            stopped.append("postgres")
        cluster.unlink()
    return stopped


def _check_options(args: argparse.Namespace, home: Path) -> None:
    """OptionError naming ``--home``, ``--host``, ``--port`` or ``--db-port`` if unusable; the
    server's address must be free before ``server`` or ``up`` starts one."""
    if home.exists() and not home.is_dir():
        raise OptionError(f"--home {home}: not a directory")
    options = server_options(args.host, args.port)
    if args.db_port is not None and not 1 <= args.db_port <= 65535:
        raise OptionError(f"--db-port {args.db_port}: must be a TCP port, 1 to 65535")
    if args.command in ("server", "up"):
        bind(options).close()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "command", choices=["server", "deploy", "workers", "reports", "up", "down", "status"]
    )
    p.add_argument("--home", default=os.environ.get("PREFECT_HOME", str(ROOT / ".prefect")))
    p.add_argument(
        "--host", default="127.0.0.1", help="address the server binds (default 127.0.0.1)"
    )
    p.add_argument("--port", type=int, default=4200)
    p.add_argument(
        "--db",
        default=os.environ.get("SENTIMENT_LORA_DB", "sqlite"),
        help="server database: sqlite (default; $SENTIMENT_LORA_DB) or postgres (a cluster "
        "under $PREFECT_HOME/postgres, started by server/up, stopped by down)",
    )
    p.add_argument(
        "--db-port",
        type=int,
        default=os.environ.get("SENTIMENT_LORA_DB_PORT"),
        help="PostgreSQL port on 127.0.0.1 ($SENTIMENT_LORA_DB_PORT; default 5433 or a free one)",
    )
    p.add_argument("--debug", action="store_true", help="show the traceback of an error too")
    args = p.parse_args(argv)
    if args.db not in ("sqlite", "postgres"):
        p.error(f"--db (or SENTIMENT_LORA_DB) must be sqlite or postgres, not {args.db!r}")
    home = Path(args.home).resolve()
    try:
        _check_options(args, home)
    except OptionError as exc:
        return report_input_error(exc, debug_requested(args.debug))
    db_url = None
    if args.db == "postgres" and args.command in ("server", "up"):
        try:
            import postgres  # scripts/postgres.py (scripts/ is sys.path[0] for the script)
        except ImportError:
            from scripts import postgres
        (home / "stack").mkdir(parents=True, exist_ok=True)
        try:
            cluster = postgres.ensure_cluster(
                home / "postgres", port=args.db_port, log=home / "stack" / "postgres.log"
            )
            record = {"directory": str(cluster.directory), "port": cluster.port}
            (home / "stack" / "postgres.json").write_text(json.dumps(record))
            postgres.start(cluster)
        except postgres.PostgresError as exc:
            return report_input_error(exc, debug_requested(args.debug))
        db_url = cluster.url
        print(f"PostgreSQL: 127.0.0.1:{cluster.port}, {cluster.directory}, log {cluster.log}")
    env = stack_env(home, args.port, host=args.host, db_url=db_url)
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
    if args.command in ("reports", "up"):
        start_report_server(env, reports_dir=ROOT / "reports", registry_dir=ROOT / "registry")
        print(f"report server: http://127.0.0.1:{REPORT_PORT}/ (reports/, registry/)")
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
