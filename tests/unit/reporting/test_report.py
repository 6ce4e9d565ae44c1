"""The HTML/PDF report, rendered from a committed run directory (tests/fixtures/run)."""

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pypdf import PdfReader

from sentiment_lora.cli import main
from sentiment_lora.paths import RESULTS_FILE
from sentiment_lora.reporting.context import build_report_context
from sentiment_lora.reporting.render import render_html, render_report
from sentiment_lora.reporting.results import load_results
from sentiment_lora.reporting.run_index import list_runs

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "run"
HOSTILE = "<script>alert(1)</script> & co"


def copy_run(dest: Path) -> Path:
    """A copy of the fixture run (JSON and predictions only) at ``dest``."""
    shutil.copytree(FIXTURE, dest)
    return dest


def edit_results(run_dir: Path, edit) -> dict:
    path = run_dir / RESULTS_FILE
    summary = json.loads(path.read_text(encoding="utf-8"))
    edit(summary)
    path.write_text(json.dumps(summary), encoding="utf-8")
    return summary


def _inject_hostile(summary: dict) -> None:
    errors = summary["error_analysis"]
    errors["high_confidence_errors"][0]["sentence"] = HOSTILE
    errors["clusters"]["clusters"][0]["central_examples"][0] = HOSTILE


class _ImageSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.sources += [value for name, value in attrs if name == "src" and value]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, dict]:
    """The fixture run with a hostile sentence injected, rendered once for this module."""
    run_dir = copy_run(tmp_path_factory.mktemp("report") / "20261126-065341-0a145816")
    summary = edit_results(run_dir, _inject_hostile)
    render_report(run_dir)
    return run_dir, summary


def test_pdf_has_pages_best_config_and_its_test_accuracy(rendered) -> None:
    run_dir, summary = rendered
    reader = PdfReader(run_dir / "report.pdf")
    assert len(reader.pages) > 1
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert summary["best_config"]["name"] in text
    assert f"{summary['test_metrics']['accuracy']:.4f}" in text
    first = reader.pages[0].extract_text()
    assert f"Page 1 of {len(reader.pages)}" in first
    assert summary["run_id"] in reader.pages[-1].extract_text()  # the footer of every page


def test_html_escapes_sentences_from_the_json(rendered) -> None:
    run_dir, _ = rendered
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; co" in html
    assert "<script>alert" not in html
    assert html.count("&lt;script&gt;") >= 2  # high-confidence error and cluster example


def test_every_referenced_image_sits_next_to_the_html(rendered) -> None:
    run_dir, _ = rendered
    parser = _ImageSources()
    parser.feed((run_dir / "report.html").read_text(encoding="utf-8"))
    assert len(parser.sources) == 6
    for src in parser.sources:
        assert "/" not in src and ":" not in src, src  # a bare file name: the folder can move
        assert (run_dir / src).is_file(), src
        assert (run_dir / src).read_bytes().startswith(b"\x89PNG")
    assert not [p for p in run_dir.iterdir() if p.name.endswith(".tmp")]


def test_html_sections_come_in_order(rendered) -> None:
    run_dir, _ = rendered
    html = (run_dir / "report.html").read_text(encoding="utf-8")
    headings = [
        "1 Summary",
        "2 Since the champion",
        "3 Data",
        "4 Hyperparameter search",
        "5 Test results",
        "6 Baselines and statistical tests",
        "7 Calibration",
        "8 Error analysis",
        "9 Reproducibility",
    ]
    positions = [html.index(f"<h2>{h}</h2>") for h in headings]
    assert positions == sorted(positions)


def test_manager_summary_is_built_from_the_numbers() -> None:
    summary = load_results(FIXTURE)
    context = build_report_context(summary, plots={})
    first, second, third = context["summary_sentences"]
    best = summary.best_config.name
    assert best in first
    assert f"{summary.best_config.validation_metrics.f1_macro:.4f}" in first
    tests = summary.statistical_tests
    for value, interval in (
        (summary.test_metrics.accuracy, tests.accuracy),
        (summary.test_metrics.f1_macro, tests.f1_macro),
    ):
        assert f"{value:.4f}" in second
        assert f"{interval.low:.4f} – {interval.high:.4f}" in second
    for comparison in tests.baselines:
        assert comparison.baseline in third
        assert f"{comparison.accuracy_difference.estimate * 100:+.1f}" in third
    assert third.startswith("It is better than all three baselines")


def test_mixed_verdicts_are_named_one_by_one(tmp_path: Path) -> None:
    run_dir = copy_run(tmp_path / "run")

    def mix(summary: dict) -> None:
        summary["statistical_tests"]["baselines"][2]["verdict"] = "not distinguishable"

    edit_results(run_dir, mix)
    third = build_report_context(load_results(run_dir), plots={})["summary_sentences"][2]
    assert "better than pretrained-head" in third
    assert "not distinguishable from tfidf-logreg" in third


def test_a_run_without_evidence_sections_still_renders(tmp_path: Path) -> None:
    run_dir = copy_run(tmp_path / "run")
    (run_dir / "test_predictions.csv").unlink()

    def strip(summary: dict) -> None:
        for key in ("baselines", "statistical_tests", "calibration", "error_analysis"):
            del summary[key]

    edit_results(run_dir, strip)
    html = render_html(run_dir).read_text(encoding="utf-8")
    assert "This run recorded no baselines." in html
    assert "This run recorded no calibration." in html
    assert not (run_dir / "roc_pr_curves.png").exists()
    assert (run_dir / "confusion_matrix.png").is_file()


def test_results_validate_against_the_printed_schema(capsys) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    assert main(["schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert schema["title"] == "RunSummary"
    results = json.loads((FIXTURE / RESULTS_FILE).read_text(encoding="utf-8"))
    jsonschema.validate(results, schema)
    del results["best_config"]
    with pytest.raises(jsonschema.ValidationError, match="best_config"):
        jsonschema.validate(results, schema)


def test_templates_dir_override(tmp_path: Path) -> None:
    run_dir = copy_run(tmp_path / "run")
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "report.html.j2").write_text("<p>{{ run_id }} {{ best_name }}</p>")
    (templates / "report.css").write_text("")
    html = render_html(run_dir, templates_dir=templates).read_text(encoding="utf-8")
    summary = load_results(run_dir)
    assert html == f"<p>{summary.run_id} {summary.best_config.name}</p>"
    with pytest.raises(FileNotFoundError, match="report template not found"):
        render_html(run_dir, templates_dir=tmp_path / "nowhere")


def test_report_command_rerenders_a_run(tmp_path: Path, capsys) -> None:
    run_dir = copy_run(tmp_path / "run")
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out.split()
    assert out == [str(run_dir / "report.html"), str(run_dir / "report.pdf")]
    assert (run_dir / "report.pdf").read_bytes().startswith(b"%PDF")
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert RESULTS_FILE in capsys.readouterr().err


def _run(reports: Path, run_id: str, *, accuracy: float = 0.5) -> Path:
    run_dir = reports / run_id
    run_dir.mkdir(parents=True)
    summary = json.loads((FIXTURE / RESULTS_FILE).read_text(encoding="utf-8"))
    summary["run_id"] = run_id
    summary["best_config"]["name"] = f"best-of-{run_id}"
    summary["test_metrics"]["accuracy"] = accuracy
    (run_dir / RESULTS_FILE).write_text(json.dumps(summary), encoding="utf-8")
    return run_dir


def test_list_runs_newest_first_skipping_partial_latest_and_incomplete(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    _run(reports, "20261126-065341-aaaa", accuracy=0.7)
    newest = _run(reports, "20261127-101010-bbbb", accuracy=0.8)
    (newest / "report.pdf").write_bytes(b"%PDF")
    _run(reports, ".20261128-000000-cccc.partial")
    (reports / "20261129-000000-dddd").mkdir()  # no results file: not a run
    (reports / "notes.txt").write_text("x")
    (reports / "latest").symlink_to("20261127-101010-bbbb", target_is_directory=True)
    broken = reports / "20261101-000000-eeee"
    broken.mkdir()
    (broken / RESULTS_FILE).write_text("{", encoding="utf-8")

    runs = list_runs(reports)
    assert [r.run_id for r in runs] == [
        "20261127-101010-bbbb",
        "20261126-065341-aaaa",
        "20261101-000000-eeee",
    ]
    assert runs[0].best_config == "best-of-20261127-101010-bbbb"
    assert runs[0].test_accuracy == 0.8
    assert (runs[0].has_pdf, runs[0].has_html) == (True, False)
    assert runs[2].best_config is None and RESULTS_FILE in (runs[2].error or "")
    assert list_runs(tmp_path / "no-such-dir") == []


def test_the_data_section_shows_the_sentence_split_and_the_leak_counts() -> None:
    from sentiment_lora.reporting.model_sections import data_context

    old = load_results(FIXTURE)  # a run from before the sentence-level split
    before = data_context(old)
    assert any(s["step"].startswith("stratified 15% validation split") for s in before["steps"])
    assert "was not checked" in before["overlap_sentence"]
    counts = {
        "train_raw": 67349, "test_raw": 872, "root_sentences": 6885,
        "removed_inside_validation": 10281, "removed_min_words": 8488,
        "train_after_split": 47580, "validation_after_split": 1000, "removed_by_train_cap": 35580,
        "train": 12000, "validation": 1000, "test": 872,
    }  # fmt: skip
    data = old.data.model_copy(
        update={"counts": counts, "validation_inside_train": 0, "test_inside_train": 2}
    )
    context = data_context(old.model_copy(update={"data": data}))
    rows = [(s["step"], s["removed"], s["remaining"]) for s in context["steps"]]
    assert rows[:5] == [
        ("read train.tsv", "", "67,349"),
        ("hold out 1,000 of 6,885 root sentences (inside no other row), stratified, seed 42",
         "", "1,000"),
        ("drop training rows inside a validation sentence", "10,281", "56,068"),
        ("drop sentences under 3 words", "8,488", "47,580"),
        ("cap at max_train_samples = 1,500", "35,580", "12,000"),  # the fixture's config
    ]  # fmt: skip
    assert not any("validation split" in step for step, _, _ in rows)
    assert "0 of 1,000 validation rows and 2 of 872 test rows" in context["overlap_sentence"]
