"""Two runs with train.tsv edited in between: the second report says what changed and why.

The first run becomes champion; then 500 rows are removed, 1,000 positive ones added and 100
relabelled in train.tsv, and the second run's "Since the champion" section, JSON, trend and
events must show exactly that. Small: 300 training rows, one config, a 200-sentence test set.
"""

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from prefect.testing.utilities import prefect_test_harness
from pypdf import PdfReader

from sentiment_lora.evidence.data_snapshot import normalize_sentence
from sentiment_lora.operations.events import CHAMPION_KEPT, CHAMPION_PROMOTED, DATA_DRIFT
from sentiment_lora.operations.ledger import read_ledger
from sentiment_lora.operations.registry import read_champion_version
from sentiment_lora.training.data import read_glue_tsv
from tests.flows.small_run import small_run

FIRST_ROWS, REMOVED, ADDED, RELABELLED = 3000, 500, 1000, 100


def _write(frame: pd.DataFrame, path: Path) -> None:
    frame.to_csv(path, sep="\t", index=False, lineterminator="\n")


def _editions(sst2_dir: Path, tmp: Path) -> tuple[Path, pd.DataFrame]:
    """A data dir holding the first train.tsv, and the edited train.tsv to write later."""
    full = read_glue_tsv(sst2_dir / "train.tsv")
    full["key"] = full["sentence"].map(normalize_sentence)
    unique = full.drop_duplicates("key", keep=False)  # sentences that occur exactly once
    first = unique.iloc[:FIRST_ROWS]
    rest = unique.iloc[FIRST_ROWS:]
    fresh = rest[rest["label"] == 1].iloc[:ADDED]  # all positive: the class balance drifts
    kept = first.iloc[REMOVED:].copy()
    flip = kept.index[:RELABELLED]
    kept.loc[flip, "label"] = 1 - kept.loc[flip, "label"]
    second = pd.concat([kept, fresh])
    data = tmp / "data"
    data.mkdir()
    shutil.copy(sst2_dir / "dev.tsv", data / "dev.tsv")
    _write(first[["sentence", "label"]], data / "train.tsv")
    return data, second[["sentence", "label"]]


@pytest.mark.slow
def test_second_report_explains_what_changed(sst2_dir: Path, tmp_path: Path, monkeypatch) -> None:
    data, edited = _editions(sst2_dir, tmp_path)
    sent: list[tuple[str, dict]] = []  # the events the pipeline emits
    monkeypatch.setattr(
        "tasks.events.emit_event",
        lambda *, event, resource, payload: sent.append((event, payload)),
    )
    with prefect_test_harness(server_startup_timeout=120):
        first = small_run(data, tmp_path)
        _write(edited, data / "train.tsv")
        second = small_run(data, tmp_path)
        # The same run as a dry run against an empty registry: it would promote, and does not.
        dry = small_run(data, tmp_path, gate="dry-run", registry_dir=str(tmp_path / "dry-registry"))

    summary = json.loads((second / "fine_tuning_results.json").read_text(encoding="utf-8"))
    diff = summary["data_diff"]
    source = diff["source"]["train.tsv"]
    assert (source["added"], source["removed"], source["relabelled"]) == (
        ADDED,
        REMOVED,
        RELABELLED,
    )
    assert not diff["first_run"] and not diff["test_set_changed"]
    assert summary["champion"]["champion"]["run_id"] == first.name
    assert summary["champion"]["reasons"]  # every reason the gate used
    # the data changed, so the gate judged non-inferiority, and counted its use of the test set
    gate = summary["champion"]
    assert (gate["rule_option"], gate["rule"], gate["margin"]) == ("auto", "non-inferiority", 0.01)
    assert [c["test_set"] for c in gate["checks"]] == ["test"] and gate["test_set_decisions"] == 1
    ledger = read_ledger(tmp_path / "registry")
    assert ledger[0].test_set_hash == ledger[1].test_set_hash is not None
    assert (ledger[0].gate_rule, ledger[1].gate_rule) == (None, "non-inferiority")
    assert [h["run_id"] for h in summary["history"]] == [first.name, second.name]
    assert (second / "trend.png").is_file()
    assert [r.run_id for r in read_ledger(tmp_path / "registry")] == [first.name, second.name]

    text = " ".join(page.extract_text() for page in PdfReader(second / "report.pdf").pages)
    text = " ".join(text.split())
    assert "2 Since the champion" in text
    assert f"train.tsv 3,000 3,500 {ADDED:,} {REMOVED:,} {RELABELLED:,}" in text
    assert "Did it drift?" in text and "Every run so far" in text
    assert "Decision:" in text
    assert "Rule: non-inferiority (option auto); margin 0.010 macro-F1; test:" in text
    assert "this test set has now served 1 gate decision." in text

    dry_results = json.loads((dry / "fine_tuning_results.json").read_text(encoding="utf-8"))
    dry_gate = dry_results["champion"]
    assert dry_gate["dry_run"] and dry_gate["would_promote"] and not dry_gate["promoted"]
    assert dry_gate["reason"].startswith("dry run: would promote, because ")
    assert read_champion_version(tmp_path / "dry-registry") is None  # nothing was promoted
    assert [r.gate for r in read_ledger(tmp_path / "dry-registry")] == ["dry run"]
    assert "dry run: would promote" in (dry / "report.html").read_text(encoding="utf-8")

    # Events: promoted (first run); the edited data drifted, alerted with the second run's id,
    # which then ended in promoted or kept; the dry run ended in kept ("dry run").
    names = [name for name, _ in sent]
    assert diff["drifted"] and names[0] == CHAMPION_PROMOTED
    assert names[1] == DATA_DRIFT and sent[1][1]["run_id"] == second.name
    assert names[2] in (CHAMPION_PROMOTED, CHAMPION_KEPT)
    assert names[3:] == [CHAMPION_KEPT] and sent[3][1]["outcome"] == "dry run"
