"""The report's figures draw the run's numbers (checked on the figure, before it is saved)."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from sentiment_lora.paths import PREDICTIONS_FILE, RESULTS_FILE
from sentiment_lora.reporting import plots
from sentiment_lora.reporting.results import RunSummary, load_results

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "run"


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> dict[str, Figure]:
    """Every figure a plot function saves, by file name, instead of the PNG."""
    saved: dict[str, Figure] = {}

    def keep(fig: Figure, out_dir: Path, name: str) -> str:
        saved[name] = fig
        return name

    monkeypatch.setattr(plots, "_save", keep)
    return saved


@pytest.fixture
def summary() -> RunSummary:
    return load_results(FIXTURE)


def test_hyperparameter_bars_are_the_metrics(figures, summary, tmp_path) -> None:
    plots.plot_hyperparameter_comparison(summary, out_dir=tmp_path)
    ax = figures[plots.HYPERPARAMETER_COMPARISON].axes[0]
    heights = [round(bar.get_height(), 6) for bar in ax.patches]
    experiments = summary.hyperparameter_experiments
    expected = [round(e.training.validation_metrics.accuracy, 6) for e in experiments]
    expected += [round(e.training.validation_metrics.f1_macro, 6) for e in experiments]
    expected += [round(e.test_metrics.accuracy, 6) for e in experiments]
    assert heights == expected
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert f"{summary.best_config.name}\n(best)" in labels


def test_training_curves_follow_each_configs_history(figures, summary, tmp_path) -> None:
    plots.plot_training_curves(summary, out_dir=tmp_path)
    loss_ax, f1_ax = figures[plots.TRAINING_CURVES].axes
    for ax, field in ((loss_ax, "train_loss"), (f1_ax, "eval_f1_macro")):
        lines = {line.get_label(): line for line in ax.get_lines()}
        for e in summary.hyperparameter_experiments:
            drawn = lines[e.name]
            assert list(drawn.get_xdata()) == [h.epoch for h in e.training.history]
            assert list(drawn.get_ydata()) == [getattr(h, field) for h in e.training.history]


def test_confusion_matrix_shows_counts_and_row_shares(figures, summary, tmp_path) -> None:
    plots.plot_confusion_matrix(summary, out_dir=tmp_path)
    ax = figures[plots.CONFUSION_MATRIX].axes[0]
    matrix = np.asarray(summary.test_metrics.confusion_matrix)
    texts = [t.get_text() for t in ax.texts]
    for (r, _), count in np.ndenumerate(matrix):
        assert f"{count}\n{count / matrix[r].sum():.1%}" in texts
    shares = ax.images[0].get_array()
    assert np.allclose(shares, matrix / matrix.sum(axis=1, keepdims=True))


def test_reliability_diagram_plots_the_filled_bins(figures, summary, tmp_path) -> None:
    plots.plot_reliability_diagram(summary.calibration, out_dir=tmp_path)
    ax = figures[plots.RELIABILITY_DIAGRAM].axes[0]
    before = [b for b in summary.calibration.before.bins if b.count]
    points = ax.collections[0].get_offsets()
    assert np.allclose(points, [(b.mean_confidence, b.accuracy) for b in before])
    assert f"ECE {summary.calibration.before.ece:.4f}" in ax.collections[0].get_label()


def test_roc_curves_skip_constant_baselines(figures, summary, tmp_path) -> None:
    predictions = pd.read_csv(FIXTURE / PREDICTIONS_FILE)
    plots.plot_roc_pr_curves(summary, predictions=predictions, out_dir=tmp_path)
    roc_ax = figures[plots.ROC_PR_CURVES].axes[0]
    names = [line.get_label().split(" (")[0] for line in roc_ax.get_lines()]
    assert names[0] == summary.best_config.name
    assert "majority" not in names and "tfidf-logreg" in names


def test_render_plots_writes_pngs_for_the_sections_present(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    data = json.loads((FIXTURE / RESULTS_FILE).read_text(encoding="utf-8"))
    del data["calibration"]
    summary = RunSummary.model_validate(data)
    drawn = plots.render_plots(run_dir, summary=summary)
    assert "reliability_diagram" not in drawn and "roc_pr_curves" not in drawn
    for name in drawn.values():
        assert (run_dir / name).read_bytes().startswith(b"\x89PNG")


def test_the_trend_of_one_run_is_drawn_on_a_readable_scale() -> None:
    from sentiment_lora.reporting.plots import TREND_MIN_SPAN, _trend_figure
    from sentiment_lora.reporting.trend import Trend, TrendPoint

    point = TrendPoint(
        run_id="r1",
        time="2026-11-27T07:46:59",
        accuracy=0.8704,
        f1_macro=0.8704,
        promoted=True,
        champion_version="v0001",
        champion_accuracy=0.8704,
    )
    low, high = _trend_figure(Trend(points=[point], rollbacks=[])).axes[0].get_ylim()
    assert high - low == pytest.approx(TREND_MIN_SPAN) and low < 0.8704 < high
    far = point.model_copy(update={"run_id": "r2", "accuracy": 0.70, "champion_accuracy": 0.8704})
    low, high = _trend_figure(Trend(points=[point, far], rollbacks=[])).axes[0].get_ylim()
    assert low <= 0.70 and high >= 0.8704  # a real spread keeps matplotlib's own limits


def _run(run_id: str, accuracy: float, test_set: str, rows: int, gate: str = "kept"):
    from sentiment_lora.operations.ledger import RunLedgerRecord

    return RunLedgerRecord(
        run_id=run_id,
        triggered_by="schedule",
        data={"train": 100, "test": rows},
        best_config="cfg",
        test_accuracy=accuracy,
        test_f1_macro=accuracy,
        gate=gate,
        gate_reason="",
        champion_version="v0001",
        test_set_hash=test_set,
    )


def test_the_trend_groups_runs_by_test_set_and_marks_the_change() -> None:
    from sentiment_lora.reporting.plots import _trend_figure
    from sentiment_lora.reporting.trend import build_trend

    # two runs scored on 200 test sentences, then two on all 872: not one line
    trend = build_trend(
        [
            _run("r1", 0.535, "small", 200, gate="promoted"),
            _run("r2", 0.54, "small", 200),
            _run("r3", 0.8635, "full", 872),
            _run("r4", 0.87, "full", 872, gate="promoted"),
        ]
    )
    assert [(s.start, s.end, s.test_set_hash, s.test_rows) for s in trend.segments] == [
        (0, 2, "small", 200),
        (2, 4, "full", 872),
    ]
    assert [p.segment for p in trend.points] == [0, 0, 1, 1]
    # the champion's 0.535 was scored on the other test set: no champion line at r3
    assert [p.champion_accuracy for p in trend.points] == [0.535, 0.535, None, 0.87]
    ax = _trend_figure(trend).axes[0]
    accuracy_lines = [
        line
        for line in ax.lines
        if len(line.get_xdata()) == 2
        and line.get_linestyle() == "-"
        and 0.5 < min(line.get_ydata()) < 0.9
    ]
    spans = {tuple(line.get_xdata()) for line in accuracy_lines}
    assert (1, 2) in spans and (3, 4) in spans and not any(2 in s and 3 in s for s in spans)
    assert any(t.get_text() == "new test set (872 sentences)" for t in ax.texts)
    assert any(line.get_xdata()[0] == 2.5 for line in ax.lines if line.get_linestyle() == ":")
