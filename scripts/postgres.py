"""A private PostgreSQL cluster for the Prefect server (Debian's `postgresql` package).

    python scripts/postgres.py start DIR [--port N]   # initdb once, start, print the URL
    python scripts/postgres.py stop DIR
    python scripts/postgres.py status DIR
    python scripts/postgres.py psql DIR "SELECT ..."

Layout under DIR: ``data/`` (PGDATA), ``sock/`` (the unix socket), ``password`` (random, mode
0600), ``postgres.log`` (unless another log is given). The server listens on 127.0.0.1 only and
asks for the password (scram-sha-256); its one role, the superuser ``prefect``, owns the database
``prefect``. PostgreSQL refuses to run as root: as root every command runs as the ``postgres``
user (``runuser``), which owns DIR, and DIR's parents get o+x where the user could not pass.
"""

import argparse
import os
import pwd
import re
import secrets
import shutil
import socket
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from sentiment_lora.errors import debug_requested, report_input_error

DEFAULT_PORT = 5433
USER = "prefect"
DATABASE = "prefect"
OS_USER = "postgres"  # runs the cluster when this process is root
CONF = "sentiment_lora.conf"  # our settings, included from data/postgresql.conf
INSTALL_HINT = "install it with `make postgres` (apt-get install postgresql)"


class PostgresError(RuntimeError):
    """A PostgreSQL command failed; the message names the command and the log."""


@dataclass(frozen=True)
class PostgresCluster:
    """A cluster under ``directory``, reachable on 127.0.0.1:``port``."""

    directory: Path
    port: int
    password: str = field(repr=False)
    log: Path

    @property
    def data(self) -> Path:
        """PGDATA."""
        return self.directory / "data"

    @property
    def socket_dir(self) -> Path:
        """Directory of the unix socket."""
        return self.directory / "sock"

    @property
    def url(self) -> str:
        """SQLAlchemy URL for ``PREFECT_SERVER_DATABASE_CONNECTION_URL``."""
        password = quote(self.password, safe="")
        return f"postgresql+asyncpg://{USER}:{password}@127.0.0.1:{self.port}/{DATABASE}"


def bin_dir() -> Path:
    """Directory of initdb/pg_ctl/psql: the newest /usr/lib/postgresql/*/bin, else the PATH."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresError(
        f"PostgreSQL not found (no /usr/lib/postgresql/*/bin/initdb): {INSTALL_HINT}"
    )


def _as_root() -> bool:
    return os.geteuid() == 0


def _run(
    args: list[str], *, cwd: Path, log: Path | None = None, password: str | None = None
) -> str:
    """Run a PostgreSQL program (as ``postgres`` when root); raise PostgresError on failure."""
    cmd = [str(bin_dir() / args[0]), *args[1:]]
    if _as_root():
        cmd = ["runuser", "-u", OS_USER, "--", *cmd]
    env = {**os.environ, "PGPASSWORD": password} if password else None
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise PostgresError(f"`{' '.join(cmd)}` timed out after 120 s{_see(log)}") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise PostgresError(
            f"`{' '.join(cmd)}` failed (exit {done.returncode}): {output}{_see(log)}"
        )
    return done.stdout


def _see(log: Path | None) -> str:
    if log is None or not log.exists():
        return ""
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
    return f"\nlog {log}:\n{tail}"


def _give_to_postgres(path: Path) -> None:
    """As root: ``path`` owned by the postgres user; no-op otherwise."""
    if _as_root():
        user = pwd.getpwnam(OS_USER)
        os.chown(path, user.pw_uid, user.pw_gid)


def _make_traversable(path: Path) -> None:
    """As root: add o+x to every parent of ``path`` the postgres user could not pass."""
    if not _as_root():
        return
    uid = pwd.getpwnam(OS_USER).pw_uid
    for parent in reversed(path.resolve().parents):
        st = parent.stat()
        if st.st_uid != uid and not st.st_mode & stat.S_IXOTH:
            parent.chmod(stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
            print(f"postgres: made {parent} traversable (o+x) for user {OS_USER}", file=sys.stderr)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as postgres: TIME_WAIT is free
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _recorded_port(data: Path) -> int | None:
    conf = data / CONF
    match = conf.exists() and re.search(r"^port = (\d+)$", conf.read_text(), re.MULTILINE)
    return int(match.group(1)) if match else None


def ensure_cluster(
    directory: Path, *, port: int | None = None, log: Path | None = None
) -> PostgresCluster:
    """Initialise a cluster under ``directory``, or reuse the one there (idempotent).

    ``port``: given, it is used; else the cluster's earlier port, else 5433, else a free one
    (a port taken by something else is replaced while the cluster is stopped). ``log`` defaults
    to ``directory/postgres.log``. Does not start the server (see :func:`start`).
    """
    directory = directory.resolve()
    log = (log or directory / "postgres.log").resolve()
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    _give_to_postgres(directory)
    _make_traversable(directory / "data")
    pwfile = directory / "password"
    if not pwfile.exists():
        pwfile.touch(mode=0o600)
        pwfile.write_text(secrets.token_hex(24) + "\n")
    pwfile.chmod(0o600)
    _give_to_postgres(pwfile)
    password = pwfile.read_text().strip()
    data = directory / "data"
    if not (data / "PG_VERSION").exists():
        _run(
            [
                "initdb",
                "-D",
                str(data),
                "-U",
                USER,
                "--auth=scram-sha-256",
                f"--pwfile={pwfile}",
                "-E",
                "UTF8",
                "--no-locale",
            ],
            cwd=directory,
        )
        with open(data / "postgresql.conf", "a") as conf:
            conf.write(f"\ninclude_if_exists = '{CONF}'  # sentiment-lora: scripts/postgres.py\n")
    sock = directory / "sock"
    sock.mkdir(mode=0o700, exist_ok=True)
    _give_to_postgres(sock)
    running = is_running(directory)
    recorded = _recorded_port(data)
    if port is None:
        port = recorded or DEFAULT_PORT
        if not running and not _port_free(port):
            port = _free_port()
    elif running and recorded is not None and port != recorded:
        raise PostgresError(f"cluster {directory} runs on port {recorded}, not {port}: stop it")
    if len(f"{sock}/.s.PGSQL.{port}") > 107:
        raise PostgresError(f"socket path under {sock} too long for a unix socket: shorter dir")
    conf = data / CONF
    conf.write_text(
        f"listen_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{sock}'\n"
    )
    _give_to_postgres(conf)
    return PostgresCluster(directory=directory, port=port, password=password, log=log)


def is_running(directory: Path) -> bool:
    """Whether the cluster under ``directory`` has a live postmaster."""
    data = directory.resolve() / "data"
    if not (data / "postmaster.pid").exists():
        return False
    try:
        _run(["pg_ctl", "status", "-D", str(data)], cwd=directory)
    except PostgresError:
        return False
    return True


def start(cluster: PostgresCluster, *, timeout: int = 60) -> PostgresCluster:
    """Start the cluster unless it runs, wait until it accepts connections, and create the
    database ``prefect`` when missing."""
    if not is_running(cluster.directory):
        cluster.log.parent.mkdir(parents=True, exist_ok=True)
        cluster.log.touch()
        _give_to_postgres(cluster.log)
        _make_traversable(cluster.log)
        _run(
            ["pg_ctl", "start", "-D", str(cluster.data), "-l", str(cluster.log)]
            + ["-w", "-t", str(timeout)],
            cwd=cluster.directory,
            log=cluster.log,
        )
    exists = psql(cluster, f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'", "postgres")
    if not exists.strip():
        psql(cluster, f"CREATE DATABASE {DATABASE} OWNER {USER}", "postgres")
    return cluster


def stop(directory: Path, *, timeout: int = 60) -> bool:
    """Stop the cluster under ``directory`` (fast mode: clients are disconnected). Returns
    whether it was running."""
    directory = directory.resolve()
    if not is_running(directory):
        return False
    _run(
        ["pg_ctl", "stop", "-D", str(directory / "data"), "-m", "fast", "-w", "-t", str(timeout)],
        cwd=directory,
    )
    return True


def psql(cluster: PostgresCluster, sql: str, database: str = DATABASE) -> str:
    """Run ``sql`` through psql on the cluster's socket; return its unaligned output."""
    return _run(
        ["psql", "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-h", str(cluster.socket_dir)]
        + ["-p", str(cluster.port), "-U", USER, "-d", database, "-c", sql],
        cwd=cluster.directory,
        log=cluster.log,
        password=cluster.password,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("command", choices=["start", "stop", "status", "psql"])
    p.add_argument("directory", type=Path)
    p.add_argument("sql", nargs="?", help="for psql")
    p.add_argument("--port", type=int, help=f"for start (default {DEFAULT_PORT} or a free one)")
    p.add_argument("--debug", action="store_true", help="show the traceback of an error too")
    args = p.parse_args(argv)
    try:
        if args.command == "start":
            cluster = start(ensure_cluster(args.directory, port=args.port))
            print(f"PostgreSQL on 127.0.0.1:{cluster.port}, log {cluster.log}")
            print(cluster.url)
        elif args.command == "stop":
            print("stopped" if stop(args.directory) else "not running")
        elif args.command == "status":
            print("running" if is_running(args.directory) else "not running")
        else:
            if not args.sql:
                p.error("psql needs SQL")
            cluster = ensure_cluster(args.directory)
            print(psql(cluster, args.sql), end="")
    except PostgresError as exc:
        return report_input_error(exc, debug_requested(args.debug))
    return 0


if __name__ == "__main__":
    sys.exit(main())
