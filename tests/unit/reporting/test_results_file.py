"""``fine_tuning_results.json`` read back: every damaged file is one precise RunFileError."""

import json
import os
import shutil
from pathlib import Path

import pytest

from sentiment_lora.errors import UserError
from sentiment_lora.paths import RESULTS_FILE
from sentiment_lora.reporting import results
from sentiment_lora.reporting.results import RunFileError, load_results

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "run"
GOOD = (FIXTURE / RESULTS_FILE).read_text(encoding="utf-8")
ACCURACY_NOT_A_NUMBER = r": test_metrics\.accuracy: Input should be a valid number$"


def _edited(edit) -> bytes:
    summary = json.loads(GOOD)
    edit(summary)
    return json.dumps(summary, indent=2).encode()


def _run(tmp_path: Path, content: bytes) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / RESULTS_FILE).write_bytes(content)
    return run_dir


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", r": the results file is empty"),
        (b" \n\t\n", r": the results file is empty"),
        (b'{"run_id": "x",\n "created_at": }', r":2:16: not valid JSON: Expecting value$"),
        (b'{"run_id": "\xff"}', r":1:13: not UTF-8 \(byte 0xff\)"),
        ('{"run_id": "x"}'.encode("utf-16"), r":1:1: not UTF-8 \(byte 0xff\)"),
        (b"[" * 100_000, r":1:65: nested deeper than 64 levels"),
        (b'{"a": ' * 100_000, r":1:385: nested deeper than 64 levels"),
        (b'{"a": [' + b"[" * 70 + b"]" * 70 + b"]}", r":1:70: nested deeper than 64 levels"),
        (GOOD.replace('"accuracy": 0.', '"accuracy": NaN, "x": 0.', 1).encode(), "NaN is not"),
        (GOOD.replace('"accuracy": 0.', '"accuracy": -Infinity, "x": 0.', 1).encode(), "Infinity"),
        (GOOD.replace('"accuracy": 0.', '"accuracy": 1e999, "x": 0.', 1).encode(), "1e999 is out"),
        (b'{"n": ' + b"9" * 5000 + b"}", r"number 9{20}\.\.\.\(5000 characters\) is out"),
        (b'{"run_id": "a", "run_id": "b"}', "the key 'run_id' appears twice"),
        (b"[]", r": \(top level\): Input should be an object"),
        (_edited(lambda s: s["test_metrics"].update(accuracy=None)), ACCURACY_NOT_A_NUMBER),
        (_edited(lambda s: s["test_metrics"].update(accuracy="0.9")), ACCURACY_NOT_A_NUMBER),
        (_edited(lambda s: s["test_metrics"].update(accuracy=True)), ACCURACY_NOT_A_NUMBER),
        (_edited(lambda s: s["test_metrics"].update(n="872")), "test_metrics.n: Input should be"),
        (_edited(lambda s: s.update(run_id=5)), "run_id: Input should be a valid string$"),
        (_edited(lambda s: s.pop("best_config")), "best_config: Field required$"),
        (b'{"run_id": "x"}', r"created_at: Field required \(and \d+ more\)"),
    ],
    ids=[
        "empty", "blank", "syntax", "latin-1", "utf-16", "100k-brackets", "100k-objects",
        "deep-inside", "nan", "infinity", "1e999", "5000-digits", "duplicate-key", "array",
        "null-metric", "string-metric", "bool-metric", "string-count", "int-run-id",
        "missing-key", "many-missing",
    ],
)  # fmt: skip
def test_a_damaged_results_file_is_named_with_line_or_key(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    run_dir = _run(tmp_path, content)
    with pytest.raises(RunFileError, match=expected) as caught:
        load_results(run_dir)
    message = str(caught.value)
    assert message.startswith(f"{run_dir / RESULTS_FILE}") and "\n" not in message
    assert isinstance(caught.value, UserError)


def test_the_committed_run_loads(tmp_path: Path) -> None:
    summary = load_results(_run(tmp_path, GOOD.encode("utf-8-sig")))  # a BOM is allowed
    assert summary.test_metrics.accuracy == json.loads(GOOD)["test_metrics"]["accuracy"]


FLAT = FIXTURE.parent / "results-flat-2026-11-26.json"  # the committed run, as first written


def test_a_results_file_from_before_the_nested_layout_loads(tmp_path: Path) -> None:
    """Until 2026-12-08 each experiment copied the training fields flat beside its test
    scores; the committed run is that file re-written in today's layout."""
    old = load_results(_run(tmp_path, FLAT.read_bytes()))
    raw = json.loads(FLAT.read_text(encoding="utf-8"))["hyperparameter_experiments"]
    for e, flat in zip(old.hyperparameter_experiments, raw, strict=True):
        assert e.name == flat["name"] == e.training.hyperparams.name
        assert e.training.train_seconds == flat["training_seconds"] > 0
        assert e.training.validation_metrics.model_dump() == flat["validation_metrics"]
        assert e.training.history[0].eval_accuracy == flat["history"][0]["eval_accuracy"]
        assert e.test_metrics.accuracy == flat["test_metrics"]["accuracy"]
        assert e.training.adapter_dir == ""  # not recorded then
    assert old.hyperparameter_experiments == load_results(FIXTURE).hyperparameter_experiments


@pytest.mark.parametrize("layout", ["flat", "nested"])
def test_a_misspelt_training_key_is_named_in_either_layout(tmp_path: Path, layout: str) -> None:
    summary = json.loads((FLAT if layout == "flat" else FIXTURE / RESULTS_FILE).read_text())
    experiment = summary["hyperparameter_experiments"][1]
    (experiment if layout == "flat" else experiment["training"])["train_secnds"] = 1.0
    with pytest.raises(RunFileError, match=r"hyperparameter_experiments.1.training.train_secnds"):
        load_results(_run(tmp_path, json.dumps(summary).encode()))


def test_a_huge_file_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(results, "MAX_RESULTS_BYTES", 1000)
    run_dir = _run(tmp_path, b"[" + b"0," * 1000 + b"0]")
    with pytest.raises(RunFileError, match="more than 1,000 bytes, too large for a results file"):
        load_results(run_dir)


@pytest.mark.parametrize("what", ["missing-dir", "file", "no-results", "results-dir", "fifo"])
def test_a_run_directory_that_is_not_one_is_named(tmp_path: Path, what: str) -> None:
    run_dir = tmp_path / "run"
    expected = {
        "missing-dir": f"{run_dir}: does not exist",
        "file": f"{run_dir}: is not a directory",
        "no-results": f"{run_dir / RESULTS_FILE}: not found (is {run_dir} a run directory?)",
        "results-dir": f"{run_dir / RESULTS_FILE}: is a directory, not a results file",
        "fifo": f"{run_dir / RESULTS_FILE}: not a regular file",  # reading it would block
    }[what]
    if what == "file":
        run_dir.write_text("{}")
    elif what != "missing-dir":
        run_dir.mkdir()
    if what == "results-dir":
        (run_dir / RESULTS_FILE).mkdir()
    if what == "fifo":
        os.mkfifo(run_dir / RESULTS_FILE)
    with pytest.raises(RunFileError) as caught:
        load_results(run_dir)
    assert str(caught.value).startswith(expected)


def test_an_unreadable_results_file_is_named(tmp_path: Path, monkeypatch) -> None:
    run_dir = _run(tmp_path, GOOD.encode())
    original = Path.open

    def refuse(self: Path, *args, **kwargs):
        if self.name == RESULTS_FILE:
            raise PermissionError(13, "Permission denied", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)  # root reads a chmod 000 file anyway
    with pytest.raises(RunFileError, match=r"cannot read the results file \(Permission denied\)"):
        load_results(run_dir)


def test_a_symlink_to_nowhere_is_named(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / RESULTS_FILE).symlink_to(tmp_path / "gone.json")
    with pytest.raises(RunFileError, match=f"{RESULTS_FILE}: results file not found"):
        load_results(run_dir)


def test_load_results_raises_only_run_file_errors_for_prefixes_of_the_file(tmp_path) -> None:
    """A file cut anywhere (a crash while copying it) is a RunFileError, never another error."""
    data = GOOD.encode()
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for cut in range(0, len(data), 997):
        (run_dir / RESULTS_FILE).write_bytes(data[:cut])
        with pytest.raises(RunFileError):
            load_results(run_dir)
    shutil.rmtree(run_dir)
