"""Training throughput: the project's recipe against the research notebook's.

Both recipes train the same fresh LoRA model (r 8, alpha 32, dropout 0.1, PEFT's default
targets) on the same 2,000-row stratified subset of the prepared train split for the same number
of optimizer steps at batch 16, through the Hugging Face Trainer and the project's own loaders:

- project: dynamic padding (``DataCollatorWithPadding``) + ``group_by_length``, the data
  tokenized by the project's ``training._tokenize``, and the project's precision
  (``TrainConfig.precision`` 'auto': bf16 autocast where the CPU computes bf16 natively) and
  its CPU dropout (``use_fast_dropout``: the same rates, cheaper masks), as ``train_lora`` does;
- notebook: every example padded to 128 tokens, random order, fp32, torch's dropout.

The default step count covers one whole length-grouping megabatch (see ``DEFAULT_STEPS``), so
the project's examples/s is not measured on its longest sentences only.

A collator wrapper counts what each batch really held (examples, non-pad tokens, padded
positions); a callback stamps the end of every step. Throughput is taken from the end of step 1
to the end of the last step, after one untimed warm-up run of each recipe, so one-off start-up
costs are left out of both recipes alike.
"""

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from common import median
from datasets import Dataset
from transformers import (
    DataCollatorWithPadding,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)

from sentiment_lora.config import DataConfig, LoraHyperparams, TrainConfig
from sentiment_lora.training.data import PreparedData, prepare_sst2, read_split
from sentiment_lora.training.dropout import use_fast_dropout
from sentiment_lora.training.lora import _tokenize
from sentiment_lora.training.modeling import (
    add_lora,
    load_classifier,
    load_tokenizer,
    pick_device,
    resolve_model_source,
    resolve_precision,
)

TRAIN_ROWS = 2000
BATCH_SIZE = 16
MAX_LENGTH = 128
SEED = 42
HP = LoraHyperparams(
    name="bench",
    learning_rate=1e-3,
    epochs=1,
    lora_r=8,
    lora_alpha=32,
    lora_dropout=0.1,
    batch_size=BATCH_SIZE,
)
PROJECT, NOTEBOOK = "project", "notebook"
# What the project's training resolves its default precision to on this CPU.
PROJECT_PRECISION = resolve_precision(TrainConfig().precision, pick_device("cpu"), training=True)
# group_by_length sorts each "megabatch" of mega_batch_mult * batch_size random examples longest
# first (transformers' default mult: min(rows // (4 * batch), 50) = 31 here), and puts the batch
# with the longest example first. A window of a few steps therefore sees the longest sentences
# only; one megabatch plus the untimed first step (32 steps) sees a fair sample of the subset.
DEFAULT_STEPS = min(TRAIN_ROWS // (4 * BATCH_SIZE), 50) + 1


@dataclass
class BatchCounter:
    """Data collator wrapper that records examples, non-pad tokens and positions per batch."""

    collate: DataCollatorWithPadding
    batches: list[tuple[int, int, int]] = field(default_factory=list)

    def __call__(self, features: list[dict]) -> dict:  # noqa: D102
        batch = self.collate(features)
        mask = batch["attention_mask"]
        self.batches.append((int(mask.shape[0]), int(mask.sum()), int(mask.numel())))
        return batch


class StepClock(TrainerCallback):
    """Stamps ``time.perf_counter()`` at the end of every optimizer step."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        self.stamps.append(time.perf_counter())


def prepare_subset(workdir: Path, data_dir: Path) -> PreparedData:
    """The project's data preparation, capped to :data:`TRAIN_ROWS` stratified training rows."""
    config = DataConfig(
        data_dir=str(data_dir), max_train_samples=TRAIN_ROWS, max_validation_samples=100, seed=SEED
    )
    return prepare_sst2(config, workdir / "data")


def notebook_dataset(train_path: str, tokenizer) -> Dataset:
    """The notebook's encoding: every example padded (and truncated) to 128 tokens."""
    frame = read_split(train_path)
    ds = Dataset.from_pandas(frame, preserve_index=False)

    def encode(batch: dict) -> dict:
        return tokenizer(
            batch["sentence"], truncation=True, padding="max_length", max_length=MAX_LENGTH
        )

    ds = ds.map(encode, batched=True, remove_columns=["sentence"])
    return ds.rename_column("label", "labels")


def run_once(
    recipe: str, dataset: Dataset, source: str, tokenizer, steps: int, workdir: Path
) -> dict:
    """Train a fresh LoRA model for ``steps`` steps with one recipe; return its throughput."""
    set_seed(SEED)
    model = add_lora(load_classifier(source), HP)
    if recipe == PROJECT:
        use_fast_dropout(model)  # as train_lora does on CPU
    counter = BatchCounter(DataCollatorWithPadding(tokenizer))
    clock = StepClock()
    precision = PROJECT_PRECISION if recipe == PROJECT else "fp32"
    args = TrainingArguments(
        output_dir=str(workdir / f"trainer-{recipe}"),
        per_device_train_batch_size=BATCH_SIZE,
        max_steps=steps,
        learning_rate=HP.learning_rate,
        weight_decay=HP.weight_decay,
        warmup_steps=HP.warmup_ratio,
        train_sampling_strategy="group_by_length" if recipe == PROJECT else "random",
        eval_strategy="no",
        save_strategy="no",
        logging_strategy="no",
        seed=SEED,
        data_seed=SEED,
        use_cpu=True,
        bf16=precision == "bf16",
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=dataset,
        data_collator=counter,
        processing_class=tokenizer,
        callbacks=[clock],
    )
    trainer.remove_callback(PrinterCallback)
    started = time.perf_counter()
    output = trainer.train()
    wall = time.perf_counter() - started
    if trainer.state.global_step != steps or len(clock.stamps) != steps:
        raise RuntimeError(f"{recipe}: expected {steps} steps, got {trainer.state.global_step}")
    timed = counter.batches[1:steps]  # batches of steps 2..N (a prefetched extra is ignored)
    seconds = clock.stamps[-1] - clock.stamps[0]
    examples = sum(b[0] for b in timed)
    tokens = sum(b[1] for b in timed)
    positions = sum(b[2] for b in timed)
    return {
        "recipe": recipe,
        "precision": precision,
        "steps": steps,
        "timed_steps": steps - 1,
        "seconds": round(seconds, 3),
        "train_wall_seconds": round(wall, 3),
        "examples_per_s": examples / seconds,
        "tokens_per_s": tokens / seconds,
        "positions_per_s": positions / seconds,
        "mean_tokens_per_example": tokens / examples,
        "pad_fraction": 1 - tokens / positions,
        "training_loss": float(output.training_loss),
    }


def benchmark(
    steps: int,
    rounds: int,
    data_dir: Path,
    log=print,
    probe: Callable[[], float] | None = None,
    notebook_steps: int | None = None,
) -> dict:
    """Alternate project/notebook ``rounds`` times (A/B/A/B); median ratios of the rounds.

    ``probe`` (the matmul rate, GFLOP/s) is measured at the start of every round, so each
    round's share of the compute ceiling compares numbers taken under the same load.
    ``notebook_steps`` (default ``steps``) may be fewer: the notebook pads every batch to the
    same length, so its examples/s does not depend on which batches are timed.
    """
    recipe_steps = {PROJECT: steps, NOTEBOOK: notebook_steps or steps}
    source = resolve_model_source("embedded")
    tokenizer = load_tokenizer(source)
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        workdir = Path(tmp)
        prepared = prepare_subset(workdir, data_dir)
        datasets = {
            PROJECT: _tokenize(prepared.train_path, tokenizer, MAX_LENGTH),
            NOTEBOOK: notebook_dataset(prepared.train_path, tokenizer),
        }
        subset_tokens = sum(datasets[PROJECT]["length"]) / len(datasets[PROJECT])
        # One untimed run of each recipe first, as the inference part warms up each method:
        # the first run in a process pays one-off costs per batch shape (the project's batches
        # come in many lengths, the notebook's in one) that a real training run amortises.
        for recipe, warm_steps in ((PROJECT, steps), (NOTEBOOK, 3)):
            warm = run_once(recipe, datasets[recipe], source, tokenizer, warm_steps, workdir)
            log(f"  train warm-up {recipe:8s} {warm['examples_per_s']:7.1f} ex/s (not counted)")
        runs: list[dict] = []
        for r in range(rounds):
            gflops = probe() if probe else None
            for recipe in (PROJECT, NOTEBOOK):
                run = run_once(
                    recipe, datasets[recipe], source, tokenizer, recipe_steps[recipe], workdir
                )
                run["round"], run["matmul_gflops_this_round"] = r + 1, gflops
                runs.append(run)
                log(
                    f"  train round {r + 1} {recipe:8s} {run['precision']} "
                    f"{run['examples_per_s']:7.1f} ex/s "
                    f"{run['tokens_per_s']:8.0f} tok/s  ({run['mean_tokens_per_example']:.1f} "
                    f"tok/ex, {100 * run['pad_fraction']:.0f}% pad, {run['seconds']:.1f} s)"
                )
    by = {k: [x for x in runs if x["recipe"] == k] for k in (PROJECT, NOTEBOOK)}
    pairs = list(zip(by[PROJECT], by[NOTEBOOK], strict=True))
    ex_ratios = [p["examples_per_s"] / n["examples_per_s"] for p, n in pairs]
    tok_ratios = [p["tokens_per_s"] / n["tokens_per_s"] for p, n in pairs]
    return {
        "rows": TRAIN_ROWS,
        "batch_size": BATCH_SIZE,
        "steps": steps,
        "rounds": rounds,
        "precision": {PROJECT: PROJECT_PRECISION, NOTEBOOK: "fp32"},
        "lora": HP.model_dump(include={"lora_r", "lora_alpha", "lora_dropout", "learning_rate"}),
        "subset_mean_tokens_per_example": subset_tokens,
        "runs": runs,
        "median": {
            k: {
                m: median([x[m] for x in by[k]])
                for m in (
                    "examples_per_s",
                    "tokens_per_s",
                    "positions_per_s",
                    "mean_tokens_per_example",
                    "pad_fraction",
                )
            }
            for k in (PROJECT, NOTEBOOK)
        },
        "ratio_examples_per_s": {"per_round": ex_ratios, "median": median(ex_ratios)},
        "ratio_tokens_per_s": {"per_round": tok_ratios, "median": median(tok_ratios)},
    }
