"""Inference throughput and peak memory on the 872 test sentences, three ways.

- project: ``SentimentAnalyzer.predict_proba`` (length-sorted batches of 64, max_length 128) at
  the project's default precision ('auto': bf16 weights where the CPU computes bf16 natively);
- notebook: the research notebook's ``batch_predict``, reimplemented: one sentence at a time,
  ``tokenizer(text, truncation=True, max_length=512, return_tensors="pt")``, forward, softmax,
  fp32;
- pipeline: ``transformers.pipeline("text-classification", batch_size=32, device=-1)`` on the
  same fp32 model and tokenizer objects as the notebook loop.

Speed uses the base model with an untrained, seeded head (``from_base_model("embedded")``); the
project's copy is the same weights, cast. What bf16 costs in accuracy is measured on a trained
model by :func:`precision_accuracy` (the bench's own quick-profile run).

Peak memory, two ways (tracemalloc does not see torch's allocations):

- in-process, every timed call (both modes): glibc's ``malloc_trim(0)`` first (so memory a
  previous method freed is handed back and cannot hide this one's growth), RSS before the call
  from psutil, the peak from psutil RSS sampled every 5 ms in a thread; the largest increase
  over the rounds is reported;
- fresh subprocess per method (``python bench/infer_throughput.py --memory METHOD``; ``make
  bench`` only, it costs one more pass each): the same before/peak, plus
  ``getrusage(RUSAGE_SELF).ru_maxrss``, which covers the first call's one-off allocations too.
"""

import argparse
import copy
import ctypes
import json
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import psutil
import torch
from common import BENCH_DIR, child_env, median, set_threads, test_sentences, test_split

from sentiment_lora.training.inference import SentimentAnalyzer

PROJECT, NOTEBOOK, PIPELINE = "project", "notebook", "pipeline"
METHODS = (PROJECT, NOTEBOOK, PIPELINE)
NOTEBOOK_MAX_LENGTH = 512
PIPELINE_BATCH = 32
MIB = 1024 * 1024
Predictor = Callable[[Sequence[str]], np.ndarray]


def notebook_batch_predict(model, tokenizer, texts: Sequence[str]) -> np.ndarray:
    """The notebook's ``batch_predict``: one sentence per forward pass, max_length 512."""
    model.eval()
    rows = []
    with torch.no_grad():
        for text in texts:
            enc = tokenizer(
                text, truncation=True, max_length=NOTEBOOK_MAX_LENGTH, return_tensors="pt"
            )
            logits = model(**enc).logits
            rows.append(torch.softmax(logits, dim=-1)[0].numpy())
    return np.stack(rows)


def pipeline_predictor(model, tokenizer) -> Predictor:
    """``transformers.pipeline`` on the same objects; returns probabilities in label order."""
    from transformers import pipeline

    pipe = pipeline(
        "text-classification",
        model=model,
        tokenizer=tokenizer,
        batch_size=PIPELINE_BATCH,
        device=-1,
    )
    column = {name: i for i, name in model.config.id2label.items()}

    def predict(texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), len(column)))
        for row, scores in enumerate(pipe(list(texts), top_k=None, truncation=True)):
            for s in scores:
                out[row, column[s["label"]]] = s["score"]
        return out

    return predict


def predictors(reference: SentimentAnalyzer, project: SentimentAnalyzer) -> dict[str, Predictor]:
    """The three methods: the project's analyzer; the notebook loop and the pipeline on the
    fp32 ``reference`` analyzer's model and tokenizer."""
    model, tokenizer = reference.model, reference.tokenizer
    return {
        PROJECT: project.predict_proba,
        NOTEBOOK: lambda texts: notebook_batch_predict(model, tokenizer, texts),
        PIPELINE: pipeline_predictor(model, tokenizer),
    }


def load_analyzers() -> tuple[SentimentAnalyzer, SentimentAnalyzer]:
    """(fp32 reference, project): the embedded base model with an untrained, seeded head on the
    CPU, and the same weights at the project's default precision."""
    reference = SentimentAnalyzer.from_base_model("embedded", device="cpu", precision="fp32")
    project = SentimentAnalyzer(
        copy.deepcopy(reference.model), reference.tokenizer, device="cpu", precision="auto"
    )
    return reference, project


def precision_accuracy(model_dir: str) -> dict:
    """Test accuracy of a trained model at fp32 and at the project's default precision."""
    texts, labels = test_split()
    out: dict = {"model_dir": model_dir, "sentences": len(texts)}
    predictions = {}
    for precision in ("fp32", "auto"):
        analyzer = SentimentAnalyzer.load(model_dir, device="cpu", precision=precision)
        predictions[analyzer.precision] = analyzer.predict_proba(texts).argmax(axis=1)
        correct = predictions[analyzer.precision] == np.asarray(labels)
        out[f"accuracy_{precision}"] = float(correct.mean())
        out[f"resolved_{precision}"] = analyzer.precision
    out["delta_points"] = 100 * (out["accuracy_auto"] - out["accuracy_fp32"])
    first, *rest = predictions.values()
    out["label_agreement"] = float((first == rest[0]).mean()) if rest else 1.0
    return out


def trim_heap() -> None:
    """Return freed heap memory to the OS (glibc ``malloc_trim``); a no-op elsewhere."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def timed_call(predict: Predictor, texts: Sequence[str]) -> tuple[np.ndarray, float, float]:
    """Run ``predict``; return (probabilities, seconds, peak RSS increase in MiB)."""
    trim_heap()
    rss_before = psutil.Process().memory_info().rss
    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    probs = predict(texts)
    seconds = time.perf_counter() - started
    peak = max(sampler.stop(), psutil.Process().memory_info().rss)
    return probs, seconds, (peak - rss_before) / MIB


def benchmark(rounds: int, log=print) -> dict:
    """Time the three methods round-robin (the order rotates each round); median ratios."""
    texts = test_sentences()
    reference, analyzer = load_analyzers()
    methods = predictors(reference, analyzer)
    trim_heap()
    rss_loaded = psutil.Process().memory_info().rss
    for predict in methods.values():  # warm-up: lazy initialisation, first-call kernels
        predict(texts[:PIPELINE_BATCH])
    runs: list[dict] = []
    probs: dict[str, np.ndarray] = {}
    for r in range(rounds):
        order = METHODS[r % 3 :] + METHODS[: r % 3]
        for name in order:
            probs[name], seconds, delta = timed_call(methods[name], texts)
            runs.append(
                {
                    "round": r + 1,
                    "method": name,
                    "seconds": seconds,
                    "sps": len(texts) / seconds,
                    "peak_delta_mib": delta,
                }
            )
            log(
                f"  infer round {r + 1} {name:8s} {len(texts) / seconds:7.1f} sentences/s, "
                f"peak RSS +{delta:.1f} MiB"
            )
    sps = {m: [x["sps"] for x in runs if x["method"] == m] for m in METHODS}
    vs_notebook = [p / n for p, n in zip(sps[PROJECT], sps[NOTEBOOK], strict=True)]
    vs_pipeline = [p / q for p, q in zip(sps[PROJECT], sps[PIPELINE], strict=True)]
    lengths = [len(ids) for ids in analyzer.tokenizer(texts, truncation=True)["input_ids"]]
    labels = {m: p.argmax(axis=1) for m, p in probs.items()}
    return {
        "sentences": len(texts),
        "rounds": rounds,
        "precision": {PROJECT: analyzer.precision, NOTEBOOK: "fp32", PIPELINE: "fp32"},
        "mean_tokens_per_sentence": float(np.mean(lengths)),
        "runs": runs,
        "median_sps": {m: median(v) for m, v in sps.items()},
        "peak_delta_mib_in_process": {
            m: max(x["peak_delta_mib"] for x in runs if x["method"] == m) for m in METHODS
        },
        "rss_after_load_mib": rss_loaded / MIB,
        "ratio_vs_notebook": {"per_round": vs_notebook, "median": median(vs_notebook)},
        "ratio_vs_pipeline": {"per_round": vs_pipeline, "median": median(vs_pipeline)},
        "max_abs_prob_diff_vs_project": {
            m: float(np.abs(probs[m] - probs[PROJECT]).max()) for m in (NOTEBOOK, PIPELINE)
        },
        "label_agreement_vs_project": {
            m: float((labels[m] == labels[PROJECT]).mean()) for m in (NOTEBOOK, PIPELINE)
        },
    }


class RssSampler(threading.Thread):
    """Samples this process's RSS every ``interval`` seconds and keeps the peak."""

    def __init__(self, interval: float = 0.005) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak = interval, 0
        self._stop_event = threading.Event()
        self._proc = psutil.Process()

    def run(self) -> None:  # noqa: D102
        while not self._stop_event.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            time.sleep(self.interval)

    def stop(self) -> int:
        """Stop sampling; return the peak RSS in bytes."""
        self._stop_event.set()
        self.join()
        return self.peak


def measure_memory(method: str) -> dict:
    """Peak memory of one method's pass over the test sentences (run in a fresh process)."""
    set_threads()
    texts = test_sentences()
    reference, project = load_analyzers()
    predict = predictors(reference, project)[method]
    trim_heap()
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    rss_before = psutil.Process().memory_info().rss
    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    predict(texts)
    seconds = time.perf_counter() - started
    sampled_peak = sampler.stop()
    maxrss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    new_high = maxrss_after > maxrss_before
    peak = max(sampled_peak, maxrss_after) if new_high else sampled_peak
    return {
        "method": method,
        "rss_before_mib": rss_before / MIB,
        "peak_during_mib": peak / MIB,
        "delta_mib": (peak - rss_before) / MIB,
        "process_maxrss_mib": maxrss_after / MIB,
        "peak_source": "ru_maxrss" if new_high and maxrss_after >= sampled_peak else "psutil",
        "seconds_single_pass": seconds,
    }


def memory_in_subprocesses(log=print, timeout: float = 900) -> dict:
    """:func:`measure_memory` for each method, each in a fresh Python process."""
    results = {}
    for method in METHODS:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--memory", method],
            capture_output=True,
            text=True,
            env=child_env(),
            cwd=BENCH_DIR.parent,
            timeout=timeout,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"memory probe {method} failed:\n{proc.stderr[-2000:]}")
        results[method] = json.loads(proc.stdout.strip().splitlines()[-1])
        r = results[method]
        log(
            f"  memory {method:8s} +{r['delta_mib']:6.1f} MiB over {r['rss_before_mib']:.0f} MiB "
            f"(process peak {r['process_maxrss_mib']:.0f} MiB, {r['peak_source']})"
        )
    return results


def main(argv: list[str] | None = None) -> int:
    """Entry point of the memory probe subprocess."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--memory", choices=METHODS, required=True)
    args = p.parse_args(argv)
    print(json.dumps(measure_memory(args.memory)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
