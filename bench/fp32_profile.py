"""Where an fp32 LoRA training step's time goes (issue 16, target 1): torch.profiler on CPU.

    python bench/fp32_profile.py [--steps 10] [--precision fp32|bf16] [--batch-size 16]

Trains the quick grid's first config (LoRA on every linear layer, r 16) on SST-2 rows for a few
steps outside the Trainer (same model, optimizer and batches: dynamic padding of a random batch)
and prints the operators by self CPU time, grouped into matmul, attention, normalisation,
elementwise, optimizer and the rest.
"""

import argparse
import time

import torch
from common import DATA_DIR, machine_info, set_threads
from torch.profiler import ProfilerActivity, profile

from sentiment_lora.config import GRIDS
from sentiment_lora.training.data import read_glue_tsv
from sentiment_lora.training.dropout import use_fast_dropout
from sentiment_lora.training.modeling import (
    add_lora,
    load_classifier,
    load_tokenizer,
    resolve_model_source,
)

GROUPS = {
    "matmul": ("addmm", "mm", "bmm", "matmul", "linear"),
    "attention": ("scaled_dot_product", "softmax", "_efficient_attention", "flash"),
    "layer_norm": ("layer_norm",),
    "optimizer": ("_foreach", "adam", "lerp", "addcdiv", "sqrt"),
    "dropout/masks": ("dropout", "bernoulli", "rand"),
}


def _group(name: str) -> str:
    low = name.lower()
    return next((g for g, keys in GROUPS.items() if any(k in low for k in keys)), "other")


def main() -> None:
    """Profile a few steps and print the breakdown."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--config", type=int, default=0, help="index in the quick grid")
    args = p.parse_args()
    set_threads()
    info = machine_info()
    source = resolve_model_source("embedded")
    tokenizer = load_tokenizer(source)
    model = add_lora(load_classifier(source), GRIDS["quick"][args.config])
    use_fast_dropout(model)
    model.train()
    frame = read_glue_tsv(DATA_DIR / "train.tsv").sample(
        args.batch_size * (args.steps + 3), random_state=0
    )
    texts, labels = frame["sentence"].tolist(), torch.tensor(frame["label"].tolist())
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")

    def step(i: int) -> int:
        sl = slice(i * args.batch_size, (i + 1) * args.batch_size)
        batch = tokenizer(
            texts[sl], padding=True, truncation=True, max_length=128, return_tensors="pt"
        )
        with autocast:
            loss = model(**batch, labels=labels[sl]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return int(batch["input_ids"].numel())

    for i in range(3):
        step(i)
    started, tokens = time.perf_counter(), 0
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for i in range(3, 3 + args.steps):
            tokens += step(i)
    seconds = time.perf_counter() - started
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        if event.key.startswith("aten::") or event.key.startswith("Optimizer"):
            totals[_group(event.key)] = (
                totals.get(_group(event.key), 0.0) + event.self_cpu_time_total
            )
    whole = sum(totals.values())
    print(f"cpu={info['cpu_model']} bf16_native={info['native_bf16']} precision={args.precision}")
    print(
        f"{args.steps} steps x batch {args.batch_size}: {seconds:.2f} s, "
        f"{args.steps * args.batch_size / seconds:.1f} examples/s, {tokens / seconds:.0f} tokens/s "
        "(under the profiler)"
    )
    for name, us in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {name:14s} {100 * us / whole:5.1f}%")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
