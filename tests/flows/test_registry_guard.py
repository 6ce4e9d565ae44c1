"""The global concurrency limit serialises gates on their own, as between two machines.

On one host the registry's file lock already serialises two runs; on two hosts sharing a
registry over a network file system ``flock`` may not. The test takes the file lock away (as
that second host would see it) and keeps only the Prefect limit: two gates must still take
turns, and without the limit they overlap (the test fails if ``registry_guard`` stops holding
it).
"""

import threading
import time
from contextlib import nullcontext
from pathlib import Path

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.testing.utilities import prefect_test_harness

import tasks.locking as locking
from sentiment_lora.operations.locks import REGISTRY_LIMIT

HOLD = 10.0  # seconds a gate waits inside the guard for the other one to come in too


class Gates:
    """What two gates saw: the most that were inside the guard at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = self.most = self.done = 0
        self.both_in = threading.Event()

    def enter(self) -> None:
        with self.lock:
            self.inside += 1
            self.most = max(self.most, self.inside)
            if self.inside == 2:
                self.both_in.set()

    def leave(self) -> None:
        with self.lock:
            self.inside -= 1
            self.done += 1


@flow(name="guarded-gate", validate_parameters=False)  # gates: the caller's own object
def _gate(registry_dir: str, gates: Gates) -> None:
    with locking.registry_guard(registry_dir):
        gates.enter()
        deadline = time.monotonic() + HOLD
        while time.monotonic() < deadline and not gates.both_in.is_set() and gates.done == 0:
            time.sleep(0.05)  # the other gate is either inside now, or has been and gone
        gates.leave()


def _most_inside_at_once(registry_dir: Path) -> int:
    gates = Gates()
    threads = [threading.Thread(target=_gate, args=(str(registry_dir), gates)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert gates.done == 2, "a gate did not finish"
    return gates.most


@pytest.mark.slow
def test_the_global_limit_serialises_two_gates(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(locking, "registry_lock", lambda registry_dir: nullcontext())
    with prefect_test_harness(server_startup_timeout=120):
        # Without the limit on the server (and without the file lock) both gates get in.
        assert _most_inside_at_once(tmp_path / "registry") == 2
        with get_client(sync_client=True) as client:
            client.upsert_global_concurrency_limit_by_name(REGISTRY_LIMIT, 1)
        assert _most_inside_at_once(tmp_path / "registry") == 1, f"{REGISTRY_LIMIT} not held"
