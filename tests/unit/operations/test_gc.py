"""``sentiment-lora gc``: old run directories go; the champion's run, the latest run, runs
being written and everything that is not a published run stay."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from sentiment_lora.cli import main
from sentiment_lora.operations import gc
from sentiment_lora.paths import LATEST, RESULTS_FILE


@pytest.fixture
def reports(tmp_path: Path, monkeypatch) -> Path:
    """Five published runs (r1 oldest, 1,000 bytes each), latest -> r3, a run being staged, a
    stray directory; the registry's champion came from r1."""
    reports = tmp_path / "reports"
    for i in range(1, 6):
        run = reports / f"20261201-00000{i}-r{i}"
        (run / "model").mkdir(parents=True)
        (run / RESULTS_FILE).write_text("{}")
        (run / "model" / "w.bin").write_bytes(b"0" * 998)
    (reports / LATEST).symlink_to("20261201-000003-r3")
    (reports / ".20261201-000009-r9.partial").mkdir()  # a run being written
    (reports / "notes").mkdir()  # not a run: no results file
    champion = SimpleNamespace(run_id="20261201-000001-r1")
    monkeypatch.setattr(gc, "read_champion_version", lambda registry_dir: champion)
    return reports


def _names(reports: Path) -> list[str]:
    return sorted(p.name for p in reports.iterdir())


def test_gc_keeps_the_newest_the_champion_and_the_latest(reports: Path, tmp_path: Path) -> None:
    registry = tmp_path / "registry"
    before = _names(reports)
    plan = gc.run_gc(reports, registry, keep_runs=2, dry_run=True)
    assert [Path(r.path).name for r in plan.remove] == ["20261201-000002-r2"]
    assert plan.freed == 1000 and _names(reports) == before  # a dry run removes nothing
    assert plan.kept == {
        "20261201-000001-r1": "the champion's run",
        "20261201-000003-r3": "the latest run",
    }
    gc.run_gc(reports, registry, keep_runs=2)
    assert _names(reports) == [item for item in before if item != "20261201-000002-r2"]
    assert gc.plan_gc(reports, registry, keep_runs=2).remove == []  # nothing more to do
    with pytest.raises(ValueError, match="keep_runs"):
        gc.plan_gc(reports, registry, keep_runs=0)


def test_gc_command_prints_what_it_frees(reports: Path, tmp_path: Path, capsys) -> None:
    where = ["--reports-dir", str(reports), "--registry-dir", str(tmp_path / "registry")]
    assert main(["gc", "--keep-runs", "1", "--dry-run", *where]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "dry run: would free 0 MiB in 2 run directories"  # r2 and r4
    assert sum(line.startswith("would remove ") for line in out) == 2
    assert main(["gc", "--keep-runs", "1", *where]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "freed 0 MiB in 2 run directories"
    left = [n for n in _names(reports) if n.startswith("2026")]
    assert left == ["20261201-000001-r1", "20261201-000003-r3", "20261201-000005-r5"]
    assert main(["gc", "--keep-runs", "0", *where]) == 2
    assert "--keep-runs: keep at least 1 run" in capsys.readouterr().err
