"""Fine-tuning of one grid config with the Hugging Face Trainer: LoRA (the default, with
rsLoRA, LoRA+ and trainable LayerNorms as options) or every weight (``method="full"``)."""

import logging
import math
import shutil
import time
from pathlib import Path

import numpy as np
from datasets import Dataset
from peft import PeftModel
from peft.optimizers import create_loraplus_optimizer
from pydantic import BaseModel, ConfigDict
from torch.optim import Optimizer
from transformers import (
    DataCollatorWithPadding,
    EvalPrediction,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PrinterCallback,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import get_last_checkpoint

from sentiment_lora.config import LoraHyperparams, TrainConfig
from sentiment_lora.training.data import LABEL_NAMES, PreparedData, read_split
from sentiment_lora.training.dropout import use_fast_dropout
from sentiment_lora.training.evaluation import (
    ACCURACY,
    F1_MACRO,
    ValidationMetrics,
    classification_metrics,
)
from sentiment_lora.training.model_card import ModelCardFacts, write_model_card
from sentiment_lora.training.modeling import (
    EMBEDDED,
    add_lora,
    count_parameters,
    load_classifier,
    load_tokenizer,
    pick_device,
    resolve_model_source,
    resolve_precision,
    write_model_metadata,
)
from sentiment_lora.training.portable_base import portable_base, register_base, set_adapter_base

log = logging.getLogger(__name__)

ADAPTER_DIR = "adapter"
FULL_MODEL_DIR = "model"  # method "full": the whole fine-tuned model
CHECKPOINT_DIR = "checkpoints"
FIRST_RUNG_DIR = "first-rung"  # a run stopped at its first rung saves its model here


class EpochRecord(BaseModel):
    """Losses and validation metrics at the end of one epoch."""

    model_config = ConfigDict(frozen=True)
    epoch: float
    step: int
    train_loss: float | None
    eval_loss: float
    eval_accuracy: float
    eval_f1_macro: float


class TrainingResult(BaseModel):
    """What one config's training produced (small: paths and numbers). It is also the
    training part of each experiment in ``fine_tuning_results.json``, hence ``extra="forbid"``:
    a misspelt key in a results file is named, not dropped."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    config_name: str
    hyperparams: LoraHyperparams
    adapter_dir: str  # the saved model: an adapter, or the whole model with method "full"
    validation_metrics: ValidationMetrics
    history: list[EpochRecord]
    best_epoch: float
    train_seconds: float
    train_examples: int
    examples_per_second: float
    trainable_parameters: int
    total_parameters: int
    target_modules: list[str]
    device: str
    precision: str = "fp32"
    resumed_from_checkpoint: bool
    stopped_at_epoch: float | None = None  # successive halving: stopped at the first rung
    members: list[str] = []  # an ensemble candidate: the configs it averages (training.ensemble)


def _tokenize(frame_path: str, tokenizer, max_length: int) -> Dataset:
    frame = read_split(frame_path)
    ds = Dataset.from_pandas(frame, preserve_index=False)

    def encode(batch: dict) -> dict:
        enc = tokenizer(batch["sentence"], truncation=True, max_length=max_length)
        enc["length"] = [len(ids) for ids in enc["input_ids"]]
        return enc

    ds = ds.map(encode, batched=True, remove_columns=["sentence"])
    return ds.rename_column("label", "labels")


def _compute_metrics(pred: EvalPrediction) -> dict[str, float]:
    logits = np.asarray(pred.predictions)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    prob_positive = (shifted / shifted.sum(axis=1, keepdims=True))[:, 1]
    metrics = classification_metrics(np.asarray(pred.label_ids), prob_positive)
    return {ACCURACY: metrics.accuracy, F1_MACRO: metrics.f1_macro}


class ProgressLogger(TrainerCallback):
    """Logs one progress line per ~10% of training and one per evaluation."""

    def __init__(self, name: str, batch_size: int) -> None:
        self.name, self.batch_size = name, batch_size
        self._next, self._start = 0.0, time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        if state.global_step == state.max_steps:  # always evaluate and keep the final weights
            control.should_evaluate = control.should_save = True
        fraction = state.global_step / max(state.max_steps, 1)
        if fraction >= self._next:
            elapsed = time.monotonic() - self._start
            rate = state.global_step * self.batch_size / max(elapsed, 1e-9)
            eta = elapsed / max(fraction, 1e-9) - elapsed
            loss = next((h["loss"] for h in reversed(state.log_history) if "loss" in h), None)
            log.info(
                "[%s] step %d/%d (%3.0f%%) epoch %.2f loss %s %.1f ex/s eta %.0fs",
                self.name,
                state.global_step,
                state.max_steps,
                100 * fraction,
                state.epoch or 0,
                f"{loss:.4f}" if loss is not None else "-",
                rate,
                eta,
            )
            self._next = fraction + 0.1

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):  # noqa: D102
        metrics = metrics or {}
        log.info(
            "[%s] epoch %.2f validation accuracy %.4f macro-F1 %.4f",
            self.name,
            state.epoch or 0,
            metrics.get(f"eval_{ACCURACY}", float("nan")),
            metrics.get(f"eval_{F1_MACRO}", float("nan")),
        )


class StopAtStep(TrainerCallback):
    """Ends training after ``step`` optimizer steps, evaluating and checkpointing there, so
    a later call with the same output directory resumes on the same schedule."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        if state.global_step >= self.step:
            control.should_evaluate = control.should_save = control.should_training_stop = True


def stop_step(stop_at_epoch: float | None, steps_per_epoch: int, max_steps: int) -> int | None:
    """The optimizer step at which a run stopping after ``stop_at_epoch`` epochs ends; None
    when it would not end before ``max_steps`` (it trains to the end)."""
    if not stop_at_epoch:
        return None
    step = max(1, round(stop_at_epoch * steps_per_epoch))
    return step if step < max_steps else None


def _history(log_history: list[dict]) -> list[EpochRecord]:
    """One record per evaluation; train_loss is the mean of the losses logged since the last."""
    records, losses = [], []
    for entry in log_history:
        if "loss" in entry:
            losses.append(float(entry["loss"]))
        if f"eval_{ACCURACY}" in entry:
            records.append(
                EpochRecord(
                    epoch=float(entry["epoch"]),
                    step=int(entry["step"]),
                    train_loss=sum(losses) / len(losses) if losses else None,
                    eval_loss=float(entry["eval_loss"]),
                    eval_accuracy=float(entry[f"eval_{ACCURACY}"]),
                    eval_f1_macro=float(entry[f"eval_{F1_MACRO}"]),
                )
            )
            losses = []
    return records


def train_lora(
    prepared: PreparedData,
    hp: LoraHyperparams,
    train: TrainConfig,
    output_dir: Path | str,
    *,
    stop_at_epoch: float | None = None,
) -> TrainingResult:
    """Fine-tune a fresh copy of the base model per ``hp``; save the best epoch's model.

    LoRA (``hp.method="lora"``) saves an adapter directory; ``"full"`` trains every weight and
    saves the whole model (safetensors, tokenizer, metadata), which
    :class:`~sentiment_lora.training.inference.SentimentAnalyzer` loads alike. Evaluates on the
    validation split every epoch and keeps the best epoch by macro-F1. If ``output_dir`` holds
    a checkpoint of an interrupted run, training resumes from it.

    ``stop_at_epoch`` (successive halving's first rung) ends training after that many epochs
    of the full schedule: the model goes to ``output_dir/first-rung`` and the checkpoint stays,
    so a later call without it trains on from there to the end.
    """
    output_dir = Path(output_dir)
    device = pick_device(train.device)
    precision = resolve_precision(train.precision, device, training=True)
    source = resolve_model_source(train.model)
    set_seed(train.seed)
    tokenizer = load_tokenizer(source)
    model = _build_model(source, hp)  # always a fresh base model per config
    if device.type == "cpu":
        use_fast_dropout(model)  # same rates, cheaper masks (see dropout.py)
    trainable, total = count_parameters(model)
    train_ds = _tokenize(prepared.train_path, tokenizer, train.max_length)
    val_ds = _tokenize(prepared.validation_path, tokenizer, train.max_length)

    checkpoints = output_dir / CHECKPOINT_DIR
    steps_per_epoch = math.ceil(len(train_ds) / hp.batch_size)
    stop = stop_step(stop_at_epoch, steps_per_epoch, steps_per_epoch * hp.epochs)
    eval_steps = max(1, math.ceil(steps_per_epoch / train.evals_per_epoch))
    args = TrainingArguments(
        output_dir=str(checkpoints),
        per_device_train_batch_size=hp.batch_size,
        per_device_eval_batch_size=train.eval_batch_size,
        num_train_epochs=hp.epochs,
        learning_rate=hp.learning_rate,
        weight_decay=hp.weight_decay,
        warmup_steps=hp.warmup_ratio,
        lr_scheduler_type=hp.lr_scheduler,
        eval_strategy="steps",
        save_strategy="steps",
        eval_steps=eval_steps,
        save_steps=eval_steps,
        save_total_limit=2,
        load_best_model_at_end=True,
        metric_for_best_model=F1_MACRO,
        greater_is_better=True,
        logging_strategy="steps",
        logging_steps=max(1, steps_per_epoch // 10),  # ~10 loss logs per epoch
        train_sampling_strategy="group_by_length" if train.group_by_length else "random",
        seed=train.seed,
        data_seed=train.seed,
        use_cpu=device.type == "cpu",
        bf16=precision == "bf16",  # autocast; the weights and optimizer state stay fp32
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    optimizer = _loraplus_optimizer(model.to(device), args, hp)  # None: the Trainer's AdamW
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=val_ds,
        data_collator=DataCollatorWithPadding(tokenizer),
        processing_class=tokenizer,
        compute_metrics=_compute_metrics,
        callbacks=[ProgressLogger(hp.name, hp.batch_size)] + ([StopAtStep(stop)] if stop else []),
        optimizers=(optimizer, None),
    )
    trainer.remove_callback(PrinterCallback)  # ProgressLogger reports instead of raw dicts
    last = last_complete_checkpoint(checkpoints)
    log.info(
        "[%s] training %d examples x %d epochs%s on %s, %s (%s, %d trainable)%s",
        hp.name,
        len(train_ds),
        hp.epochs,
        f" (first rung: stops after {stop_at_epoch:g})" if stop else "",
        device,
        precision,
        _describe(hp),
        trainable,
        f", resuming from {last}" if last else "",
    )
    started = time.monotonic()
    trainer.train(resume_from_checkpoint=last)
    seconds = time.monotonic() - started
    start_step = _checkpoint_step(last)
    examples = min(
        (trainer.state.global_step - start_step) * hp.batch_size,
        len(train_ds) * hp.epochs - start_step * hp.batch_size,
    )
    model_root = output_dir / FIRST_RUNG_DIR if stop else output_dir

    history = _history(trainer.state.log_history)
    best = max(history, key=lambda r: (r.eval_f1_macro, r.eval_accuracy))
    metadata = {
        "base_model": train.model if train.model == EMBEDDED else source,
        "label_names": list(LABEL_NAMES),
        "max_length": train.max_length,
        "config_name": hp.name,
        "method": hp.method,
        "hyperparams": hp.model_dump(),
    }
    base = portable_base(train.model)
    targets = (
        [] if hp.method == "full" else sorted(trainer.model.peft_config["default"].target_modules)
    )
    card = ModelCardFacts(
        config_name=hp.name,
        base_model=base,
        hyperparams=hp,
        target_modules=tuple(targets),
        train_rows=len(train_ds),
        validation_rows=len(val_ds),
        test_rows=prepared.counts.get("test"),
        max_length=train.max_length,
        precision=precision,
        seed=train.seed,
        data_source=prepared.source,
        data_hashes=prepared.source_hashes,
    )
    if hp.method == "full":
        full_metadata = {**metadata, "base": base.model_dump()}
        model_dir = _save_full_model(trainer.model, tokenizer, model_root, full_metadata, card)
    else:
        model_dir = _save_adapter(
            trainer.model, tokenizer, model_root, {**metadata, "target_modules": targets}, card
        )
    if not stop:  # the saved model holds the best epoch; a first rung keeps its checkpoint
        shutil.rmtree(checkpoints, ignore_errors=True)
    return TrainingResult(
        config_name=hp.name,
        hyperparams=hp,
        adapter_dir=str(model_dir),
        validation_metrics=ValidationMetrics(
            accuracy=best.eval_accuracy, f1_macro=best.eval_f1_macro, loss=best.eval_loss
        ),
        history=history,
        best_epoch=best.epoch,
        train_seconds=round(seconds, 2),
        train_examples=len(train_ds),
        examples_per_second=round(examples / max(seconds, 1e-9), 2),
        trainable_parameters=trainable,
        total_parameters=total,
        target_modules=targets,
        device=str(device),
        precision=precision,
        resumed_from_checkpoint=last is not None,
        stopped_at_epoch=round(trainer.state.epoch or 0.0, 4) if stop else None,
    )


def _build_model(source: str, hp: LoraHyperparams) -> PreTrainedModel | PeftModel:
    """A fresh classifier from ``source``: LoRA-wrapped, or every weight trainable ('full')."""
    model = load_classifier(source)
    if hp.method == "full":
        return model.requires_grad_(True)
    return add_lora(model, hp)


def _loraplus_optimizer(
    model: PeftModel | PreTrainedModel, args: TrainingArguments, hp: LoraHyperparams
) -> Optimizer | None:
    """LoRA+'s optimizer (B matrices at ``loraplus_lr_ratio`` x the learning rate), of the
    class and settings the Trainer would pick; None (the Trainer's own) without LoRA+.
    ``model`` must already be on its training device."""
    if hp.loraplus_lr_ratio is None:
        return None
    optimizer_cls, kwargs = Trainer.get_optimizer_cls_and_kwargs(args, model)
    kwargs = {k: v for k, v in kwargs.items() if k != "lr"}
    return create_loraplus_optimizer(
        model,
        optimizer_cls,
        lr=hp.learning_rate,
        loraplus_lr_ratio=hp.loraplus_lr_ratio,
        loraplus_weight_decay=hp.weight_decay,
        **kwargs,
    )


def _describe(hp: LoraHyperparams) -> str:
    """One phrase for the log: method, learning rate and the levers in use."""
    if hp.method == "full":
        parts = [f"full fine-tuning, lr {hp.learning_rate:g}"]
    else:
        parts = [f"LoRA r {hp.lora_r}, alpha {hp.lora_alpha:g}, lr {hp.learning_rate:g}"]
        parts += ["rsLoRA"] * hp.use_rslora + ["LayerNorms trained"] * hp.train_layernorm
        if hp.loraplus_lr_ratio is not None:
            parts.append(f"LoRA+ ratio {hp.loraplus_lr_ratio:g}")
    return ", ".join([*parts, f"{hp.lr_scheduler} schedule"])


def _save_adapter(
    model: PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: Path,
    metadata: dict,
    card: ModelCardFacts,
) -> Path:
    """Write the adapter, tokenizer, metadata and model card; returns the adapter directory."""
    adapter_dir = output_dir / ADAPTER_DIR
    tmp_dir = output_dir / f".{ADAPTER_DIR}.tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    set_adapter_base(model, card.base_model)  # a portable name, not this machine's path
    # the vocabulary is never resized: no need for PEFT to look the base up to decide that
    model.save_pretrained(tmp_dir, safe_serialization=True, save_embedding_layers=False)
    tokenizer.save_pretrained(tmp_dir)
    write_model_metadata(tmp_dir, metadata)
    write_model_card(tmp_dir, card)  # replaces PEFT's blank template; the run adds test metrics
    register_base(card.base_model)  # PEFT's loaders find the base by name on this machine
    shutil.rmtree(adapter_dir, ignore_errors=True)
    tmp_dir.replace(adapter_dir)
    return adapter_dir


def _save_full_model(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    output_dir: Path,
    metadata: dict,
    card: ModelCardFacts,
) -> Path:
    """Write a fully fine-tuned model (safetensors), its tokenizer, metadata and model card;
    returns the directory."""
    model_dir = output_dir / FULL_MODEL_DIR
    tmp_dir = output_dir / f".{FULL_MODEL_DIR}.tmp"
    shutil.rmtree(tmp_dir, ignore_errors=True)
    model.save_pretrained(tmp_dir)  # transformers 5 writes safetensors only
    tokenizer.save_pretrained(tmp_dir)
    write_model_metadata(tmp_dir, metadata)
    write_model_card(tmp_dir, card)
    shutil.rmtree(model_dir, ignore_errors=True)
    tmp_dir.replace(model_dir)
    return model_dir


def _checkpoint_step(checkpoint: str | None) -> int:
    """The optimizer step a Trainer checkpoint directory (``checkpoint-<step>``) was saved at."""
    return int(Path(checkpoint).name.rsplit("-", 1)[-1]) if checkpoint else 0


def last_complete_checkpoint(checkpoints: Path) -> str | None:
    """Newest Trainer checkpoint that was fully written; partial ones (a crash mid-save) are
    removed so training resumes from the one before."""
    while checkpoints.is_dir() and (last := get_last_checkpoint(str(checkpoints))):
        if (Path(last) / "trainer_state.json").is_file():
            return last
        log.warning("removing incomplete checkpoint %s", last)
        shutil.rmtree(last)
    return None
