"""``test_predictions.csv`` read back: damage is named by file and line, before any drawing."""

import shutil
from pathlib import Path

import pytest

from sentiment_lora.paths import PREDICTIONS_FILE, RESULTS_FILE
from sentiment_lora.reporting.predictions import read_predictions
from sentiment_lora.reporting.render import render_html
from sentiment_lora.reporting.results import RunFileError, load_results

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "run"
GOOD = (FIXTURE / PREDICTIONS_FILE).read_bytes()
LINES = GOOD.split(b"\n")
SUMMARY = load_results(FIXTURE)


def _replace_line(number: int, new: bytes) -> bytes:
    """The fixture with its line ``number`` (1 = header) replaced."""
    return b"\n".join([*LINES[: number - 1], new, *LINES[number:]])


def _last_field(number: int, value: bytes) -> bytes:
    return _replace_line(number, LINES[number - 1].rsplit(b",", 1)[0] + b"," + value)


def _run(tmp_path: Path, predictions: bytes | None) -> Path:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(FIXTURE / RESULTS_FILE, run_dir / RESULTS_FILE)
    if predictions is not None:
        (run_dir / PREDICTIONS_FILE).write_bytes(predictions)
    return run_dir


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", ": the predictions file is empty"),
        (GOOD[: len(GOOD) // 2], ": 439 rows, but 872 test sentences in the results"),
        (b"\n".join(LINES[:101]) + b"\n", ": 100 rows, but 872 test sentences"),
        (LINES[0] + b"\n", ": 0 rows, but 872"),
        (_replace_line(6, LINES[5] + b",0.5"), ":6: 9 fields, the header has 8$"),
        (_replace_line(1, LINES[0].replace(b",label,", b",lbl,")), ":1: no column 'label'"),
        (_replace_line(1, LINES[0].replace(b"lr5e-4-r16-e2", b"x")), ":1: no column 'prob_pos"),
        (_replace_line(1, LINES[0].replace(b"majority", b"tfidf-logreg")), ":1: column 'prob_po"),
        (_replace_line(8, LINES[7].replace(b",0,", b",2,").replace(b",1,", b",2,")), ":8: label:"),
        (_last_field(10, b"abc"), ":10: prob_positive:tfidf-logreg: 'abc' is not a probability$"),
        (_last_field(10, b""), ":10: prob_positive:tfidf-logreg: '' is not a probability$"),
        (_last_field(10, b"nan"), ":10: prob_positive:tfidf-logreg: 'nan' is not a probability"),
        (_last_field(10, b"1.5"), ":10: prob_positive:tfidf-logreg: '1.5' is outside \\[0, 1\\]"),
        (_last_field(10, b"-inf"), ":10: prob_positive:tfidf-logreg: '-inf' is outside"),
        (b"\xff\xfe" + "sentence,label".encode("utf-16-le"), ":1:1: not UTF-8"),
    ],
    ids=[
        "empty", "cut-mid-row", "cut-at-a-row", "header-only", "extra-field", "no-label",
        "no-best-column", "duplicate-column", "label-2", "prob-text", "prob-empty", "prob-nan",
        "prob-above-1", "prob-inf", "utf-16",
    ],
)  # fmt: skip
def test_damaged_predictions_are_named_by_file_and_line(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    run_dir = _run(tmp_path, content)
    with pytest.raises(RunFileError, match=expected) as caught:
        read_predictions(run_dir, summary=SUMMARY)
    message = str(caught.value)
    assert message.startswith(str(run_dir / PREDICTIONS_FILE)) and "\n" not in message


def test_sound_predictions_are_typed_and_absent_ones_are_none(tmp_path: Path) -> None:
    frame = read_predictions(FIXTURE, summary=SUMMARY)
    assert len(frame) == SUMMARY.test_metrics.n
    assert (
        frame["label"].dtype.kind == "i"
        and frame.filter(like="prob_positive:").dtypes.eq(float).all()
    )
    assert read_predictions(_run(tmp_path, None), summary=SUMMARY) is None


def test_a_damaged_predictions_file_stops_the_report_before_anything_is_written(
    tmp_path: Path,
) -> None:
    run_dir = _run(tmp_path, _last_field(10, b"oops"))
    before = sorted(p.name for p in run_dir.iterdir())
    with pytest.raises(RunFileError, match=f"{PREDICTIONS_FILE}:10: "):
        render_html(run_dir)
    assert sorted(p.name for p in run_dir.iterdir()) == before  # no figure, no HTML
