"""A report never shows ``nan`` or ``inf``: missing and non-finite numbers are written n/a.

Two summaries drive every path that writes numbers (sentences, tables, figures' labels, the
template, the Prefect markdown, the model card, the server's index): the committed run's
results file with every optional number set to null and read back through ``load_results``,
and the same run in memory with every float it allows set to NaN, plus a fabricated champion
gate, data diff and ledger (the committed run has none) whose floats are all NaN. The gate's
reasons, the evidence's conclusions and the Prefect tables are written from NaN numbers too.
"""

import json
import math
import re
import shutil
import types
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from pydantic import BaseModel, ValidationError

from sentiment_lora.evidence import collect
from sentiment_lora.evidence.data_diff import DataDiff
from sentiment_lora.evidence.slices import SliceComparison, slice_gate_reasons
from sentiment_lora.evidence.stats import CochranQResult, McNemarResult
from sentiment_lora.operations import gate
from sentiment_lora.operations.gate import GateSummary
from sentiment_lora.operations.ledger import RollbackLedgerRecord, RunLedgerRecord
from sentiment_lora.operations.registry import ModelRecord
from sentiment_lora.paths import RESULTS_FILE
from sentiment_lora.reporting import plots
from sentiment_lora.reporting.predictions import read_predictions
from sentiment_lora.reporting.render import render_html, report_html
from sentiment_lora.reporting.results import RunSummary, load_results
from sentiment_lora.reporting.run_files import model_card_facts
from sentiment_lora.reporting.run_index import RunInfo
from sentiment_lora.reporting.sentences import drift_markdown, summary_markdown
from sentiment_lora.reporting.server import index_page
from sentiment_lora.training.model_card import render_model_card

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "run"
NOT_A_NUMBER = re.compile(r"\b(nan|inf|infinity)\b", re.IGNORECASE)


def _resolve(schema: dict, defs: dict) -> dict:
    while "$ref" in schema:
        schema = defs[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _null_optional_numbers(value: Any, schema: dict, defs: dict) -> Any:
    """``value`` with every number whose schema also allows null replaced by None."""
    schema = _resolve(schema, defs)
    options = [_resolve(s, defs) for s in schema.get("anyOf", [])]
    if options:
        types_ = {s.get("type") for s in options}
        if "null" in types_ and types_ & {"number", "integer"} and isinstance(value, int | float):
            return None
        if value is None:
            return None
        schema = next((s for s in options if s.get("type") not in (None, "null")), schema)
    if isinstance(value, dict):
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", {})
        return {
            k: _null_optional_numbers(
                v, props.get(k, extra if isinstance(extra, dict) else {}), defs
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        items = schema.get("items") or {}
        prefix = schema.get("prefixItems")
        return [
            _null_optional_numbers(v, prefix[i] if prefix else items, defs)
            for i, v in enumerate(value)
        ]
    return value


def _nan_floats(value: Any) -> Any:
    if isinstance(value, float):
        return math.nan
    if isinstance(value, dict):
        return {k: _nan_floats(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_floats(v) for v in value]
    return value


def _restore(data: Any, original: Any, loc: tuple) -> None:
    """Put back ``original``'s value at ``loc`` (a pydantic error location) in ``data``."""
    keys, node = [], data
    for part in loc:
        if isinstance(node, list):
            part = int(part)
        elif part not in node:
            continue  # a union member's name in the location, not a key
        keys.append(part)
        node = node[part]
    target, source = data, original
    for key in keys[:-1]:
        target, source = target[key], source[key]
    target[keys[-1]] = source[keys[-1]]


def _all_nan_summary() -> RunSummary:
    """The committed run with every float NaN where its model allows NaN at all."""
    original = json.loads((FIXTURE / RESULTS_FILE).read_text(encoding="utf-8"))
    data = _nan_floats(original)
    for _ in range(100):
        try:
            return RunSummary.model_validate(data)
        except ValidationError as exc:
            for error in exc.errors():
                _restore(data, original, error["loc"])
    raise AssertionError("could not build a NaN summary")


def _fabricate(annotation: Any) -> Any:
    """An instance of ``annotation`` with every float NaN (validators bypassed)."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _fabricate(args[0])
    if origin in (Union, types.UnionType):
        return _fabricate(next(a for a in args if a is not type(None)))
    if origin is Literal:
        return args[0]
    if origin in (list, tuple) or annotation in (list, tuple):
        items = [_fabricate(a) for a in args if a is not Ellipsis] or ["x"]
        return items if origin is list else tuple(items)
    if origin is dict:
        return {"x": _fabricate(args[1])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields.items()
        return annotation.model_construct(**{n: _fabricate(f.annotation) for n, f in fields})
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return next(iter(annotation))
    return {int: 1, bool: True, str: "x"}.get(annotation, math.nan)  # float, JsonValue: NaN


def _figure_texts(monkeypatch) -> list[str]:
    texts: list[str] = []
    save = plots._save

    def keep_texts(fig: Figure, out_dir: Path, name: str) -> str:
        texts.extend(t.get_text() for t in fig.findobj(Text))
        return save(fig, out_dir, name)

    monkeypatch.setattr(plots, "_save", keep_texts)
    return texts


def _assert_numbers_only(text: str, where: str) -> None:
    found = NOT_A_NUMBER.search(text)
    assert found is None, f"{where}: {text[max(0, found.start() - 80) : found.end() + 40]!r}"


def test_a_report_from_a_results_file_with_every_optional_number_null(
    tmp_path: Path, monkeypatch
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    schema = RunSummary.model_json_schema()
    data = json.loads((run_dir / RESULTS_FILE).read_text(encoding="utf-8"))
    nulled = _null_optional_numbers(data, schema, schema["$defs"])
    assert nulled["test_metrics"]["auc_roc"] is None  # the walk reached the optional numbers
    assert nulled["error_analysis"]["clusters"]["silhouette"] is None
    (run_dir / RESULTS_FILE).write_text(json.dumps(nulled), encoding="utf-8")
    texts = _figure_texts(monkeypatch)
    html = render_html(run_dir).read_text(encoding="utf-8")
    assert "n/a" in html
    _assert_numbers_only(html, "report.html")
    _assert_numbers_only("\n".join(texts), "figures")
    _assert_numbers_only(summary_markdown(load_results(run_dir)), "markdown")


@pytest.fixture
def nan_summary() -> RunSummary:
    summary = _all_nan_summary()
    assert math.isnan(summary.test_metrics.accuracy) and math.isnan(summary.calibration.temperature)
    return summary.model_copy(
        update={
            "champion": _fabricate(GateSummary),
            "data_diff": _fabricate(DataDiff).model_copy(update={"first_run": False}),
            "history": [_fabricate(RunLedgerRecord), _fabricate(RollbackLedgerRecord)],
        }
    )


def test_non_finite_numbers_are_never_written(
    nan_summary: RunSummary, tmp_path: Path, monkeypatch
) -> None:
    texts = _figure_texts(monkeypatch)
    predictions = read_predictions(FIXTURE, summary=load_results(FIXTURE))
    drawn = plots.render_plots(tmp_path, summary=nan_summary, predictions=predictions)
    assert {"trend", "reliability_diagram", "roc_pr_curves"} <= set(drawn)
    html = report_html(nan_summary, plots=drawn)
    assert "2 Since the champion" in html and "n/a" in html
    _assert_numbers_only(html, "report.html")
    _assert_numbers_only("\n".join(texts), "figures")
    _assert_numbers_only(summary_markdown(nan_summary), "run summary markdown")
    _assert_numbers_only(drift_markdown(nan_summary.data_diff), "drift markdown")


def test_the_model_card_and_the_index_leave_non_finite_metrics_out(
    nan_summary: RunSummary, tmp_path: Path
) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    (model_dir / "adapter_config.json").write_text('{"base_model_name_or_path": "some/base"}')
    facts = model_card_facts(nan_summary, model_dir)
    assert facts.accuracy is None and facts.f1_macro is None
    _assert_numbers_only(render_model_card(facts), "model card")
    run = RunInfo(
        run_id="r",
        created_at=None,
        best_config="b",
        test_accuracy=math.nan,
        has_html=True,
        has_pdf=False,
    )
    _assert_numbers_only(index_page([run], reports_dir=tmp_path), "index")


def _nan_record(key: str) -> ModelRecord:
    return ModelRecord(
        run_id=key,
        config_name=key,
        model_key=key,
        test_accuracy=math.nan,
        test_f1_macro=math.nan,
        test_set_hash="same",
        predictions=[1, 0, 1, 0],
    )


def test_the_gate_reasons_and_the_prefect_tables_never_write_nan(
    nan_summary: RunSummary, monkeypatch
) -> None:
    from tasks.evidence_tasks import comparison_rows

    nan_test = McNemarResult(
        table=[[1, 1], [1, 1]],
        statistic=math.nan,
        pvalue=math.nan,
        method="exact-binomial",
        discordant=2,
    )
    monkeypatch.setattr(gate, "mcnemar_test", lambda *_: nan_test)
    decision = gate.decide(_nan_record("new"), _nan_record("old"), labels=[1, 0, 1, 0])
    assert any("two-sided McNemar p=n/a" in reason for reason in decision.reasons)
    _assert_numbers_only("\n".join(decision.reasons), "gate reasons")
    _assert_numbers_only(gate.gate_markdown(decision), "gate markdown")
    _assert_numbers_only(gate.gate_markdown(nan_summary.champion), "gate markdown")
    _assert_numbers_only("\n".join(slice_gate_reasons(_fabricate(SliceComparison))), "slices")
    rows = comparison_rows(nan_summary.statistical_tests)
    assert rows and "n/a" in rows[0]["accuracy difference"]
    _assert_numbers_only(json.dumps(rows), "sst2-comparisons table")
    nan_q = CochranQResult(statistic=math.nan, pvalue=math.nan, df=1, models=["a", "b"])
    monkeypatch.setattr(collect, "cochran_q_test", lambda _: nan_q)
    monkeypatch.setattr(collect, "pairwise_mcnemar_holm", lambda *_, **__: [])
    configs = {name: types.SimpleNamespace(predictions=[1], labels=[1]) for name in "ab"}
    conclusion = collect.compare_configs(configs, "a", alpha=0.05).conclusion
    _assert_numbers_only(conclusion, "Cochran's Q conclusion")
