"""``sentiment-lora lineage``: from a data version to the runs that trained on it, their best
configs, the registry versions they became and when those were champion; or the same chain
through one run.

Read from what is already recorded: the data directory's manifest (versions and sha256), the
ledger (each run's train.tsv sha256, best config, scores, gate outcome; the champion after
every run and rollback) and the registry's versions (which run each came from).
"""

from pathlib import Path

from sentiment_lora.errors import UserError
from sentiment_lora.operations.data_manifest import DataVersion, read_manifest
from sentiment_lora.operations.ledger import (
    LedgerRecord,
    RunLedgerRecord,
    read_ledger,
)
from sentiment_lora.operations.registry import VersionRecord, list_versions

Period = tuple[str, str | None]  # champion from, until (None: still champion)


def champion_periods(ledger: list[LedgerRecord]) -> dict[str, list[Period]]:
    """When each registry version was champion, from the ledger's order of events."""
    periods: dict[str, list[Period]] = {}
    current, since = None, None
    for record in ledger:
        now = record.champion_version if isinstance(record, RunLedgerRecord) else record.version
        if now == current:
            continue
        if current is not None:
            periods[current].append((since, record.time))
        current, since = now, record.time
        if current is not None:
            periods.setdefault(current, [])
    if current is not None:
        periods[current].append((since, None))
    return periods


def _period_text(periods: list[Period]) -> str:
    if not periods:
        return "never champion"
    spans = [f"{start} to {end or 'now'}" for start, end in periods]
    return "champion " + ", ".join(spans)


def _version_line(v: DataVersion, data_dir: Path) -> str:
    changes = f"+{v.rows_added} rows, {v.rows_relabelled} relabelled"
    return (
        f"data {v.version} of {data_dir}: sha256 {v.sha256}, {v.rows:,} rows ({v.origin}, "
        f"{changes}, {v.time})"
    )


def _run_lines(
    run: RunLedgerRecord, versions: list[VersionRecord], periods: dict[str, list[Period]]
) -> list[str]:
    lines = [
        f"  run {run.run_id} ({run.triggered_by}, {run.time}): best config {run.best_config}, "
        f"test accuracy {run.test_accuracy:.4f}; {run.gate}"
    ]
    for version in (v for v in versions if v.run_id == run.run_id):
        lines.append(
            f"    registry {version.version} ({version.config_name}): "
            f"{_period_text(periods.get(version.version, []))}"
        )
    return lines


def lineage(target: str, *, data_dir: Path, registry_dir: Path) -> list[str]:
    """The chain through ``target``: a data version (``vNNNN``) or a run id."""
    manifest = read_manifest(data_dir).versions
    ledger = read_ledger(registry_dir)
    runs = [r for r in ledger if isinstance(r, RunLedgerRecord)]
    versions = list_versions(registry_dir)
    periods = champion_periods(ledger)
    data = next((v for v in manifest if v.version == target), None)
    if data is not None:
        trained = [r for r in runs if r.train_sha256 == data.sha256]
        lines = [_version_line(data, data_dir)]
        for run in trained:
            lines += _run_lines(run, versions, periods)
        if not trained:
            lines.append("  no run in the ledger trained on it")
        return lines
    run = next((r for r in runs if r.run_id == target), None)
    if run is None:
        raise UserError(
            f"lineage: {target} is neither a data version of {data_dir} nor a run in the "
            f"ledger of {registry_dir}"
        )
    data = next((v for v in manifest if v.sha256 == run.train_sha256), None)
    if data is not None:
        head = _version_line(data, data_dir)
    elif run.train_sha256:
        head = f"data of {data_dir}: sha256 {run.train_sha256} (not a recorded version)"
    else:
        head = "data: not recorded (a run from before the ledger kept train.tsv's sha256)"
    return [head, *_run_lines(run, versions, periods)]
