"""Does an exported model keep the accuracy of the model it came from?

The same test sentences go through both; the export passes if it loses at most
``max_drop_points`` of accuracy and McNemar's test finds no significant difference. The champion
gate can require this of a challenger (``options.export_check``).
"""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict

from sentiment_lora.evidence.stats import McNemarResult, mcnemar_test

MAX_DROP_POINTS = 0.5


class ExportCheck(BaseModel):
    """The exported model against its source on the test set."""

    model_config = ConfigDict(frozen=True)
    export_dir: str
    quantize: str
    accuracy_source: float
    accuracy_export: float
    delta_points: float  # export - source, in accuracy points
    label_agreement: float
    mcnemar: McNemarResult
    max_drop_points: float
    alpha: float
    passed: bool
    reason: str


def compare_export(
    source_probs: np.ndarray,
    export_probs: np.ndarray,
    labels: Sequence[int],
    *,
    export_dir: str,
    quantize: str,
    max_drop_points: float = MAX_DROP_POINTS,
    alpha: float = 0.05,
) -> ExportCheck:
    """Judge an export from both models' class probabilities on the same labelled sentences."""
    y = np.asarray(labels)
    src_pred, exp_pred = source_probs.argmax(axis=1), export_probs.argmax(axis=1)
    src_ok, exp_ok = src_pred == y, exp_pred == y
    test = mcnemar_test(exp_ok, src_ok)
    delta = 100 * float(exp_ok.mean() - src_ok.mean())
    if delta < -max_drop_points:
        passed, why = False, f"loses {-delta:.2f} accuracy points (limit {max_drop_points})"
    elif test.pvalue < alpha:
        passed, why = False, f"differs significantly (McNemar p = {test.pvalue:.3g} < {alpha})"
    else:
        passed, why = (
            True,
            f"keeps the accuracy ({delta:+.2f} points, McNemar p = {test.pvalue:.3g})",
        )
    return ExportCheck(
        export_dir=export_dir,
        quantize=quantize,
        accuracy_source=float(src_ok.mean()),
        accuracy_export=float(exp_ok.mean()),
        delta_points=round(delta, 4),
        label_agreement=float((src_pred == exp_pred).mean()),
        mcnemar=test,
        max_drop_points=max_drop_points,
        alpha=alpha,
        passed=passed,
        reason=f"{quantize} ONNX export {why}",
    )


def check_export(
    model_dir: Path | str,
    sentences: Sequence[str],
    labels: Sequence[int],
    *,
    quantize: str = "int8",
    export_dir: Path | str | None = None,
    max_drop_points: float = MAX_DROP_POINTS,
) -> ExportCheck:
    """Export ``model_dir`` (to ``export_dir`` or beside it) and compare it on ``sentences``."""
    from sentiment_lora.deployment.onnx_export import export_onnx
    from sentiment_lora.deployment.onnx_inference import OnnxSentimentAnalyzer
    from sentiment_lora.training.inference import SentimentAnalyzer

    export = export_onnx(model_dir, export_dir, quantize=quantize)  # type: ignore[arg-type]
    source = SentimentAnalyzer.load(model_dir, device="cpu", precision="fp32")
    return compare_export(
        source.predict_proba(sentences),
        OnnxSentimentAnalyzer(export.out_dir).predict_proba(sentences),
        labels,
        export_dir=export.out_dir,
        quantize=quantize,
        max_drop_points=max_drop_points,
    )
