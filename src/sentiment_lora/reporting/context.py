"""Everything the report template shows, built from a run's :class:`RunSummary`.

:func:`build_report_context` assembles the sections (each built by its own module) plus the
reproducibility facts and the champion decision; the template only lays them out.
"""

from collections.abc import Mapping
from typing import Any

from sentiment_lora.reporting import format as fmt
from sentiment_lora.reporting.champion_section import since_champion_context
from sentiment_lora.reporting.evidence_sections import (
    baselines_context,
    calibration_context,
    configs_context,
    errors_context,
)
from sentiment_lora.reporting.model_sections import data_context, search_context, test_context
from sentiment_lora.reporting.results import RunSummary
from sentiment_lora.reporting.sentences import summary_sentences


def reproducibility_context(summary: RunSummary) -> dict[str, Any]:
    """Run id, software, device, seeds, commit, Prefect run and timings."""
    env, prefect, timings = summary.environment, summary.prefect, summary.timings
    flow_run = prefect.flow_run_id if prefect else None
    if flow_run and prefect and prefect.flow_run_name:
        flow_run = f"{flow_run} ({prefect.flow_run_name})"
    facts = [
        ("Run id", summary.run_id),
        ("Profile", fmt.plain(summary.profile)),
        ("Base model", fmt.plain(summary.model)),
        ("Python", env.python),
        ("Platform", env.platform),
        ("Device", env.device),
        ("Torch threads", fmt.plain(env.torch_threads)),
        *((f"Seed ({name})", fmt.plain(seed)) for name, seed in env.seeds.items()),
        ("Git commit", env.git_commit or "not recorded (not a git checkout)"),
        ("Prefect flow run", flow_run or "not recorded"),
    ]
    started_at = timings.started_at if timings else None
    timing_rows = [("started at", fmt.timestamp(started_at))] if started_at else []
    timing_rows.append(("results written at", fmt.timestamp(summary.created_at)))
    elapsed = fmt.elapsed(started_at, summary.created_at)
    if elapsed:
        timing_rows.append(("flow start to results", elapsed))
    total_training = sum(e.training.train_seconds for e in summary.hyperparameter_experiments)
    timing_rows.append(("training, all configs", fmt.seconds(total_training)))
    return {
        "facts": facts,
        "packages": [(name, v or "not installed") for name, v in env.packages.items()],
        "hashes": sorted(env.data_hashes.items()),
        "training": [(key, fmt.plain(value)) for key, value in summary.training],
        "timings": timing_rows,
    }


def champion_context(summary: RunSummary) -> dict[str, str] | None:
    """The champion gate's outcome and reason, if the gate ran."""
    decision = summary.champion
    if decision is None:
        return None
    return {
        "outcome": decision.outcome(),
        "reason": fmt.sentence(decision.reason),
    }


def build_report_context(summary: RunSummary, *, plots: Mapping[str, str]) -> dict[str, Any]:
    """Everything the template shows, formatted: strings, lists of rows and figure names.

    ``plots`` maps figure keys (see :func:`sentiment_lora.reporting.plots.render_plots`) to
    file names next to the report. Sections a run does not have come out as None.
    """
    return {
        "run_id": summary.run_id,
        "created_at": fmt.timestamp(summary.created_at),
        "profile": fmt.plain(summary.profile),
        "model": fmt.plain(summary.model),
        "best_name": summary.best_config.name,
        "summary_sentences": summary_sentences(summary),
        "champion": champion_context(summary),
        "since": since_champion_context(summary),
        "data": data_context(summary),
        "search": search_context(summary),
        "test": test_context(summary),
        "baselines": baselines_context(summary),
        "configs": configs_context(summary),
        "calibration": calibration_context(summary),
        "errors": errors_context(summary),
        "repro": reproducibility_context(summary),
        "plots": dict(plots),
    }
