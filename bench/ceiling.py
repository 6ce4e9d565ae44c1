"""Compute ceiling: measured fp32 matmul rate of this CPU against the FLOPs the model needs.

FLOPs per token are counted from the model itself: N = parameters of the transformer encoder
(embeddings, pooler and classification head excluded: the embeddings are lookups, the pooler
and head run once per sentence). One forward pass costs 2 * N FLOPs per token (a multiply and
an add per weight); LoRA training costs about 2x forward, 4 * N per token (forward, plus the
backward pass's input gradients; the frozen weights get no weight gradients and the LoRA
matrices' own are negligible). Attention scores (QK^T and AV, 4 * layers * hidden * length per
token) are left out: under 1% at SST-2's ~13-27 tokens per sentence.
"""

import time

import torch
from common import median

from sentiment_lora.training.modeling import load_classifier, resolve_model_source

MATMUL_N = 2048


def matmul_gflops(n: int = MATMUL_N, repeats: int = 7, dtype: torch.dtype = torch.float32) -> dict:
    """Median GFLOP/s of ``n x n @ n x n`` over ``repeats`` timed runs (after 2 warm-ups)."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(n, n, generator=gen).to(dtype)
    b = torch.randn(n, n, generator=gen).to(dtype)
    out = torch.empty(n, n, dtype=dtype)
    for _ in range(2):
        torch.mm(a, b, out=out)
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        torch.mm(a, b, out=out)
        rates.append(2 * n**3 / (time.perf_counter() - started) / 1e9)
    return {
        "n": n,
        "dtype": str(dtype).removeprefix("torch."),
        "repeats": repeats,
        "threads": torch.get_num_threads(),
        "gflops_runs": rates,
        "gflops_median": median(rates),
    }


def probe_gflops() -> float:
    """A short matmul measurement (median of 3) taken between benchmark rounds."""
    return matmul_gflops(repeats=3)["gflops_median"]


def model_flops() -> dict:
    """Encoder parameter count and FLOPs per token (forward, LoRA training) of the model."""
    model = load_classifier(resolve_model_source("embedded"))
    encoder = model.base_model.encoder
    n = sum(p.numel() for p in encoder.parameters())
    config = model.config
    return {
        "encoder_parameters": n,
        "layers": config.num_hidden_layers,
        "hidden": config.hidden_size,
        "forward_flops_per_token": 2 * n,
        "lora_train_flops_per_token": 4 * n,
        "formula": "forward = 2 * N_encoder per token; LoRA training = 2 x forward = 4 * N_encoder",
    }


def ceiling_pct(tokens_per_s: float, flops_per_token: float, gflops: float) -> float:
    """Share (percent) of the measured matmul rate that ``tokens_per_s`` amounts to."""
    return 100 * tokens_per_s * flops_per_token / (gflops * 1e9)
