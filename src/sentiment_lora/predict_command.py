"""``sentiment-lora predict``: stream sentences through a model, one JSON object per line."""

import argparse
import json
import os
import sys
from pathlib import Path

from sentiment_lora.cli_options import ModelOptions, OptionError
from sentiment_lora.config import RunOptions, TrainConfig
from sentiment_lora.errors import UserError
from sentiment_lora.paths import LATEST, MODEL_DIR

# Options shared with the pipeline come from the models' fields (names, defaults, help).
PREDICT_OPTIONS = ModelOptions(
    {"train": TrainConfig, "options": RunOptions},
    only=("device", "precision", "eval_batch_size", "registry_dir", "reports_dir"),
)


def _warn_blank(number: int) -> None:
    print(f"warning: line {number} is blank, skipped", file=sys.stderr)


def default_model_dir(registry_dir: Path, reports_dir: Path) -> tuple[Path, str]:
    """The model ``predict`` serves without ``--model-dir``, and why: the registry's champion,
    else (no champion at all) the newest run's best model. A champion whose model is gone is
    an error (RegistryError), never replaced by the newest run's model."""
    from sentiment_lora.operations.registry import served_model_dir

    champion = served_model_dir(registry_dir)
    if champion is not None:
        return champion, f"the champion of {registry_dir}"
    latest = reports_dir / LATEST / MODEL_DIR
    if not latest.is_dir():
        raise OptionError(
            f"--model-dir: not given, {registry_dir} has no champion and {latest} does not "
            "exist; run the pipeline first, or pass --model-dir"
        )
    return latest, f"the newest run's model: {registry_dir} has no champion"


def _given_model_dir(model_dir: str) -> Path:
    path = Path(model_dir)
    if not path.exists():
        raise OptionError(f"--model-dir: {path} does not exist (run the pipeline first)")
    if not path.is_dir():
        raise OptionError(f"--model-dir: {path} is a file, not a model directory")
    return path


def _check_device(device: str) -> None:
    from sentiment_lora.training.modeling import ModelLoadError, pick_device

    try:
        pick_device(device)
    except ModelLoadError as exc:
        flag = PREDICT_OPTIONS.flags["train", "device"]
        raise OptionError(f"{flag}{str(exc).removeprefix('device')}") from None


def _drop_stdout() -> None:
    """Point stdout at /dev/null: the reader is gone, and Python's exit flush must not fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict the sentiment of one sentence per line; write one JSON object per line.

    Answers a batch at a time (a full batch, or on a pipe whatever has arrived when the input
    pauses) and flushes after each. When the reader goes away (``| head -1``) it stops quietly
    with exit status 0: the reader has what it asked for.
    """
    from sentiment_lora.training.inference import load_analyzer
    from sentiment_lora.training.streaming import batched, open_sentences, read_lines

    options = PREDICT_OPTIONS.build(args, "train").inference_options()
    dirs = PREDICT_OPTIONS.build(args, "options")
    _check_device(options["device"])
    if args.model_dir:
        model_dir = _given_model_dir(args.model_dir)
    else:
        model_dir, why = default_model_dir(Path(dirs.registry_dir), Path(dirs.reports_dir))
        print(f"model: {model_dir} ({why})", file=sys.stderr)
    with open_sentences(args.file) as fd:
        if args.backend == "onnx":
            analyzer = _onnx_analyzer(model_dir, options)
        else:
            analyzer = load_analyzer(model_dir, **options)
        lines = read_lines(fd, name=args.file, on_blank=_warn_blank)
        try:
            for batch in batched(lines, int(options["batch_size"])):
                for text, prediction in zip(batch, analyzer.predict(batch), strict=True):
                    row = {"text": text, **prediction.model_dump()}
                    sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")
                sys.stdout.flush()
        except BrokenPipeError:
            _drop_stdout()
        except KeyboardInterrupt:
            return 130
    return 0


def _onnx_analyzer(model_dir: Path, options: dict):
    """An ONNX Runtime analyzer for ``model_dir`` or for its export beside it (``export``)."""
    from sentiment_lora.deployment.onnx_export import default_export_dir
    from sentiment_lora.deployment.onnx_inference import OnnxSentimentAnalyzer, is_onnx_export

    if options["device"] not in ("auto", "cpu"):
        raise UserError(f"--device: {options['device']}: the onnx backend runs on the CPU")
    candidates = [model_dir] + [default_export_dir(model_dir, q) for q in ("int8", "none")]
    found = next((path for path in candidates if is_onnx_export(path)), None)
    if found is None:
        raise UserError(
            f"--backend onnx: {model_dir} has no ONNX export; run "
            f"`sentiment-lora export {model_dir} --format onnx --quantize int8` first"
        )
    if found != model_dir:
        print(f"model: {found} (the ONNX export of {model_dir})", file=sys.stderr)
    return OnnxSentimentAnalyzer(found, batch_size=int(options["batch_size"]))
