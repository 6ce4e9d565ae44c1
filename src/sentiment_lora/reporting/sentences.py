"""The run in words: the report's three summary sentences and the Prefect markdown digest."""

from collections.abc import Mapping

from sentiment_lora.evidence.data_diff import DataDiff
from sentiment_lora.evidence.stats import Interval
from sentiment_lora.paths import HTML_FILE, PDF_FILE, RESULTS_FILE
from sentiment_lora.reporting import format as fmt
from sentiment_lora.reporting.results import RunSummary

VERDICT_PHRASES = {
    "better": "better than",
    "worse": "worse than",
    "not distinguishable": "not distinguishable from",
}
_NUMBER_WORDS = {2: "both", 3: "all three", 4: "all four", 5: "all five"}


def _with_interval(value: float | None, interval: Interval | None) -> str:
    if interval is None:
        return fmt.num(value)
    return f"{fmt.num(value)} ({fmt.confidence_label(interval)} {fmt.interval(interval)})"


def summary_sentences(summary: RunSummary) -> list[str]:
    """The three sentences at the top: what won, how good it is, how it beats the baselines."""
    best = summary.best_config
    hp = best.config
    n_configs = sum(not e.members for e in summary.hyperparameter_experiments)
    counts = summary.data.counts
    method = f"LoRA rank {hp.lora_r}" if hp.method == "lora" else "full fine-tuning"
    details = [
        f"learning rate {fmt.learning_rate(hp.learning_rate)}",
        method,
        fmt.plural(hp.epochs, "epoch"),
    ]
    experiments = summary.hyperparameter_experiments
    lora_only = all(e.training.hyperparams.method == "lora" for e in experiments)
    if best.members:
        details = [f"the mean probability of {fmt.join(best.members)}"]
    trained_on = (
        f" on {fmt.integer(counts['train'])} SST-2 training sentences" if "train" in counts else ""
    )
    first = (
        f"Of {fmt.plural(n_configs, 'LoRA configuration' if lora_only else 'configuration')} "
        f"fine-tuned{trained_on}, "
        f"{best.name} ({', '.join(details)}) was selected for the highest validation "
        f"macro-F1 ({fmt.num(best.validation_metrics.f1_macro)})."
    )
    test, tests = summary.test_metrics, summary.statistical_tests
    second = (
        f"On the {fmt.integer(test.n)} held-out test sentences it reaches accuracy "
        f"{_with_interval(test.accuracy, tests.accuracy if tests else None)} and macro-F1 "
        f"{_with_interval(test.f1_macro, tests.f1_macro if tests else None)}."
    )
    comparisons = tests.baselines if tests else []
    if not comparisons:
        return [first, second, "No baseline comparison was recorded for this run."]
    verdicts = {c.verdict for c in comparisons}
    items = [
        f"{c.baseline} ({fmt.points(c.accuracy_difference.estimate)} accuracy points, "
        f"McNemar p = {fmt.pvalue(c.mcnemar.pvalue)})"
        for c in comparisons
    ]
    if len(verdicts) == 1 and len(comparisons) > 1:
        verdict = next(iter(verdicts))
        quantifier = _NUMBER_WORDS.get(len(comparisons), f"all {len(comparisons)}")
        third = f"It is {VERDICT_PHRASES.get(verdict, verdict)} {quantifier} baselines: "
        third += f"{fmt.join(items)}."
    else:
        parts = [
            f"{VERDICT_PHRASES.get(c.verdict, c.verdict)} {item}"
            for c, item in zip(comparisons, items, strict=True)
        ]
        third = f"It is {fmt.join(parts)}."
    return [first, second, third]


def report_links(base_url: str, run_id: str) -> dict[str, str]:
    """Links to a run's report and results on the report server at ``base_url``."""
    base = f"{base_url.rstrip('/')}/runs/{run_id}"
    return {
        "report (PDF)": f"{base}/{PDF_FILE}",
        "report (HTML)": f"{base}/{HTML_FILE}",
        "results (JSON)": f"{base}/{RESULTS_FILE}",
    }


def summary_markdown(summary: RunSummary, *, links: Mapping[str, str] | None = None) -> str:
    """Markdown digest of a run for a Prefect artifact: the summary sentences and verdicts."""
    lines = [f"# Run `{summary.run_id}`", "", *(f"{s}\n" for s in summary_sentences(summary))]
    tests = summary.statistical_tests
    if tests and tests.baselines:
        lines += [
            "| baseline | accuracy difference (95% CI) | McNemar p | verdict |",
            "|---|---|---|---|",
        ]
        for c in tests.baselines:
            diff = c.accuracy_difference
            lines.append(
                f"| {c.baseline} | {fmt.signed(diff.estimate)} ({fmt.interval(diff)}) | "
                f"{fmt.pvalue(c.mcnemar.pvalue)} | {c.verdict} |"
            )
    if tests and tests.configs.conclusion:
        lines += ["", fmt.sentence(tests.configs.conclusion)]
    if links:
        lines += ["", " · ".join(f"[{name}]({url})" for name, url in links.items())]
    return "\n".join(lines) + "\n"


def drift_markdown(diff: DataDiff) -> str:
    """Markdown digest of a data diff for a Prefect artifact: changes, tests and verdicts."""
    if diff.first_run:
        return "# Data since the champion\n\nFirst run: no champion's data to compare with.\n"
    title = "drifted" if diff.drifted else "no significant drift"
    lines = [f"# Data since the champion: {title}", "", *(f"- {line}" for line in diff.summary)]
    splits = [*diff.source.values(), *([diff.training] if diff.training else [])]
    lines += [
        "",
        "| data | before | after | added | removed | relabelled |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {s.split} | {s.rows_before:,} | {s.rows_after:,} | {s.added:,} | {s.removed:,} | "
        f"{s.relabelled:,} |"
        for s in splits
    ]
    lines += ["", "| test | p (Holm) | verdict |", "|---|---|---|"]
    lines += [f"| {t.name} | {fmt.pvalue(t.pvalue_holm)} | {t.verdict} |" for t in diff.tests]
    return "\n".join(lines) + "\n"
