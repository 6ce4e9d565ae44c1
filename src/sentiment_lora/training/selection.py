"""Which trained config is best: the selection rule, in one place (the pipeline, successive
halving and the ensemble's members all rank by it)."""

from sentiment_lora.training.lora import TrainingResult


def selection_key(result: TrainingResult) -> tuple[float, float, int]:
    """Validation macro-F1, then accuracy, then fewer trainable parameters: higher is better."""
    return (
        result.validation_metrics.f1_macro,
        result.validation_metrics.accuracy,
        -result.trainable_parameters,
    )


def select_best(results: list[TrainingResult]) -> TrainingResult:
    """Best config by :func:`selection_key` (an ensemble candidate competes like a config)."""
    if not results:
        raise ValueError("results: no trained configs to select from")
    return max(results, key=selection_key)
