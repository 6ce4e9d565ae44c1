"""The evidence behind "the best config is better": tests, calibration and error analysis.

Composes :mod:`stats`, :mod:`calibration`, :mod:`error_analysis` and :mod:`clustering` over
:class:`~sentiment_lora.training.evaluation.Evaluation` objects; no model is loaded here except the
sentence encoder used to embed misclassified sentences.
"""

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict

from sentiment_lora.config import StatsConfig
from sentiment_lora.evidence.calibration import CalibrationReport, calibrate
from sentiment_lora.evidence.clustering import ClusteringResult, cluster_errors, embed_sentences
from sentiment_lora.evidence.error_analysis import ErrorAnalysis, analyze_errors
from sentiment_lora.evidence.stats import (
    CochranQResult,
    Interval,
    ModelComparison,
    PairwiseComparison,
    bootstrap_metric,
    cochran_q_test,
    compare_models,
    pairwise_mcnemar_holm,
)
from sentiment_lora.format_numbers import pvalue
from sentiment_lora.training.evaluation import Evaluation


class ConfigComparison(BaseModel):
    """Are the trained configs distinguishable on the test set at all?"""

    model_config = ConfigDict(frozen=True)
    cochran_q: CochranQResult | None  # None with a single config
    pairwise: list[PairwiseComparison]
    best_distinguishable_from: list[str]  # configs the best one differs from after Holm
    conclusion: str


class StatisticalTests(BaseModel):
    """Intervals for the best model, comparisons with baselines and across configs."""

    model_config = ConfigDict(frozen=True)
    best_model: str
    alpha: float
    n_resamples: int
    accuracy: Interval
    f1_macro: Interval
    baselines: list[ModelComparison]
    configs: ConfigComparison


class ErrorReport(BaseModel):
    """Error analysis of the best model on the test set, with clusters of its errors."""

    model_config = ConfigDict(frozen=True)
    analysis: ErrorAnalysis
    clusters: ClusteringResult


class Evidence(BaseModel):
    """Everything behind "the best config is better", gathered for the run's summary."""

    model_config = ConfigDict(frozen=True)
    tests: StatisticalTests
    calibration: CalibrationReport
    errors: ErrorReport


def _correct(ev: Evaluation) -> list[bool]:
    return [p == y for p, y in zip(ev.predictions, ev.labels, strict=True)]


def compare_configs(
    configs: Mapping[str, Evaluation], best: str, *, alpha: float
) -> ConfigComparison:
    """Cochran's Q over all configs, then pairwise McNemar with Holm correction."""
    if len(configs) < 2:
        return ConfigComparison(
            cochran_q=None,
            pairwise=[],
            best_distinguishable_from=[],
            conclusion="only one config was trained: nothing to compare",
        )
    correct = {name: _correct(ev) for name, ev in configs.items()}
    q = cochran_q_test(correct)
    pairwise = pairwise_mcnemar_holm(correct, alpha=alpha)
    differs = [
        (p.model_b if p.model_a == best else p.model_a)
        for p in pairwise
        if best in (p.model_a, p.model_b) and p.significant
    ]
    if q.pvalue >= alpha:
        conclusion = (
            f"Cochran's Q p={pvalue(q.pvalue)} >= {alpha}: the configs' test accuracies are not "
            f"distinguishable; '{best}' is best on validation but not provably better on test"
        )
    elif differs:
        conclusion = (
            f"Cochran's Q p={pvalue(q.pvalue)}: the configs differ; '{best}' is significantly "
            f"different (Holm) from {', '.join(differs)}"
        )
    else:
        conclusion = (
            f"Cochran's Q p={pvalue(q.pvalue)}: the configs differ, but no pairwise difference "
            f"involving '{best}' survives Holm correction"
        )
    return ConfigComparison(
        cochran_q=q, pairwise=pairwise, best_distinguishable_from=differs, conclusion=conclusion
    )


def run_statistical_tests(
    best: Evaluation,
    *,
    baselines: Mapping[str, Evaluation],
    configs: Mapping[str, Evaluation],
    config: StatsConfig,
) -> StatisticalTests:
    """Bootstrap intervals for ``best``, McNemar + paired bootstrap against each baseline."""
    opts = {"n_resamples": config.n_resamples, "seed": config.seed}
    comparisons = [
        compare_models(
            best.labels,
            best.predictions,
            ev.predictions,
            model=best.model_name,
            baseline=name,
            alpha=config.alpha,
            **opts,
        )
        for name, ev in baselines.items()
    ]
    return StatisticalTests(
        best_model=best.model_name,
        alpha=config.alpha,
        n_resamples=config.n_resamples,
        accuracy=bootstrap_metric(best.labels, best.predictions, metric="accuracy", **opts),
        f1_macro=bootstrap_metric(best.labels, best.predictions, metric="f1_macro", **opts),
        baselines=comparisons,
        configs=compare_configs(configs, best.model_name, alpha=config.alpha),
    )


def calibrate_model(
    validation: Evaluation, test: Evaluation, *, config: StatsConfig
) -> CalibrationReport:
    """Temperature scaling fitted on validation, ECE/Brier/reliability on test before and after."""
    return calibrate(
        validation.labels,
        validation.prob_positive,
        test.labels,
        test.prob_positive,
        n_bins=config.ece_bins,
    )


def analyze_model_errors(
    sentences: Sequence[str], test: Evaluation, *, config: StatsConfig
) -> ErrorReport:
    """Pattern analysis of the errors, then clusters of their sentence embeddings."""
    from sentiment_lora.evidence.error_analysis import tag_patterns

    analysis = analyze_errors(
        sentences, test.labels, test.prob_positive, high_confidence=config.high_confidence
    )
    wrong = [
        i for i, (p, y) in enumerate(zip(test.predictions, test.labels, strict=True)) if p != y
    ]
    texts = [sentences[i] for i in wrong]
    clusters = cluster_errors(
        texts,
        labels=[test.labels[i] for i in wrong],
        predictions=[test.predictions[i] for i in wrong],
        embeddings=embed_sentences(texts),
        tags=[tag_patterns(t) for t in texts],
        k_range=(config.cluster_k_min, config.cluster_k_max),
        seed=config.seed,
    )
    return ErrorReport(analysis=analysis, clusters=clusters)
