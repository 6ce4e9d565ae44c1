"""Figures of one run's report, drawn from its ``fine_tuning_results.json`` and predictions.

Every function writes one PNG into ``out_dir`` atomically and returns its file name. Figures
fit the width of an A4 page and stay readable in grayscale: series differ by marker, line
style or hatch as well as by colour.
"""

import functools
import io
import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, ParamSpec

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from sklearn.metrics import auc, precision_recall_curve, roc_curve  # noqa: E402

from sentiment_lora.evidence.calibration import CalibrationReport, ReliabilityBin  # noqa: E402
from sentiment_lora.evidence.error_analysis import (  # noqa: E402
    CONFIDENCE_BIN_EDGES,
    ErrorAnalysis,
)
from sentiment_lora.io import atomic_write_bytes  # noqa: E402
from sentiment_lora.paths import PREDICTIONS_FILE, PROB_PREFIX  # noqa: E402
from sentiment_lora.reporting import format as fmt  # noqa: E402
from sentiment_lora.reporting.results import RunSummary  # noqa: E402
from sentiment_lora.reporting.trend import Trend, build_trend  # noqa: E402

P = ParamSpec("P")
DPI = 150
FULL_WIDTH = 7.0  # inches: the text width of an A4 page with ~15 mm margins
# Colour-blind safe colours of decreasing darkness, so that grayscale keeps them apart too.
COLORS = ("#1f3b73", "#d55e00", "#7a7a7a", "#009e73", "#cc79a7", "#e69f00")
HATCHES = ("", "///", "...", "xx", "\\\\", "++")
MARKERS = ("o", "s", "^", "D", "v", "P")
LINESTYLES = ("-", "--", ":", "-.", (0, (5, 1, 1, 1)), (0, (1, 1)))

HYPERPARAMETER_COMPARISON = "hyperparameter_comparison.png"
TRAINING_CURVES = "training_curves.png"
CONFUSION_MATRIX = "confusion_matrix.png"
ROC_PR_CURVES = "roc_pr_curves.png"
RELIABILITY_DIAGRAM = "reliability_diagram.png"
CONFIDENCE_HISTOGRAM = "confidence_histogram.png"
TREND = "trend.png"

_STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "hatch.linewidth": 0.6,
}


def _styled(plot: Callable[P, str]) -> Callable[P, str]:
    """Draw ``plot`` under the report's matplotlib style without touching global settings."""

    @functools.wraps(plot)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> str:
        with plt.rc_context(_STYLE):
            return plot(*args, **kwargs)

    return wrapper


def _style(i: int) -> dict[str, Any]:
    return {
        "color": COLORS[i % len(COLORS)],
        "marker": MARKERS[i % len(MARKERS)],
        "linestyle": LINESTYLES[i % len(LINESTYLES)],
    }


def _save(fig: Figure, out_dir: Path, name: str) -> str:
    """Save ``fig`` as ``out_dir/name`` atomically; close it."""
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    finally:
        plt.close(fig)
    atomic_write_bytes(Path(out_dir) / name, buffer.getvalue())
    return name


def _label_bars(ax: plt.Axes, bars: Any) -> None:
    for bar in bars:
        height = bar.get_height()
        if not np.isfinite(height):
            continue  # a missing score has no bar and no label
        ax.annotate(
            fmt.num(height, 3),
            (bar.get_x() + bar.get_width() / 2, height),
            xytext=(0, 2),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=6.5,
            rotation=90,
        )


@_styled
def plot_hyperparameter_comparison(summary: RunSummary, *, out_dir: Path) -> str:
    """Grouped bars: validation accuracy, validation macro-F1 and test accuracy per config."""
    experiments = summary.hyperparameter_experiments
    names = [e.name for e in experiments]
    series = [
        ("validation accuracy", [e.training.validation_metrics.accuracy for e in experiments]),
        ("validation macro-F1", [e.training.validation_metrics.f1_macro for e in experiments]),
        ("test accuracy", [e.test_metrics.accuracy for e in experiments]),
    ]
    x = np.arange(len(names))
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(FULL_WIDTH, 3.0))
    values = [v for _, vs in series for v in vs if v is not None and math.isfinite(v)]
    for i, (label, vs) in enumerate(series):
        heights = [np.nan if v is None else v for v in vs]
        bars = ax.bar(
            x + (i - (len(series) - 1) / 2) * width,
            heights,
            width,
            label=label,
            color=COLORS[i],
            hatch=HATCHES[i],
            edgecolor="black",
            linewidth=0.5,
        )
        _label_bars(ax, bars)
    best = summary.best_config.name
    ax.set_xticks(x, [f"{n}\n(best)" if n == best else n for n in names])
    low = min(values, default=0.0)
    ax.set_ylim(max(0.0, low - 0.1), 1.0)
    ax.set_ylabel("score")
    ax.set_title("Validation and test scores per config")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(series), frameon=False)
    return _save(fig, out_dir, HYPERPARAMETER_COMPARISON)


@_styled
def plot_training_curves(summary: RunSummary, *, out_dir: Path) -> str:
    """Train loss and validation macro-F1 per epoch, one line per config."""
    fig, (loss_ax, f1_ax) = plt.subplots(1, 2, figsize=(FULL_WIDTH, 2.9))
    experiments = summary.hyperparameter_experiments
    trained = [e for e in experiments if e.training.history]  # an ensemble has no history
    for i, experiment in enumerate(trained):
        history = experiment.training.history
        epochs = [h.epoch for h in history]
        style = _style(i)
        loss = [np.nan if h.train_loss is None else h.train_loss for h in history]
        f1 = [h.eval_f1_macro for h in history]
        loss_ax.plot(epochs, loss, label=experiment.name, markersize=5, **style)
        f1_ax.plot(epochs, f1, label=experiment.name, markersize=5, **style)
    for ax, title, ylabel in (
        (loss_ax, "Training loss", "mean train loss over the epoch"),
        (f1_ax, "Validation macro-F1", "macro-F1"),
    ):
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.xaxis.get_major_locator().set_params(integer=True)
    handles, labels = loss_ax.get_legend_handles_labels()
    fig.legend(
        handles,
        labels,
        loc="lower center",
        ncol=min(len(labels), 4) or 1,
        frameon=False,
        bbox_to_anchor=(0.5, -0.06),
    )
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return _save(fig, out_dir, TRAINING_CURVES)


@_styled
def plot_confusion_matrix(summary: RunSummary, *, out_dir: Path) -> str:
    """The best model's test confusion matrix: counts and row percentages."""
    metrics = summary.test_metrics
    matrix = np.asarray(metrics.confusion_matrix, dtype=float)
    classes = list(metrics.per_class or [str(i) for i in range(len(matrix))])
    row_totals = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, row_totals, out=np.zeros_like(matrix), where=row_totals > 0)
    fig, ax = plt.subplots(figsize=(3.6, 3.0))
    image = ax.imshow(share, cmap="Greys", vmin=0.0, vmax=1.0)
    for (r, c), count in np.ndenumerate(matrix):
        dark = share[r, c] > 0.55
        ax.text(
            c,
            r,
            f"{int(count)}\n{share[r, c]:.1%}",
            ha="center",
            va="center",
            color="white" if dark else "black",
            fontsize=9,
        )
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes, rotation=90, va="center")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true label")
    ax.set_title(f"{summary.best_config.name} on test")
    ax.grid(False)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of true label")
    return _save(fig, out_dir, CONFUSION_MATRIX)


def curve_models(predictions: pd.DataFrame, *, best: str, baselines: Iterable[str]) -> list[str]:
    """Models to draw ROC/PR curves for: the best one, then every non-constant baseline.

    A constant column (the majority baseline) gives no curve worth drawing.
    """
    if PROB_PREFIX + best not in predictions.columns:
        raise ValueError(f"{PREDICTIONS_FILE} has no column {PROB_PREFIX}{best}")
    return [best] + [
        name
        for name in baselines
        if name != best
        and PROB_PREFIX + name in predictions.columns
        and predictions[PROB_PREFIX + name].nunique(dropna=True) > 1
    ]


@_styled
def plot_roc_pr_curves(summary: RunSummary, *, predictions: pd.DataFrame, out_dir: Path) -> str:
    """ROC and precision-recall curves of the best model and the non-constant baselines."""
    best = summary.best_config.name
    names = curve_models(predictions, best=best, baselines=summary.baselines)
    labels = predictions["label"].to_numpy(dtype=int)
    fig, (roc_ax, pr_ax) = plt.subplots(1, 2, figsize=(FULL_WIDTH, 3.3))
    for i, name in enumerate(names):
        scores = predictions[PROB_PREFIX + name].to_numpy(dtype=float)
        style = {**_style(i), "marker": None, "linewidth": 2.0 if name == best else 1.4}
        fpr, tpr, _ = roc_curve(labels, scores)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {fmt.num(auc(fpr, tpr), 3)})", **style)
        precision, recall, _ = precision_recall_curve(labels, scores)
        pr_auc = fmt.num(auc(recall, precision), 3)
        pr_ax.plot(recall, precision, label=f"{name} (AUC {pr_auc})", **style)
    roc_ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=(0, (2, 2)), label="chance")
    prevalence = float(labels.mean())
    pr_ax.axhline(prevalence, color="black", linewidth=0.8, linestyle=(0, (2, 2)), label="chance")
    roc_ax.set(title="ROC", xlabel="false positive rate", ylabel="true positive rate")
    pr_ax.set(title="Precision-recall (positive class)", xlabel="recall", ylabel="precision")
    for ax in (roc_ax, pr_ax):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_aspect("equal")
        ax.legend(loc="lower left" if ax is pr_ax else "lower right", fontsize=6.5)
    fig.tight_layout()
    return _save(fig, out_dir, ROC_PR_CURVES)


def _filled(bins: Iterable[ReliabilityBin]) -> list[ReliabilityBin]:
    return [b for b in bins if b.count and b.mean_confidence is not None and b.accuracy is not None]


def _bin_points(bins: list[ReliabilityBin]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    filled = _filled(bins)
    return (
        np.array([b.mean_confidence for b in filled], dtype=float),
        np.array([b.accuracy for b in filled], dtype=float),
        np.array([b.count for b in filled], dtype=float),
    )


@_styled
def plot_reliability_diagram(calibration: CalibrationReport, *, out_dir: Path) -> str:
    """Accuracy against mean confidence per bin, before and after temperature scaling."""
    fig, ax = plt.subplots(figsize=(3.7, 3.1))
    ax.plot([0, 1], [0, 1], color="black", linewidth=0.8, linestyle=":", label="perfect")
    parts = (
        ("before", calibration.before),
        (f"after (T = {fmt.num(calibration.temperature, 3)})", calibration.after),
    )
    counts_all = [b.count for _, part in parts for b in part.bins]
    largest = max(counts_all, default=1) or 1
    for i, (label, part) in enumerate(parts):
        conf, acc, counts = _bin_points(part.bins)
        style = _style(i)
        ax.plot(conf, acc, color=style["color"], linestyle=style["linestyle"], linewidth=1.2)
        ax.scatter(
            conf,
            acc,
            s=12 + 90 * counts / largest,
            marker=style["marker"],
            facecolors=style["color"] if i == 0 else "white",
            edgecolors=style["color"],
            linewidths=1.2,
            zorder=3,
            label=f"{label}: ECE {fmt.num(part.ece)}",
        )
    filled = _filled(b for _, part in parts for b in part.bins)
    low_x = min((b.mean_confidence for b in filled if b.mean_confidence is not None), default=0.5)
    low_y = min((b.accuracy for b in filled if b.accuracy is not None), default=0.5)
    low = max(0.0, min(low_x, low_y, 0.5) - 0.05)
    ax.set_xlim(low, 1.0)
    ax.set_ylim(low, 1.02)
    ax.set_xlabel("mean confidence in the predicted class")
    ax.set_ylabel("accuracy")
    ax.set_title(f"Reliability, {calibration.n_bins} bins (area ~ count)")
    ax.legend(loc="lower right", fontsize=7)
    return _save(fig, out_dir, RELIABILITY_DIAGRAM)


@_styled
def plot_confidence_histogram(analysis: ErrorAnalysis, *, out_dir: Path) -> str:
    """Confidence in the predicted class for correct and wrong test predictions."""
    groups = (("correct", analysis.confidence_correct), ("wrong", analysis.confidence_wrong))
    edges = np.asarray(CONFIDENCE_BIN_EDGES)
    centers = (edges[:-1] + edges[1:]) / 2
    width = (edges[1] - edges[0]) * 0.4
    fig, ax = plt.subplots(figsize=(FULL_WIDTH, 2.4))
    for i, (label, group) in enumerate(groups):
        counts = np.asarray(group.histogram, dtype=float)
        share = counts / counts.sum() if counts.sum() else counts
        ax.bar(
            centers + (i - 0.5) * width,
            share,
            width,
            color=COLORS[i],
            hatch=HATCHES[i * 2],
            edgecolor="black",
            linewidth=0.5,
            label=f"{label} (n = {group.count})",
        )
    ax.set_xticks(edges, [f"{e:.2f}" for e in edges])
    ax.set_xlim(0.5, 1.0)
    ax.set_xlabel("confidence in the predicted class")
    ax.set_ylabel("share of group")
    ax.set_title("Confidence of correct and wrong predictions (best model, test)")
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left")
    return _save(fig, out_dir, CONFIDENCE_HISTOGRAM)


TREND_MIN_SPAN = 0.04  # the trend's y axis spans at least 4 accuracy points


def _trend_figure(trend: Trend) -> Figure:
    """Test accuracy and macro-F1 of every run, the champion's accuracy as a step line,
    promotions as stars, rollbacks as dashed verticals; the lines break where the test set
    changed (a dotted vertical), since scores on two test sets are not comparable."""
    fig, ax = plt.subplots(figsize=(FULL_WIDTH, 2.8))
    x = np.arange(1, len(trend.points) + 1)
    accuracy = [p.accuracy for p in trend.points]
    champion = [
        np.nan if p.champion_accuracy is None else p.champion_accuracy for p in trend.points
    ]
    segments = trend.segments or [None]
    for k, segment in enumerate(segments):
        part = slice(segment.start, segment.end) if segment is not None else slice(None)
        first = k == 0
        ax.plot(x[part], accuracy[part], label="test accuracy" if first else None, **_style(0))
        ax.plot(x[part], [p.f1_macro for p in trend.points][part],
                label="test macro-F1" if first else None, **_style(1))  # fmt: skip
        ax.step(x[part], champion[part], where="post", color="black", linewidth=1.0,
                label="champion accuracy" if first else None)  # fmt: skip
        if segment is not None and not first:
            ax.axvline(segment.start + 0.5, color=COLORS[2], linestyle=":", linewidth=1.2,
                       label="test set changed" if k == 1 else None)  # fmt: skip
            rows = f" ({segment.test_rows} sentences)" if segment.test_rows else ""
            where = (segment.start + 0.55, 0.92)
            ax.annotate(f"new test set{rows}", where, xycoords=("data", "axes fraction"),
                        fontsize=7, color=COLORS[2])  # fmt: skip
    promoted = [(i, p.accuracy) for i, p in zip(x, trend.points, strict=True) if p.promoted]
    if promoted:
        px, py = zip(*promoted, strict=True)
        ax.scatter(px, py, marker="*", s=140, color=COLORS[3], zorder=4, label="promoted")
    for k, rollback in enumerate(trend.rollbacks):
        ax.axvline(
            rollback.after + 0.5,
            color=COLORS[1],
            linestyle="--",
            linewidth=1.0,
            label="rollback" if k == 0 else None,
        )
        ax.annotate(f"rollback to {rollback.version}", (rollback.after + 0.55, 0.02),
                    xycoords=("data", "axes fraction"), fontsize=7, color=COLORS[1])  # fmt: skip
    ax.set_xticks(x, [p.time[:16].replace("T", " ") for p in trend.points], rotation=30, ha="right")
    ax.set_xlim(0.5, max(len(x), 1) + 0.5)
    scores = [v for v in (*accuracy, *champion) if np.isfinite(v)]
    if scores and max(scores) - min(scores) < TREND_MIN_SPAN:  # one run: not a 0.0001 scale
        middle = (max(scores) + min(scores)) / 2
        ax.set_ylim(middle - TREND_MIN_SPAN / 2, middle + TREND_MIN_SPAN / 2)
    ax.set_ylabel("score on test")
    ax.set_title(f"Every published run ({len(trend.points)}) and the champion")
    ax.legend(loc="lower left", fontsize=7, ncol=3)
    return fig


@_styled
def plot_trend(trend: Trend, *, out_dir: Path) -> str:
    """The trend figure as ``trend.png`` in ``out_dir``."""
    return _save(_trend_figure(trend), out_dir, TREND)


@_styled
def trend_svg(trend: Trend) -> str:
    """The trend figure as inline SVG text (for the report server's index page)."""
    fig = _trend_figure(trend)
    buffer = io.StringIO()
    try:
        fig.savefig(buffer, format="svg", bbox_inches="tight")
    finally:
        plt.close(fig)
    svg = buffer.getvalue()
    return svg[svg.index("<svg") :]


def render_plots(
    out_dir: Path | str, *, summary: RunSummary, predictions: pd.DataFrame | None = None
) -> dict[str, str]:
    """Draw every figure the run's data allows into ``out_dir``; return key -> file name.

    ``predictions`` is the run's checked ``test_predictions.csv``
    (:func:`sentiment_lora.reporting.predictions.read_predictions`). Figures whose section is
    missing from the summary (an older run without calibration, say) or whose predictions are
    absent are skipped.
    """
    run_dir = Path(out_dir)
    plots = {
        "hyperparameter_comparison": plot_hyperparameter_comparison(summary, out_dir=run_dir),
        "training_curves": plot_training_curves(summary, out_dir=run_dir),
        "confusion_matrix": plot_confusion_matrix(summary, out_dir=run_dir),
    }
    if predictions is not None:
        plots["roc_pr_curves"] = plot_roc_pr_curves(
            summary, predictions=predictions, out_dir=run_dir
        )
    if summary.calibration is not None:
        plots["reliability_diagram"] = plot_reliability_diagram(
            summary.calibration, out_dir=run_dir
        )
    if summary.error_analysis is not None:
        plots["confidence_histogram"] = plot_confidence_histogram(
            summary.error_analysis, out_dir=run_dir
        )
    if summary.history:
        plots["trend"] = plot_trend(build_trend(summary.history), out_dir=run_dir)
    return plots
