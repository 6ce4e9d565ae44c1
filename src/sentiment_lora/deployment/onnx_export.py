"""Export a trained model directory to ONNX: LoRA merged into the base, optionally int8.

The graph comes from ``torch.onnx.export`` and the int8 model from ONNX Runtime's
``quantize_dynamic`` (weights int8 per channel, activations quantized on the fly), the
quantization Intel's and Hugging Face's published MiniLM/BERT int8 models use. The exported
directory holds ``model.onnx``, the tokenizer and the same ``sentiment_lora.json`` metadata as
the source, plus what was exported from where, so ``predict --backend onnx`` needs nothing else.
"""

import inspect
import logging
import shutil
import time
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from sentiment_lora.deployment.onnx_inference import is_onnx_export
from sentiment_lora.errors import UserError
from sentiment_lora.training.ensemble import MEMBERS_DIR, is_ensemble_dir, member_dirs
from sentiment_lora.training.modeling import (
    METADATA_FILE,
    read_model_metadata,
    write_model_metadata,
)

log = logging.getLogger(__name__)

ONNX_FILE = "model.onnx"
OPSET = 17
Quantize = Literal["none", "int8"]
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")


class ExportError(UserError):
    """The model directory or the output location cannot be used for an export."""


class ExportResult(BaseModel):
    """What :func:`export_onnx` wrote."""

    model_config = ConfigDict(frozen=True)
    out_dir: str
    quantize: Quantize
    size_bytes: int
    seconds: float


def default_export_dir(model_dir: Path, quantize: Quantize) -> Path:
    """``<model dir>-onnx`` or ``<model dir>-onnx-int8``, beside the source model."""
    suffix = "-onnx" if quantize == "none" else f"-onnx-{quantize}"
    return model_dir.with_name(model_dir.name + suffix)


def _export_graph(model_dir: Path, onnx_path: Path) -> dict:
    """Merge the adapter, trace the classifier and write an fp32 ONNX graph; return metadata."""
    import torch

    from sentiment_lora.training.inference import SentimentAnalyzer

    analyzer = SentimentAnalyzer.load(model_dir, device="cpu", precision="fp32")
    sample = analyzer.tokenizer(
        ["a sample sentence", "another one"], padding=True, return_tensors="pt"
    )
    accepted = inspect.signature(analyzer.model.forward).parameters
    names = [name for name in INPUT_NAMES if name in sample and name in accepted]
    axes = {name: {0: "batch", 1: "sequence"} for name in names}
    torch.onnx.export(
        analyzer.model,
        (),
        str(onnx_path),
        kwargs={name: sample[name] for name in names},
        input_names=names,
        output_names=["logits"],
        dynamic_axes={**axes, "logits": {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,  # the TorchScript exporter: one call, no onnxscript rewrite needed
    )
    analyzer.tokenizer.save_pretrained(onnx_path.parent)
    return {"inputs": names, "torch": torch.__version__}


def _quantize_int8(fp32_path: Path, int8_path: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        fp32_path,
        int8_path,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["MatMul"],
    )


def _check_out(out: Path, model_dir: Path) -> None:
    """ExportError unless ``out`` can be replaced by the export without losing anything: new,
    empty or an earlier export, and neither the source, a directory above it nor inside it."""
    source, target = model_dir.resolve(), out.resolve()
    if target == source:
        raise ExportError(f"--out: {out} is the source model directory; choose another")
    if source.is_relative_to(target):
        raise ExportError(f"--out: {out} holds the source model {model_dir}; choose another")
    if target.is_relative_to(source):
        raise ExportError(f"--out: {out} is inside the source model {model_dir}; choose another")
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out: {out} is a file, not a directory")
    if out.is_dir() and any(out.iterdir()) and not is_onnx_export(out):
        raise ExportError(
            f"--out: {out} is a directory that is not an ONNX export; an export replaces its "
            "directory: choose a new or empty one"
        )


def export_onnx(
    model_dir: Path | str, out_dir: Path | str | None = None, *, quantize: Quantize = "none"
) -> ExportResult:
    """Write an ONNX copy of a pipeline model directory (``predict --backend onnx`` loads it).

    The directory is built under a temporary name and renamed into place, so ``out_dir`` holds a
    complete export or is left as it was. ``out_dir`` must be new, empty or an earlier export
    (it is replaced), and neither hold nor lie inside the source.
    """
    import onnxruntime

    model_dir = Path(model_dir)
    if is_ensemble_dir(model_dir):
        names = ", ".join(path.name for path in member_dirs(model_dir))
        raise ExportError(
            f"model-dir: {model_dir} is an ensemble of {names}; an ONNX export is one model: "
            f"export one of its members in {model_dir / MEMBERS_DIR}"
        )
    meta = read_model_metadata(model_dir)  # a sentiment-lora model, or a one-line error
    if is_onnx_export(model_dir):
        raise ExportError(f"model-dir: {model_dir} is already an ONNX export")
    out = Path(out_dir) if out_dir is not None else default_export_dir(model_dir, quantize)
    _check_out(out, model_dir)
    tmp = out.with_name(f".{out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise ExportError(f"--out: cannot create {out.parent}: {exc.strerror}") from exc
    started = time.monotonic()
    try:
        fp32 = tmp / ONNX_FILE
        info = _export_graph(model_dir, fp32)
        if quantize == "int8":
            quantized = tmp / "model.int8.onnx"
            _quantize_int8(fp32, quantized)
            quantized.replace(fp32)
        write_model_metadata(
            tmp,
            {
                **meta.model_dump(),
                "format": "onnx",
                "onnx_file": ONNX_FILE,
                "quantize": quantize,
                "opset": OPSET,
                "inputs": info["inputs"],
                "exported_from": str(model_dir.resolve()),
                "exported_with": {"torch": info["torch"], "onnxruntime": onnxruntime.__version__},
            },
        )
        shutil.rmtree(out, ignore_errors=True)
        tmp.replace(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    seconds = time.monotonic() - started
    size = (out / ONNX_FILE).stat().st_size
    log.info(
        "exported %s to %s (%s, %.1f MB, %.1f s)", model_dir, out, quantize, size / 1e6, seconds
    )
    return ExportResult(
        out_dir=str(out), quantize=quantize, size_bytes=size, seconds=round(seconds, 2)
    )


__all__ = ["METADATA_FILE", "ExportError", "ExportResult", "default_export_dir", "export_onnx"]
