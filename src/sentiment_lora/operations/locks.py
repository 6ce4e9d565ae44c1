"""The registry's exclusive lock: one writer at a time, across processes and threads.

``registry_lock`` holds ``flock`` on ``<registry_dir>/.lock``. The kernel releases it when the
holder exits, so a crashed run never leaves the registry locked. The lock is re-entrant within
a thread (a function that locks may call another that locks); another thread or process waits.
It protects a local or POSIX file system shared by processes on one host; on a network file
system ``flock`` may not exclude other hosts.
"""

import fcntl
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = ".lock"
LOCK_TIMEOUT = 600.0  # seconds: a gate that re-scores the champion on CPU can take minutes
# The Prefect global concurrency limit (size 1) that serialises gate and promotion across
# machines when a server runs; the orchestration layer holds it, this file lock always applies.
REGISTRY_LIMIT = "sentiment-lora-registry"

_held = threading.local()  # per thread: {lock path: depth}


def _depths() -> dict[Path, int]:
    if not hasattr(_held, "depths"):
        _held.depths = {}
    return _held.depths


def _holder(path: Path) -> str:
    try:
        pid = path.read_text(encoding="utf-8").strip()
    except OSError:
        return ""
    return f" (held by process {pid})" if pid else ""


@contextmanager
def registry_lock(
    registry_dir: Path | str, *, timeout: float = LOCK_TIMEOUT, poll_interval: float = 0.05
) -> Iterator[Path]:
    """Hold the exclusive lock of ``registry_dir`` (created if missing); yields the lock file.

    Waits up to ``timeout`` seconds for another holder, then raises :class:`TimeoutError`.
    """
    if timeout < 0:
        raise ValueError(f"timeout: must be >= 0 (got {timeout})")
    path = Path(registry_dir).resolve() / LOCK_FILE
    depths = _depths()
    if depths.get(path):  # this thread holds it already
        depths[path] += 1
        try:
            yield path
        finally:
            depths[path] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"{path}: the registry is still locked after {timeout:g} s{_holder(path)}"
                    ) from None
                time.sleep(poll_interval)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        depths[path] = 1
        try:
            yield path
        finally:
            del depths[path]
    finally:
        os.close(fd)  # closing the descriptor releases the lock
