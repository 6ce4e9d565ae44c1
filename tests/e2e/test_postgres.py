"""The fan-out run once more, on a second stack whose Prefect server keeps its database in a
real PostgreSQL cluster (scripts/postgres.py, what `make stack DB=postgres` uses)."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterParentFlowRunId
from prefect.deployments import run_deployment

from scripts import postgres
from tests.e2e.conftest import _other_machine, small_run_parameters, stack_module

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def postgres_stack(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, str], postgres.PostgresCluster]]:
    """A cluster on a free port, a server on it (own home, free port), pools, deployments and a
    cpu and a gpu worker; yields the stack's environment and the cluster. All of it is stopped
    and the cluster removed afterwards."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    try:
        postgres.bin_dir()
    except postgres.PostgresError as exc:
        pytest.fail(f"this test needs PostgreSQL: {exc}")
    # Not under pytest's tmp dir: /tmp/pytest-of-root is 0700, the postgres user must pass.
    scratch = Path(tempfile.mkdtemp(prefix="sentiment-lora-pg-", dir="/tmp"))
    scratch.chmod(0o755)
    home = tmp_path_factory.mktemp("prefect-home-pg")
    procs = []
    try:
        cluster = postgres.ensure_cluster(scratch / "cluster", port=stack_module.free_port())
        postgres.start(cluster, timeout=60)
        env = stack_module.stack_env(home, stack_module.free_port(), db_url=cluster.url)
        procs.append(stack_module.start_server(env))
        stack_module.deploy(env)
        procs.append(stack_module.start_worker(env, "cpu"))
        procs.append(stack_module.start_worker(env, "gpu", extra_env=_other_machine(home)))
        with temporary_settings(updates={PREFECT_API_URL: env["PREFECT_API_URL"]}):
            yield env, cluster
    finally:
        try:
            stack_module.stop(procs)
            postgres.stop(scratch / "cluster")
        finally:
            shutil.rmtree(scratch)


def test_fan_out_on_a_postgres_backed_server(
    postgres_stack: tuple[dict[str, str], postgres.PostgresCluster],
    sst2_dir: Path,
    tmp_path: Path,
) -> None:
    env, cluster = postgres_stack
    params = small_run_parameters(tmp_path, sst2_dir)
    parent = run_deployment("sst2-lora-pipeline/sst2-full", parameters=params, timeout=360)
    assert parent.state.is_completed(), (
        f"parent run ended {parent.state.name}: {parent.state.message}"
    )
    with get_client(sync_client=True) as client:
        children = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                parent_flow_run_id=FlowRunFilterParentFlowRunId(any_=[parent.id])
            )
        )
    assert len(children) == 2
    assert {c.work_pool_name for c in children} == {"gpu"}
    assert all(c.state.is_completed() for c in children)

    # The server wrote these runs to PostgreSQL, over connections it still holds, and no SQLite.
    ids = ", ".join(f"'{run.id}'" for run in (parent, *children))
    states = postgres.psql(cluster, f"SELECT state_type FROM flow_run WHERE id IN ({ids})")
    assert states.split() == ["COMPLETED"] * 3
    connections = postgres.psql(
        cluster,
        "SELECT count(*) FROM pg_stat_activity WHERE datname = 'prefect' "
        "AND usename = 'prefect' AND pid <> pg_backend_pid()",
    )
    assert int(connections) >= 1
    assert not (Path(env["PREFECT_HOME"]) / "prefect.db").exists()
