"""``fine_tuning_results.json`` as one typed document: :class:`RunSummary`.

The pipeline builds it in one call (:func:`build_run_summary`) from the typed results of its
tasks; the JSON file is its dump, and every reader (the report, the report server, the CLI)
parses it back through :func:`load_results`, so a missing key or a wrong type is named by its
path instead of failing somewhere in a template. ``sentiment-lora schema`` prints
:func:`results_schema`.
"""

import json
import math
import re
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from sentiment_lora.config import Backend, DataConfig, LoraHyperparams, PipelineConfig, TrainConfig
from sentiment_lora.errors import UserError
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
from sentiment_lora.training.evaluation import (
    Evaluation,
    EvaluationMetrics,
    HeadlineMetrics,
    ValidationMetrics,
)
from sentiment_lora.training.lora import TrainingResult

MAX_RESULTS_BYTES = 16 * 2**20  # a results file is ~50 KB; its ledger grows ~0.3 KB per run
MAX_JSON_DEPTH = 64  # a results file nests ~10 levels; json.loads recurses once per level
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')  # a string (skipped) or a bracket
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
    validation_inside_train: int | None = None  # rows inside a training row (the leak check)
    test_inside_train: int | None = None
    data_version: str | None = None  # the data directory's recorded version of train.tsv
    config: DataConfig


# The flat layout of results files before 2026-12-08: the keys that differ from TrainingResult's.
_FLAT_RENAMED = {
    "name": "config_name",
    "config": "hyperparams",
    "training_seconds": "train_seconds",
}
_EXPERIMENT_OWN = ("test_metrics", "test_predict_seconds")


class Experiment(_Part):
    """One config's training result and its test scores.

    The training part is :class:`TrainingResult` itself, so a new training field reaches the
    JSON and the report without being declared twice. Files written before this layout (the
    training fields flat beside the test scores, ``name``/``config``/``training_seconds``)
    still load: :meth:`_nest_flat_layout` moves them under ``training``.
    """

    training: TrainingResult
    test_metrics: HeadlineMetrics
    test_predict_seconds: float | None = None  # wall time of its test-set predictions

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_layout(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "training" in data:
            return data
        flat = dict(data)
        nested = {key: flat.pop(key) for key in _EXPERIMENT_OWN if key in flat}
        training = {_FLAT_RENAMED.get(key, key): value for key, value in flat.items()}
        training.setdefault("adapter_dir", "")  # older files did not record where it was saved
        return {**nested, "training": training}

    @property
    def name(self) -> str:
        """The config's name."""
        return self.training.config_name

    @property
    def members(self) -> list[str]:
        """An ensemble candidate's configs (empty for a trained config)."""
        return self.training.members


class BestConfig(_Part):
    """The config selected on validation, and the rule that selected it."""

    name: str
    selection_rule: str
    config: LoraHyperparams  # an ensemble's: its best member's
    validation_metrics: ValidationMetrics
    members: list[str] = Field(default_factory=list)  # an ensemble candidate's configs


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


class DiskUse(_Part):
    """What the run left on disk, in bytes, and what was free when its results were written."""

    model_bytes: int  # the published model (reports/<run-id>/model)
    training_bytes: int  # every config's saved model in the artifacts cache (local ones)
    free_bytes: int  # on the reports directory's file system


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
    disk: DiskUse | None = None

    def experiment(self, name: str) -> Experiment | None:
        """The experiment called ``name``, if any."""
        return next((e for e in self.hyperparameter_experiments if e.name == name), None)


def _experiment(result: TrainingResult, test: Evaluation) -> Experiment:
    return Experiment(
        training=result,
        test_metrics=HeadlineMetrics(
            accuracy=test.metrics.accuracy, f1_macro=test.metrics.f1_macro
        ),
        test_predict_seconds=test.predict_seconds,
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
    data_version: str | None = None,
    disk: DiskUse | None = None,
) -> RunSummary:
    """The run's summary from the typed results of the pipeline's tasks.

    ``results`` pairs every config's training result with its test evaluation; ``history``
    is the run ledger with this run last; ``data_version`` the data directory's recorded
    version whose ``train.tsv`` this run read, if any.
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
            validation_inside_train=prepared.validation_inside_train,
            test_inside_train=prepared.test_inside_train,
            data_version=data_version,
            config=config.data,
        ),
        training=config.train,
        hyperparameter_experiments=[_experiment(r, test) for r, test in results],
        best_config=BestConfig(
            name=best.config_name,
            selection_rule=SELECTION_RULE,
            config=best.hyperparams,
            validation_metrics=best.validation_metrics,
            members=best.members,
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
        disk=disk,
    )


def results_schema() -> dict[str, Any]:
    """The JSON Schema of ``fine_tuning_results.json``."""
    return RunSummary.model_json_schema(mode="serialization")


class RunFileError(UserError):
    """A file of a run directory (or the directory itself) that cannot be used as it is."""


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def read_run_file(path: Path, *, what: str, limit: int) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, or :class:`RunFileError`.

    ``what`` names the file in messages (``results file``); a FIFO or device is refused
    before it is opened (reading one could block forever).
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise RunFileError(f"{path}: {what} not found") from None
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if stat.S_ISDIR(info.st_mode):
        raise RunFileError(f"{path}: is a directory, not a {what}")
    if not stat.S_ISREG(info.st_mode):
        raise RunFileError(f"{path}: not a regular file")
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise RunFileError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    if len(data) > limit:
        size = f"{limit / 2**20:g} MiB" if limit >= 2**20 else f"{limit:,} bytes"
        raise RunFileError(f"{path}: more than {size}, too large for a {what} (the right file?)")
    if not data.strip():
        raise RunFileError(f"{path}: the {what} is empty (was the run interrupted?)")
    return data


def decode_utf8(data: bytes, path: Path) -> str:
    """``data`` as text (a UTF-8 BOM is dropped), or :class:`RunFileError` naming line:column."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise RunFileError(
            f"{path}:{line}:{column}: not UTF-8 (byte 0x{data[exc.start]:02x}); "
            "run files are UTF-8 text"
        ) from None


def _nesting_error(text: str) -> tuple[int, str] | None:
    """(offset, message) of the first bracket nested deeper than :data:`MAX_JSON_DEPTH`."""
    if text.count("[") + text.count("{") <= MAX_JSON_DEPTH:
        return None
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                message = f"nested deeper than {MAX_JSON_DEPTH} levels (a results file has ~10)"
                return match.start(), message
        elif token in "]}":
            depth -= 1
    return None


def _line_column(text: str, offset: int) -> str:
    line = text.count("\n", 0, offset) + 1
    return f"{line}:{offset - (text.rfind(chr(10), 0, offset) + 1) + 1}"


def _out_of_range(literal: str) -> ValueError:
    shown = literal if len(literal) <= 24 else f"{literal[:20]}...({len(literal)} characters)"
    return ValueError(f"the number {shown} is out of range")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise _out_of_range(literal)
    return value


def _float_sized_int(literal: str) -> int:
    if len(literal.lstrip("-")) > 308:  # beyond any float: a metric would become inf
        raise _out_of_range(literal)
    return int(literal)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON (use null)")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) < len(keys):
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise ValueError(f"the key {duplicate!r} appears twice in one object")
    return dict(pairs)


def check_strict_json(text: str, path: Path) -> None:
    """Refuse what ``json.loads`` would choke on or accept too kindly, naming ``path``.

    Nesting deeper than :data:`MAX_JSON_DEPTH` is refused before parsing (no RecursionError);
    NaN, infinities, numbers beyond the float range and duplicate keys are refused while parsing.
    """
    if (deep := _nesting_error(text)) is not None:
        offset, message = deep
        raise RunFileError(f"{path}:{_line_column(text, offset)}: {message}")
    try:
        json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_float_sized_int,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise RunFileError(f"{path}:{exc.lineno}:{exc.colno}: not valid JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:
        raise RunFileError(f"{path}: not valid JSON: {exc}") from None


def load_results(run_dir: Path | str) -> RunSummary:
    """Parse and validate ``run_dir/fine_tuning_results.json``.

    Raises :class:`RunFileError` (a :class:`UserError`) naming the directory or the file and,
    where it makes sense, the line and column or the key: a missing or unreadable file, one
    that is empty, too large, not UTF-8, not strict JSON, nested too deep, or not a
    :class:`RunSummary` (types are checked strictly: ``"0.9"`` is not a number).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        problem = "is not a directory" if run_dir.exists() else "does not exist"
        raise RunFileError(f"{run_dir}: {problem} (a run directory holds {RESULTS_FILE})")
    path = run_dir / RESULTS_FILE
    if not path.exists() and not path.is_symlink():
        raise RunFileError(f"{path}: not found (is {run_dir} a run directory?)")
    text = decode_utf8(read_run_file(path, what="results file", limit=MAX_RESULTS_BYTES), path)
    check_strict_json(text, path)
    try:
        return RunSummary.model_validate_json(text, strict=True)
    except ValidationError as exc:
        error = exc.errors()[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise RunFileError(f"{path}: {_location(error['loc'])}: {error['msg']}{more}") from None


def dump_results(summary: RunSummary) -> str:
    """The summary as strict JSON text (NaN and infinities become null)."""
    return summary.model_dump_json(indent=2) + "\n"
