"""Does validation predict test? One row per run directory: the selected config's validation
and test accuracy, their gap, every config's pair, the leak counts and the flow's minutes.

    python bench/validation_gap.py reports/<run-id> [reports/<run-id> ...]

Reads each run through ``load_results`` (the typed results file); prints a markdown table.
"""

import argparse
import sys
from pathlib import Path

from accuracy import wall_seconds

from sentiment_lora.reporting.results import RunSummary, load_results


def row(summary: RunSummary) -> str:
    """One markdown row: run, profile, train rows, selected config, validation, test, gap."""
    best = summary.best_config.name
    configs = ", ".join(
        f"{e.name} {e.training.validation_metrics.accuracy:.4f}/{e.test_metrics.accuracy:.4f}"
        for e in summary.hyperparameter_experiments
    )
    validation = summary.best_config.validation_metrics.accuracy
    test = summary.test_metrics.accuracy
    seconds, _ = wall_seconds(summary)  # flow start to results written
    data = summary.data
    leaks = f"{data.validation_inside_train} / {data.test_inside_train}"
    minutes_text = f"{seconds / 60:.1f}" if seconds is not None else "n/a"
    return (
        f"| {summary.run_id} | {summary.profile} | {summary.training.seed} | "
        f"{summary.training.precision} | {data.counts.get('train', 0):,} | {best} | "
        f"{validation:.4f} | {test:.4f} | {100 * (validation - test):+.1f} | {leaks} | "
        f"{minutes_text} | {configs} |"
    )


def main(argv: list[str] | None = None) -> int:
    """Print the table for the run directories given."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories")
    args = parser.parse_args(argv)
    print(
        "| run | profile | seed | precision | train rows | selected | validation acc | "
        "test acc | gap (points) | validation / test rows inside train | flow min | "
        "every config (validation/test) |"
    )
    print("|---" * 12 + "|")
    for run in args.runs:
        print(row(load_results(run)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
