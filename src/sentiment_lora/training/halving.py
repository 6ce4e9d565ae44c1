"""Successive halving over a grid: every config trains a short first rung, and only the best
on validation trains on to the end of its schedule.

With two rungs and one config promoted, this is Hyperband's inner loop (successive halving)
reduced to the pipeline's few configs; a library for it (Optuna's pruners, Ray Tune) would own
the training loop or the process, so the ~40 lines here are the rule and its bookkeeping, and
the Trainer's own checkpoints carry a promoted config on (``train_lora`` resumes from them).
Every config is compared at the same number of training examples (``first_rung_epochs`` of its
rows), each on its own full learning-rate schedule, so a promoted config ends where an
uninterrupted run would. Off by default (``TrainConfig.first_rung_epochs`` 0): on the quick
grid the first rung could not tell the configs apart (bench/RESULTS.md, issue 16).
"""

from sentiment_lora.config import LoraHyperparams
from sentiment_lora.training.lora import TrainingResult
from sentiment_lora.training.selection import select_best


def first_rungs(
    grid: list[LoraHyperparams], first_rung_epochs: float | None
) -> dict[str, float | None]:
    """Where each config of ``grid`` stops in the first rung (None: it trains to its end at
    once): ``first_rung_epochs``, unless halving is off, the grid has a single config (nothing
    to choose between) or the config is no longer than the rung."""
    if not first_rung_epochs or len(grid) < 2:
        return {hp.name: None for hp in grid}
    return {hp.name: first_rung_epochs if first_rung_epochs < hp.epochs else None for hp in grid}


def promoted(results: list[TrainingResult], keep: int = 1) -> list[str]:
    """Names of the ``keep`` configs that train on: the best stopped ones by the rule of
    :func:`~sentiment_lora.training.lora.select_best`, compared at the same rung."""
    stopped = [r for r in results if r.stopped_at_epoch is not None]
    chosen: list[str] = []
    while stopped and len(chosen) < keep:
        best = select_best(stopped)
        chosen.append(best.config_name)
        stopped = [r for r in stopped if r is not best]
    return chosen


def merge(first: TrainingResult, final: TrainingResult) -> TrainingResult:
    """A promoted config's result: the final model, with both rungs' time and throughput."""
    seconds = first.train_seconds + final.train_seconds
    examples = (
        first.examples_per_second * first.train_seconds
        + final.examples_per_second * final.train_seconds
    )
    return final.model_copy(
        update={
            "train_seconds": round(seconds, 2),
            "examples_per_second": round(examples / max(seconds, 1e-9), 2),
        }
    )
