"""``fine_tuning_results.json`` as one typed document: :class:`RunSummary`.

The pipeline builds it in one call (:func:`build_run_summary`) from the typed results of its
tasks; the JSON file is its dump, and every reader (the report, the report server, the CLI)
parses it back through :func:`load_results`, so a missing key or a wrong type is named by its
path instead of failing somewhere in a template. ``sentiment-lora schema`` prints
:func:`results_schema`.
"""

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sentiment_lora.config import Backend, DataConfig, LoraHyperparams, PipelineConfig, TrainConfig
from sentiment_lora.evidence.baselines import DESCRIPTIONS
from sentiment_lora.evidence.calibration import CalibrationReport
from sentiment_lora.evidence.clustering import ClusteringResult
from sentiment_lora.evidence.collect import Evidence, StatisticalTests
from sentiment_lora.evidence.data_diff import DataDiff
from sentiment_lora.evidence.error_analysis import ErrorAnalysis
from sentiment_lora.operations.gate import GateDecision, GateSummary
from sentiment_lora.operations.ledger import LedgerRecord
from sentiment_lora.paths import RESULTS_FILE
from sentiment_lora.reporting.environment import EnvironmentInfo
from sentiment_lora.training.data import PreparedData
from sentiment_lora.training.evaluation import Evaluation, EvaluationMetrics
from sentiment_lora.training.lora import EpochRecord, TrainingResult

SELECTION_RULE = "highest validation macro-F1; ties: accuracy, then fewer trainable parameters"


class _Part(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DataSummary(_Part):
    """Where the data came from and what preparation left of it."""

    source: str
    source_hashes: dict[str, str]
    counts: dict[str, int]
    class_balance: dict[str, dict[str, int]]
    test_train_overlap: int | None = None
    config: DataConfig


class HeadlineMetrics(_Part):
    """A config's test accuracy and macro-F1."""

    accuracy: float
    f1_macro: float


class Experiment(_Part):
    """One grid config: its hyperparameters, training record and metrics."""

    name: str
    config: LoraHyperparams
    validation_metrics: dict[str, float]
    test_metrics: HeadlineMetrics
    history: list[EpochRecord]
    best_epoch: float
    training_seconds: float
    train_examples: int
    examples_per_second: float
    trainable_parameters: int
    total_parameters: int
    target_modules: list[str]
    device: str
    precision: str = "fp32"
    resumed_from_checkpoint: bool


class BestConfig(_Part):
    """The config selected on validation, and the rule that selected it."""

    name: str
    selection_rule: str
    config: LoraHyperparams
    validation_metrics: dict[str, float]


class Baseline(_Part):
    """A baseline's description and its test metrics."""

    description: str
    test_metrics: EvaluationMetrics


class ErrorSection(ErrorAnalysis):
    """The error analysis of the best model with the clusters of its errors."""

    clusters: ClusteringResult


class PrefectInfo(_Part):
    """The Prefect flow run that produced the results (None outside Prefect)."""

    flow_run_id: str | None = None
    flow_run_name: str | None = None


class Timings(_Part):
    """When the run started (``created_at`` of the summary says when it ended)."""

    started_at: str | None = None


class RunSummary(_Part):
    """Everything one run found: ``fine_tuning_results.json``."""

    run_id: str = Field(min_length=1)
    created_at: str
    profile: str
    model: str
    data: DataSummary
    training: TrainConfig
    hyperparameter_experiments: list[Experiment] = Field(min_length=1)
    best_config: BestConfig
    test_metrics: EvaluationMetrics
    environment: EnvironmentInfo
    baselines: dict[str, Baseline] = Field(default_factory=dict)
    statistical_tests: StatisticalTests | None = None
    calibration: CalibrationReport | None = None
    error_analysis: ErrorSection | None = None
    prefect: PrefectInfo | None = None
    timings: Timings | None = None
    training_backend: Backend | None = None
    champion: GateSummary | None = None
    data_diff: DataDiff | None = None  # this run's data against the champion's
    history: list[LedgerRecord] = Field(default_factory=list)  # the ledger, this run last

    def experiment(self, name: str) -> Experiment | None:
        """The experiment called ``name``, if any."""
        return next((e for e in self.hyperparameter_experiments if e.name == name), None)


def _experiment(result: TrainingResult, test: Evaluation) -> Experiment:
    return Experiment(
        name=result.config_name,
        config=result.hyperparams,
        validation_metrics=result.validation_metrics,
        test_metrics=HeadlineMetrics(
            accuracy=test.metrics.accuracy, f1_macro=test.metrics.f1_macro
        ),
        history=result.history,
        best_epoch=result.best_epoch,
        training_seconds=result.train_seconds,
        train_examples=result.train_examples,
        examples_per_second=result.examples_per_second,
        trainable_parameters=result.trainable_parameters,
        total_parameters=result.total_parameters,
        target_modules=result.target_modules,
        device=result.device,
        precision=result.precision,
        resumed_from_checkpoint=result.resumed_from_checkpoint,
    )


def build_run_summary(
    *,
    run_id: str,
    config: PipelineConfig,
    prepared: PreparedData,
    results: list[tuple[TrainingResult, Evaluation]],
    best: TrainingResult,
    baselines: dict[str, Evaluation],
    evidence: Evidence,
    decision: GateDecision | None,
    environment: EnvironmentInfo,
    prefect: PrefectInfo | None = None,
    started_at: datetime | None = None,
    data_diff: DataDiff | None = None,
    history: list[LedgerRecord] | None = None,
) -> RunSummary:
    """The run's summary from the typed results of the pipeline's tasks.

    ``results`` pairs every config's training result with its test evaluation; ``history``
    is the run ledger with this run last.
    """
    tests = {training.config_name: test for training, test in results}
    return RunSummary(
        run_id=run_id,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        profile=config.profile,
        model=config.train.model,
        data=DataSummary(
            source=prepared.source,
            source_hashes=prepared.source_hashes,
            counts=prepared.counts,
            class_balance=prepared.class_balance,
            test_train_overlap=prepared.test_train_overlap,
            config=config.data,
        ),
        training=config.train,
        hyperparameter_experiments=[_experiment(r, test) for r, test in results],
        best_config=BestConfig(
            name=best.config_name,
            selection_rule=SELECTION_RULE,
            config=best.hyperparams,
            validation_metrics=best.validation_metrics,
        ),
        test_metrics=tests[best.config_name].metrics,
        environment=environment,
        baselines={
            name: Baseline(description=DESCRIPTIONS.get(name, ""), test_metrics=ev.metrics)
            for name, ev in baselines.items()
        },
        statistical_tests=evidence.tests,
        calibration=evidence.calibration,
        error_analysis=ErrorSection(
            **dict(evidence.errors.analysis), clusters=evidence.errors.clusters
        ),
        prefect=prefect,
        timings=Timings(
            started_at=started_at.isoformat(timespec="seconds") if started_at else None
        ),
        training_backend=config.options.backend,
        champion=decision.summary() if decision is not None else None,
        data_diff=data_diff,
        history=history or [],
    )


def results_schema() -> dict[str, Any]:
    """The JSON Schema of ``fine_tuning_results.json``."""
    return RunSummary.model_json_schema(mode="serialization")


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def load_results(run_dir: Path | str) -> RunSummary:
    """Parse and validate ``run_dir/fine_tuning_results.json``.

    Raises FileNotFoundError or ValueError naming the file and, for a schema error, the key.
    """
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: results file not found (is {run_dir} a run directory?)")
    try:
        data = json.loads(path.read_bytes(), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    try:
        return RunSummary.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ValueError(f"{path}: {_location(error['loc'])}: {error['msg']}{more}") from None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def dump_results(summary: RunSummary) -> str:
    """The summary as strict JSON text (NaN and infinities become null)."""
    return summary.model_dump_json(indent=2) + "\n"
