"""``sentiment-lora lineage``: data version -> runs -> configs -> registry versions -> when each
was champion, built from a real manifest, ledger and registry."""

from pathlib import Path

import pytest

from sentiment_lora.cli import main
from sentiment_lora.operations.data_manifest import read_manifest
from sentiment_lora.operations.data_versions import add_rows
from sentiment_lora.operations.lineage import champion_periods
from sentiment_lora.operations.registry import promote, rollback
from sentiment_lora.operations.run_records import PublishedRun, append_run_record
from tests.conftest import write_tsv
from tests.unit.operations.test_rollback import _model, _record


def _run(registry: Path, name: str, sha: str | None) -> None:
    append_run_record(
        registry,
        PublishedRun(
            run_id=f"run-{name}",
            triggered_by="cli",
            data={"fingerprint": "f"},
            best_config=name,
            test_accuracy=0.8,
            test_f1_macro=0.8,
            train_sha256=sha,
        ),
    )


@pytest.fixture
def world(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """v0001/v0002 of a data dir; run-a (v0001) and run-b (v0002) each promoted; then a
    rollback to run-a's version; run-c from before the ledger kept hashes."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    data, registry = tmp_path / "live", tmp_path / "registry"
    data.mkdir()
    write_tsv(data / "train.tsv", ["a good film\t1", "a bad film\t0"])
    add_rows(data, write_tsv(tmp_path / "new.tsv", ["a new film\t1"]), holdout_fraction=0)
    v1, v2 = read_manifest(data).versions
    promote(registry, _record("a"), _model(tmp_path / "ma", b"a"))
    _run(registry, "a", v1.sha256)
    promote(registry, _record("b"), _model(tmp_path / "mb", b"b"))
    _run(registry, "b", v2.sha256)
    rollback(registry, "v0001", reason="b misbehaved")
    _run(registry, "c", None)
    return data, registry


def test_a_data_version_leads_to_its_runs_and_their_champion_periods(world, capsys) -> None:
    data, registry = world
    where = ["--data-dir", str(data), "--registry-dir", str(registry)]
    assert main(["lineage", "v0001", *where]) == 0
    lines = capsys.readouterr().out.splitlines()
    v1 = read_manifest(data).versions[0]
    assert lines[0].startswith(f"data v0001 of {data}: sha256 {v1.sha256}, 2 rows (original")
    assert lines[1].startswith("  run run-a (cli, ") and "best config a" in lines[1]
    assert lines[2].startswith("    registry v0001 (a): champion ") and lines[2].endswith(" to now")
    assert lines[2].count(" to ") == 2  # champion, replaced by v0002, champion again (rollback)
    assert len(lines) == 3

    assert main(["lineage", "run-b", *where]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("data v0002 of ") and "+1 rows" in lines[0]
    assert "registry v0002 (b): champion " in lines[2] and not lines[2].endswith("now")

    assert main(["lineage", "run-c", *where]) == 0
    assert capsys.readouterr().out.startswith("data: not recorded")
    assert main(["lineage", "v0009", *where]) == 2
    assert "lineage: v0009 is neither a data version" in capsys.readouterr().err


def test_champion_periods_follow_runs_and_rollbacks(world) -> None:
    from sentiment_lora.operations.ledger import read_ledger

    _, registry = world
    periods = champion_periods(read_ledger(registry))
    assert [end is None for _, end in periods["v0001"]] == [False, True]
    assert [end is None for _, end in periods["v0002"]] == [False]
