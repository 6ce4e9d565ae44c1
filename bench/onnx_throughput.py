"""ONNX int8 against fp32 PyTorch ``predict``: accuracy on test, McNemar, throughput (issue 16).

Both backends score the same 872 test sentences with the same tokenizer, batch size and length
sorting, on the bench's thread count; rounds alternate the two (A/B/A/B) and the medians are
compared. The PyTorch side is forced to fp32 (``precision="fp32"``) so that the ratio is the one a
CPU without bf16 sees; the bf16 number is recorded beside it where the CPU has native bf16.

    python bench/onnx_throughput.py MODEL_DIR [--rounds 3]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from common import TORCH_THREADS, machine_info, median, set_threads, test_split

from sentiment_lora.deployment.onnx_export import export_onnx
from sentiment_lora.deployment.onnx_inference import OnnxSentimentAnalyzer
from sentiment_lora.evidence.stats import mcnemar_test
from sentiment_lora.training.inference import SentimentAnalyzer

BATCH_SIZE = 64


def _timed(predict, texts: list[str]) -> tuple[np.ndarray, float]:
    started = time.perf_counter()
    probs = predict(texts)
    return probs, time.perf_counter() - started


def measure(model_dir: str, rounds: int = 3, log=print) -> dict:
    """Export ``model_dir`` to int8 ONNX in a temp dir and compare it with fp32 PyTorch."""
    texts, labels = test_split()
    y = np.asarray(labels)
    with tempfile.TemporaryDirectory(prefix="onnx-bench-") as tmp:
        export = export_onnx(model_dir, Path(tmp) / "int8", quantize="int8")
        backends = {
            "torch_fp32": SentimentAnalyzer.load(
                model_dir, device="cpu", precision="fp32", batch_size=BATCH_SIZE
            ).predict_proba,
            "onnx_int8": OnnxSentimentAnalyzer(
                export.out_dir, batch_size=BATCH_SIZE, threads=TORCH_THREADS
            ).predict_proba,
        }
        auto = SentimentAnalyzer.load(model_dir, device="cpu", batch_size=BATCH_SIZE)
        if auto.precision != "fp32":
            backends[f"torch_{auto.precision}"] = auto.predict_proba
        seconds: dict[str, list[float]] = {name: [] for name in backends}
        probs: dict[str, np.ndarray] = {}
        for name, predict in backends.items():  # warm-up: first call builds kernels and caches
            probs[name] = predict(texts[:BATCH_SIZE])
        for r in range(rounds):
            for name, predict in backends.items():
                probs[name], s = _timed(predict, texts)
                seconds[name].append(s)
            log(
                f"  onnx round {r + 1}/{rounds}: "
                + ", ".join(f"{n} {len(texts) / seconds[n][-1]:.0f}/s" for n in backends)
            )
    sps = {name: len(texts) / median(s) for name, s in seconds.items()}
    correct = {name: p.argmax(axis=1) == y for name, p in probs.items()}
    test = mcnemar_test(correct["torch_fp32"], correct["onnx_int8"])
    acc = {name: float(c.mean()) for name, c in correct.items()}
    return {
        "model_dir": model_dir,
        "sentences": len(texts),
        "batch_size": BATCH_SIZE,
        "threads": TORCH_THREADS,
        "rounds": rounds,
        "export_seconds": export.seconds,
        "int8_megabytes": round(export.size_bytes / 1e6, 1),
        "sentences_per_s": {k: round(v, 1) for k, v in sps.items()},
        "onnx_x": round(sps["onnx_int8"] / sps["torch_fp32"], 2),
        "accuracy": acc,
        "onnx_acc_delta": round(100 * (acc["onnx_int8"] - acc["torch_fp32"]), 2),
        "label_agreement": float(
            (probs["onnx_int8"].argmax(axis=1) == probs["torch_fp32"].argmax(axis=1)).mean()
        ),
        "mcnemar": test.model_dump(),
    }


def main() -> None:
    """Measure one model directory and print the JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model_dir")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    set_threads()
    print(json.dumps({"machine": machine_info(), **measure(args.model_dir, args.rounds)}, indent=2))


if __name__ == "__main__":
    main()
