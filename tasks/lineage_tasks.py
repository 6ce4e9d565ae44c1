"""Data lineage tasks: a snapshot of the run's data, and its diff against the champion's."""

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.logging import get_run_logger

from sentiment_lora.evidence.data_diff import DataDiff, diff_data
from sentiment_lora.evidence.data_snapshot import (
    SNAPSHOT_FILE,
    TRAINING,
    read_snapshot,
    run_frames,
    take_snapshot,
    write_snapshot,
)
from sentiment_lora.reporting.sentences import drift_markdown
from sentiment_lora.training.data import PreparedData, read_split
from tasks.caching import CACHED, data_diff_cache_key, snapshot_cache_key, snapshot_dir


def _frames(prepared: PreparedData, data_dir: str | None):
    """The source files (local data) and the training split actually used."""
    if data_dir is None:  # hub data: no source files a person edits
        return {TRAINING: read_split(prepared.train_path)}
    return run_frames(data_dir, prepared.train_path)


@task(name="snapshot-data", cache_key_fn=snapshot_cache_key, **CACHED)
def snapshot_data(prepared: PreparedData, data_dir: str | None, workdir: str) -> str:
    """Counts, balance, lengths, terms and per-sentence hashes of this run's data."""
    snapshot, tables = take_snapshot(_frames(prepared, data_dir))
    out = snapshot_dir(workdir, prepared)
    write_snapshot(out, snapshot, tables)
    get_run_logger().info("data snapshot: %s", out)
    return str(out)


@task(name="data-diff", cache_key_fn=data_diff_cache_key, **CACHED)
def data_diff(
    prepared: PreparedData,
    data_dir: str | None,
    snapshot: str,
    champion_snapshot: str | None,
    alpha: float,
) -> DataDiff:
    """What changed in the data since the champion, and whether it drifted."""
    diff = diff_data(
        _frames(prepared, data_dir),
        Path(champion_snapshot) if champion_snapshot else None,
        current=read_snapshot(snapshot),
        alpha=alpha,
    )
    return diff


@task(name="publish-data-diff")
def publish_data_diff(diff: DataDiff) -> None:
    """The ``sst2-data-drift`` artifact and the log lines of ``diff``: every run, also when
    ``data_diff`` came from the cache (an artifact made inside a cached task is not made
    again)."""
    create_markdown_artifact(
        key="sst2-data-drift",
        description="What changed in the data since the champion, and whether it drifted",
        markdown=drift_markdown(diff),
    )
    logger = get_run_logger()
    for line in diff.summary:
        logger.info("data: %s", line)


def snapshot_data_fresh(prepared: PreparedData, data_dir: str | None, workdir: str) -> str:
    """``snapshot_data``, recomputed instead of served from the cache if its files are gone."""
    complete = (snapshot_dir(workdir, prepared) / SNAPSHOT_FILE).is_file()
    return snapshot_data.with_options(refresh_cache=not complete)(prepared, data_dir, workdir)
