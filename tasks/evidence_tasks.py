"""Thin Prefect tasks for baselines, statistical tests, calibration and error analysis."""

from prefect import task
from prefect.artifacts import create_table_artifact
from prefect.logging import get_run_logger

from sentiment_lora.config import StatsConfig, TrainConfig
from sentiment_lora.evidence.baselines import evaluate_baselines
from sentiment_lora.evidence.calibration import CalibrationReport
from sentiment_lora.evidence.collect import (
    ErrorReport,
    StatisticalTests,
    analyze_model_errors,
    calibrate_model,
    run_statistical_tests,
)
from sentiment_lora.format_numbers import num, sig, signed
from sentiment_lora.training.data import PreparedData, read_split
from sentiment_lora.training.evaluation import Evaluation
from sentiment_lora.training.lora import TrainingResult
from sentiment_lora.training.scoring import evaluate_saved_model
from tasks.caching import CACHED, baselines_cache_key, inputs_cache_key, validation_cache_key


@task(name="evaluate-baselines", cache_key_fn=baselines_cache_key, **CACHED)
def evaluate_baselines_task(prepared: PreparedData, train: TrainConfig) -> dict[str, Evaluation]:
    """Pretrained head, majority class and TF-IDF + logistic regression on the test split."""
    baselines = evaluate_baselines(
        prepared,
        model=train.model,
        seed=train.seed,
        max_length=train.max_length,
        **train.inference_options(),
    )
    for name, ev in baselines.items():
        get_run_logger().info("baseline %s: test accuracy %.4f", name, ev.metrics.accuracy)
    return baselines


@task(
    name="predict-validation",
    task_run_name="predict-validation-{result.config_name}",
    cache_key_fn=validation_cache_key,
    **CACHED,
)
def predict_validation(
    result: TrainingResult, prepared: PreparedData, train: TrainConfig
) -> Evaluation:
    """The best config's probabilities on the validation split (for temperature scaling)."""
    return evaluate_saved_model(
        result.adapter_dir,
        prepared.validation_path,
        name=result.config_name,
        **train.inference_options(),
    )


def comparison_rows(tests: StatisticalTests) -> list[dict[str, str]]:
    """The ``sst2-comparisons`` table: one row per baseline, non-finite numbers as n/a."""
    return [
        {
            "model": c.model,
            "baseline": c.baseline,
            "accuracy difference": signed(c.accuracy_difference.estimate),
            "95% interval": (
                f"[{signed(c.accuracy_difference.low)}, {signed(c.accuracy_difference.high)}]"
            ),
            "McNemar table": str(c.mcnemar.table),
            "p-value": f"{sig(c.mcnemar.pvalue)} ({c.mcnemar.method})",
            "verdict": c.verdict,
        }
        for c in tests.baselines
    ]


@task(name="statistical-tests", cache_key_fn=inputs_cache_key, **CACHED)
def statistical_tests(
    best: Evaluation,
    baselines: dict[str, Evaluation],
    configs: dict[str, Evaluation],
    config: StatsConfig,
) -> StatisticalTests:
    """McNemar and bootstrap against each baseline; Cochran's Q and Holm across configs."""
    tests = run_statistical_tests(best, baselines=baselines, configs=configs, config=config)
    create_table_artifact(
        key="sst2-comparisons",
        table=comparison_rows(tests),
        description=f"{best.model_name} against each baseline (alpha {config.alpha})",
    )
    logger = get_run_logger()
    for c in tests.baselines:
        logger.info("%s vs %s: %s (p=%s)", c.model, c.baseline, c.verdict, sig(c.mcnemar.pvalue))
    logger.info("configs: %s", tests.configs.conclusion)
    return tests


@task(name="calibration", cache_key_fn=inputs_cache_key, **CACHED)
def calibration(validation: Evaluation, test: Evaluation, config: StatsConfig) -> CalibrationReport:
    """ECE, Brier and reliability data before and after temperature scaling."""
    report = calibrate_model(validation, test, config=config)
    get_run_logger().info(
        "calibration: ECE %s -> %s with T=%s",
        num(report.before.ece),
        num(report.after.ece),
        num(report.temperature, 3),
    )
    return report


@task(name="error-analysis", cache_key_fn=inputs_cache_key, **CACHED)
def error_analysis(prepared: PreparedData, test: Evaluation, config: StatsConfig) -> ErrorReport:
    """Pattern tags, high-confidence errors, suggestions and clusters of the errors."""
    sentences = read_split(prepared.test_path)["sentence"].tolist()
    report = analyze_model_errors(sentences, test, config=config)
    get_run_logger().info(
        "errors: %d (%d FP, %d FN) in %d clusters",
        report.analysis.n_errors,
        report.analysis.false_positives,
        report.analysis.false_negatives,
        report.clusters.k,
    )
    return report
